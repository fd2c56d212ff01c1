import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// `castWeightsOnLoad: false`: a bf16 pipeline over an f32 checkpoint keeps the checkpoint
/// mapped and casts each group as it comes to the execution device; the images equal those of
/// the pipeline converted at load, bit for bit.
final class DeferredCastTests: XCTestCase {
    var folder: String { OffloadStrategyTests.root + "/tiny-sd" }

    /// `diffuse --storage-dtype bf16` in f32: the weights layerwise casting stores in bf16 are
    /// its storage, not pending casts, so moving the pipeline keeps them bf16 (and its peak
    /// the cast model's).
    func testLayerwiseCastStorageIsNotUndoneByThePendingCast() throws {
        for storage in [DType.bf16, .f16, .f8e4m3fn] {
            let pipeline = try StableDiffusionPipeline(folder: folder, dtype: .f32, castWeightsOnLoad: false)
            try pipeline.unet.enableLayerwiseCasting(storage: storage, compute: .f32)
            try pipeline.to(.accel(13))
            _ = try pipeline.generate(.tinyOneStep())
            XCTAssertEqual(try XCTUnwrap(pipeline.unet.convIn.weight.value).dtype, storage, "\(storage): conv_in stays in storage")
            XCTAssertEqual(try XCTUnwrap(pipeline.unet.namedParameters().first { $0.path == "conv_norm_out.weight" }?.parameter.value).dtype,
                           .f32, "\(storage): the skipped norms are computed in f32")
        }
    }

    func testCastingOnOnloadGivesTheImageOfCastingAtLoad() throws {
        let expected = try StableDiffusionPipeline(folder: folder, dtype: .bf16).generate(.tinyOneStep()).images.floats()
        let strategies: [(String, (StableDiffusionPipeline) throws -> Void)] = [
            ("group leaf, host disk tier", { _ = try $0.enableGroupOffload(device: .cpu, options: GroupOffloadOptions(type: .leafLevel)) }),
            ("group block, accel, prefetch", {
                _ = try $0.enableGroupOffload(device: .accel(11), options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1), useStream: true))
            }),
            ("sequential, host", { _ = try $0.enableSequentialCPUOffload(device: .cpu) }),
            ("model offload", { try $0.enableModelCPUOffload(device: .accel(12)) }),
            ("none: converted for each phase", { _ in }),
        ]
        for (name, apply) in strategies {
            let pipeline = try StableDiffusionPipeline(folder: folder, dtype: .bf16, castWeightsOnLoad: false)
            let weights = pipeline.unet.namedParameters().compactMap(\.parameter.value)
            XCTAssertTrue(weights.allSatisfy { $0.dtype == .f32 && $0.storage.isMapped }, "\(name): the checkpoint stays mapped")
            try apply(pipeline)
            let result = try pipeline.generate(.tinyOneStep())
            XCTAssertEqual(try result.images.floats(), expected, name)
            // Converting for each phase is timed on its own, outside the phase figures.
            XCTAssertEqual(result.timings.weightCastSeconds > 0, name.hasPrefix("none"), name)
            let after = pipeline.unet.namedParameters().compactMap(\.parameter.value)
            XCTAssertTrue(after.allSatisfy { $0.dtype == .f32 && $0.storage.isMapped }, "\(name): at rest the weights are the mapped checkpoint")
        }
    }

    func testMovingOrMappingADeferredPipelineConvertsFirst() throws {
        let expected = try StableDiffusionPipeline(folder: folder, dtype: .bf16).generate(.tinyOneStep()).images.floats()
        let moved = try StableDiffusionPipeline(folder: folder, dtype: .bf16, castWeightsOnLoad: false)
        let device = Device.accel(13)
        try moved.to(device)
        XCTAssertTrue(moved.unet.namedParameters().allSatisfy { $0.parameter.value?.dtype == .bf16 && $0.parameter.value?.device == device })
        XCTAssertEqual(try moved.generate(.tinyOneStep()).images.floats(), expected)

        let mapped = try StableDiffusionPipeline(folder: folder, dtype: .bf16, castWeightsOnLoad: false)
        try mapped.applyDeviceMap(DeviceMap([("unet", .accel(0)), ("unet.mid_block", .cpu), ("vae", .accel(0)), ("text_encoder", .cpu)]),
                                  devices: DeviceSet(accelCapacities: [0: 64 << 20]))
        XCTAssertTrue(mapped.unet.namedParameters().allSatisfy { $0.parameter.value?.dtype == .bf16 })
        XCTAssertEqual(try mapped.generate(.tinyOneStep()).images.floats(), expected)
    }
}
