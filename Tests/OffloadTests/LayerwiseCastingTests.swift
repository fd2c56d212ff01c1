import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import TestSupport
import XCTest

/// Layerwise casting on the tiny UNet against Diffusers' `enable_layerwise_casting`
/// (Fixtures/layerwise-casting, from tools/reference/make_layerwise_casting_fixtures.py).
final class LayerwiseCastingTests: XCTestCase {
    func makeUNet() throws -> UNet2DConditionModel { try TinyUNet.load() }

    func run(_ unet: UNet2DConditionModel) throws -> Tensor {
        let (sample, timestep, context) = try TinyUNet.inputs()
        return try unet(sample, timestep: timestep, encoderHiddenStates: context)
    }

    func testStorageDTypesMatchDiffusers() throws {
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/layerwise-casting/unet.safetensors")
        let f32 = try f.tensor(named: "f32_t981")
        // Diffusers' own error against its f32 run (random weights make fp8 coarse): ours must
        // match Diffusers' cast output, so its distance from f32 is Diffusers' too.
        for (name, dtype, diffusersError) in [("f8e4m3fn", DType.f8e4m3fn, 0.226), ("f8e5m2", .f8e5m2, 0.373), ("bf16", .bf16, 0.0140)] {
            let unet = try makeUNet()
            try unet.enableLayerwiseCasting(storage: dtype, compute: .f32)
            let out = try run(unet)
            let expected = try f.tensor(named: "\(name)_t981")
            XCTAssertLessThan(try relativeL2(out, expected), 1e-4, "\(name): Diffusers' layerwise-cast output")
            XCTAssertEqual(try relativeL2(out, f32), diffusersError, accuracy: diffusersError * 0.01, "\(name): the error Diffusers has against f32")
            // At rest the cast layers hold the storage dtype; norms stay f32.
            XCTAssertEqual(try XCTUnwrap(unet.convIn.weight.value).dtype, dtype)
            XCTAssertEqual(try XCTUnwrap(unet.namedParameters().first { $0.path == "conv_norm_out.weight" }?.parameter.value).dtype, .f32)
        }
    }

    func testTheSameLayersAsDiffusersAreCast() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: OffloadStrategyTests.root + "/layerwise-casting/hooked-layers.json"))
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String])
        let unet = try makeUNet()
        try unet.enableLayerwiseCasting()
        let hooked = unet.allHooks().filter { $0.name == OffloadHookName.layerwiseCasting }.map(\.path).sorted()
        XCTAssertEqual(hooked, expected)
    }

    /// fp8 storage holds a quarter of the f32 weights' bytes on the device (half of bf16), and
    /// composes with group offloading: the stored dtype is what moves.
    func testStorageBytesAndGroupOffload() throws {
        let plain = try run(makeUNet()).floats()
        let device = Device.accel(41)
        let unet = try makeUNet()
        let f32Bytes = unet.namedParameters().reduce(0) { $0 + ($1.parameter.value?.byteCount ?? 0) }
        try unet.enableLayerwiseCasting(storage: .f8e4m3fn, compute: .f32)
        let castOutput = try run(unet).floats()
        try unet.moveParameters(to: device)
        let resident = device.allocator.bytesInUse
        print("UNet weights: f32 \(formatBytes(f32Bytes)), fp8 storage \(formatBytes(resident))")
        XCTAssertLessThan(resident, f32Bytes * 3 / 10, "cast layers hold 1 byte per weight")
        try unet.moveParameters(to: .cpu)
        let state = try unet.applyGroupOffloading(device: device, options: GroupOffloadOptions(type: .leafLevel, useStream: true))
        XCTAssertEqual(try run(unet).to(.cpu).floats(), castOutput, "casting inside group offload: the same numbers")
        XCTAssertLessThan(state.statistics.bytesMoved, f32Bytes * 3 / 10, "the stored fp8 is what moves")
        XCTAssertNotEqual(castOutput, plain)
        try unet.removeAllHooks()
        XCTAssertEqual(try XCTUnwrap(unet.convIn.weight.value).dtype, .f32, "removed: weights back in the compute dtype")
    }

    func testBadOptionsAreClearErrors() throws {
        let unet = try makeUNet()
        XCTAssertThrowsError(try unet.enableLayerwiseCasting(skipModulesPattern: ["(unclosed"])) {
            XCTAssertTrue("\($0)".contains("regular expression"), "\($0)")
        }
        XCTAssertThrowsError(try unet.enableLayerwiseCasting(storage: .i32)) { XCTAssertTrue("\($0)".contains("floating-point"), "\($0)") }
        XCTAssertThrowsError(try unet.enableLayerwiseCasting(storage: .f8e4m3fn, compute: .u8))
        XCTAssertTrue(unet.allHooks().isEmpty, "nothing applied")
        XCTAssertEqual(try XCTUnwrap(unet.convIn.weight.value).dtype, .f32)
        try unet.enableSequentialCPUOffload(device: .accel(42))
        XCTAssertThrowsError(try unet.enableLayerwiseCasting()) { XCTAssertTrue("\($0)".contains("before offloading"), "\($0)") }
    }

    /// A pipeline whose UNet is layerwise cast still moves whole and takes a device map.
    func testACastPipelineMovesAndMaps() throws {
        let folder = OffloadStrategyTests.root + "/tiny-sd"
        let options = GenerationOptions.tinyOneStep()
        let reference = try StableDiffusionPipeline(folder: folder)
        try reference.unet.enableLayerwiseCasting(storage: .f8e4m3fn)
        let expected = try reference.generate(options).images.floats()
        let moved = try StableDiffusionPipeline(folder: folder)
        try moved.unet.enableLayerwiseCasting(storage: .f8e4m3fn)
        try moved.to(.accel(43))
        XCTAssertEqual(try moved.generate(options).images.floats(), expected)
        let mapped = try StableDiffusionPipeline(folder: folder)
        try mapped.unet.enableLayerwiseCasting(storage: .f8e4m3fn)
        try mapped.applyDeviceMap(DeviceMap([("unet", .accel(0)), ("unet.mid_block", .cpu), ("vae", .accel(0)), ("text_encoder", .accel(0))]),
                                  devices: DeviceSet(accelCapacities: [0: 64 << 20]))
        XCTAssertEqual(try mapped.generate(options).images.floats(), expected)
    }

    /// A cast model saved in its storage dtype loads mapped, float8 and all, and computes the same.
    func testSavedInTheStorageDTypeLoadsMapped() throws {
        let folder = NSTemporaryDirectory() + "fp8-unet-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cast = try makeUNet()
        try cast.enableLayerwiseCasting(storage: .f8e4m3fn)
        let expected = try run(cast).floats()
        try cast.saveWeights(to: folder)
        let reloaded = UNet2DConditionModel(cast.config)
        try reloaded.load(from: Checkpoint(folder: folder))
        XCTAssertEqual(try XCTUnwrap(reloaded.convIn.weight.value).dtype, .f8e4m3fn)
        try reloaded.enableLayerwiseCasting(storage: .f8e4m3fn)   // compute: the norms' f32
        let weights = reloaded.namedParameters().compactMap(\.parameter.value)
        XCTAssertTrue(weights.allSatisfy { $0.storage.isMapped }, "nothing converted: the file is the storage")
        let castCount = cast.namedParameters().filter { $0.parameter.value?.dtype == .f8e4m3fn }.count
        XCTAssertGreaterThan(castCount, 0)
        XCTAssertEqual(weights.filter { $0.dtype == .f8e4m3fn }.count, castCount, "the same layers stored in float8")
        XCTAssertEqual(try run(reloaded).floats(), expected)
    }
}
