import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// Model-level device maps executed (Accelerate's `dispatch_model`): one model split across
/// `accel:0`, `accel:1`, `cpu` and `disk`, the image bit-equal to the plain run, weights where
/// the map says, and every bad map a clear error with nothing left applied.
final class ModelDispatchTests: XCTestCase {
    func pipeline(dtype: DType = .f32) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd", dtype: dtype)
    }

    static let splitMap: [(String, DeviceTarget)] = [
        ("text_encoder", .accel(1)),
        ("unet.conv_in", .accel(0)), ("unet.time_embedding", .cpu), ("unet.down_blocks.0", .accel(1)),
        ("unet.down_blocks.1.attentions", .accel(0)), ("unet.down_blocks.1.resnets", .disk),
        ("unet.mid_block", .cpu), ("unet.up_blocks.0", .accel(1)), ("unet.up_blocks.1", .disk),
        // Inside a Transformer2DModel, whose output adds its input: split anyway.
        ("unet.up_blocks.0.attentions.1.proj_out", .accel(0)),
        ("unet.conv_norm_out", .accel(0)), ("unet.conv_out", .disk),
        ("vae.encoder", .accel(0)), ("vae.quant_conv", .accel(1)), ("vae.post_quant_conv", .cpu), ("vae.decoder", .disk),
    ]

    func testASplitAcrossTwoAcceleratorsHostAndDiskGivesThePlainImage() throws {
        let pipeline = try pipeline()
        let plain = try pipeline.generate(.tinyOneStep()).images.floats()
        let devices = DeviceSet(accelCapacities: [0: 64 << 20, 1: 64 << 20])
        let map = DeviceMap(Self.splitMap)
        let statistics = try pipeline.applyDeviceMap(map, devices: devices)
        XCTAssertEqual(pipeline.hfDeviceMap, map)

        // At rest: accelerator entries hold their weights there, cpu/disk ones on the host
        // (disk: still mapped from the checkpoint file).
        for (name, component) in pipeline.namedComponents {
            for (path, parameter) in component.namedParameters() {
                let value = try XCTUnwrap(parameter.value)
                switch map.target(for: name + "." + path) {
                case .accel(let index)?: XCTAssertEqual(value.device, devices.accel(index), path)
                case .disk?: XCTAssertTrue(value.device.isCPU && value.storage.isMapped, "\(path) stays in its file")
                default: XCTAssertTrue(value.device.isCPU, path)
                }
            }
        }
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain, "a device map moves bytes, not values")
        XCTAssertGreaterThan(statistics.values.reduce(0) { $0 + $1.bytesMoved }, 0, "cpu/disk modules came to accel:0 per forward")
        XCTAssertGreaterThan(devices.accel(1).allocator.peakBytes, 0)

        // After the call the cpu/disk weights are home again; accel:1 holds exactly its entries.
        let accel1 = pipeline.components.flatMap { $0.namedParameters() }.filter { $0.parameter.value?.device == devices.accel(1) }
        XCTAssertGreaterThan(accel1.count, 0)

        XCTAssertThrowsError(try pipeline.to(.cpu)) { XCTAssertTrue("\($0)".contains("resetDeviceMap"), "\($0)") }
        XCTAssertThrowsError(try pipeline.unet.applyGroupOffloading(device: devices.accel(0), options: GroupOffloadOptions(type: .leafLevel))) {
            XCTAssertTrue("\($0)".contains("device_map"), "\($0)")
        }
        try pipeline.resetDeviceMap()
        XCTAssertTrue(pipeline.hooks.isEmpty)
        XCTAssertEqual(devices.accel(0).allocator.bytesInUse + devices.accel(1).allocator.bytesInUse, 0)
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain)
    }

    func testStrategiesPlanWithinTheBudgetsAndGiveThePlainImage() throws {
        for strategy in [DeviceMapStrategy.auto, .balancedLow0, .sequential] {
            let pipeline = try pipeline()
            let plain = try pipeline.generate(.tinyOneStep()).images.floats()
            let devices = DeviceSet(accelCapacities: [0: 16 << 20, 1: 16 << 20])
            // 1 MB per accelerator: the models (about 5 MB) spill to the host.
            try pipeline.applyDeviceMap(strategy: strategy, devices: devices, maxMemory: ["0": "1MB", "1": "1MB", "cpu": "1GB"])
            let map = try XCTUnwrap(pipeline.hfDeviceMap)
            XCTAssertTrue(map.targets.contains(.cpu), "\(strategy): \(map)")
            let resident = devices.accel(0).allocator.bytesInUse + devices.accel(1).allocator.bytesInUse
            XCTAssertGreaterThan(resident, 0, "\(strategy)")
            XCTAssertLessThanOrEqual(resident, 2_000_000, "\(strategy): weights placed within the budgets")
            XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain, "\(strategy)")
        }
    }

    func testDiskEntriesForConvertedWeightsUseGroupFiles() throws {
        let pipeline = try pipeline(dtype: .bf16)
        let plain = try pipeline.generate(.tinyOneStep()).images.floats()
        let devices = DeviceSet(accelCapacities: [0: 64 << 20])
        let map = DeviceMap([("unet", .accel(0)), ("unet.mid_block", .disk), ("text_encoder", .accel(0)), ("vae", .accel(0))])
        // bf16 weights are converted copies, not the f32 checkpoint: disk needs a folder.
        XCTAssertThrowsError(try pipeline.applyDeviceMap(map, devices: devices)) { XCTAssertTrue("\($0)".contains("offload folder"), "\($0)") }
        XCTAssertTrue(pipeline.hooks.isEmpty, "nothing half-applied")
        XCTAssertNil(pipeline.hfDeviceMap)
        XCTAssertEqual(devices.accel(0).allocator.bytesInUse, 0)

        let folder = NSTemporaryDirectory() + "dispatch-disk-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try pipeline.applyDeviceMap(map, devices: devices, offloadFolder: folder)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder + "/unet")
        XCTAssertFalse(files.isEmpty)
        XCTAssertTrue(try XCTUnwrap(pipeline.unet.midBlock.namedParameters().first?.parameter.value).storage.isMapped)
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain)
    }

    func testBadMapsAreClearErrorsAndApplyNothing() throws {
        let devices = DeviceSet(accelCapacities: [0: 64 << 20, 1: 64 << 20])
        let cases: [([(String, DeviceTarget)], String)] = [
            ([("unet.down_blocks.9", .accel(0)), ("unet", .cpu)], "down_blocks.9"),
            ([("unicorn", .accel(0))], "unicorn"),
            ([("unet", .accel(5))], "accel:5"),
            ([("unet", .accel(0)), ("unet.conv_in.weight", .accel(0)), ("unet.conv_in.bias", .accel(1))], "different devices"),
        ]
        for (pairs, expected) in cases {
            let pipeline = try pipeline()
            XCTAssertThrowsError(try pipeline.applyDeviceMap(DeviceMap(pairs), devices: devices)) {
                XCTAssertTrue("\($0)".contains(expected), "\(pairs): \($0)")
            }
            XCTAssertTrue(pipeline.hooks.isEmpty, "\(pairs): nothing half-applied")
            XCTAssertNil(pipeline.hfDeviceMap)
            XCTAssertTrue(pipeline.components.allSatisfy { $0.namedParameters().allSatisfy { $0.parameter.value?.device.isCPU == true } })
            XCTAssertEqual(devices.accel(0).allocator.bytesInUse + devices.accel(1).allocator.bytesInUse, 0, "\(pairs)")
        }
        // An offload folder that cannot be written.
        let pipeline = try pipeline(dtype: .bf16)
        XCTAssertThrowsError(try pipeline.applyDeviceMap(DeviceMap([("unet", .disk), ("unet.conv_in", .accel(0))]), devices: devices,
                                                         offloadFolder: "/proc/not-writable")) {
            XCTAssertTrue("\($0)".contains("offload folder"), "\($0)")
        }
        XCTAssertTrue(pipeline.hooks.isEmpty)
    }

    /// The execution device must hold the largest unit a strategy brings to it at once; too
    /// small a capacity is an error when the strategy is applied, naming the unit.
    func testACapacityBelowTheLargestUnitFailsWhenApplied() throws {
        let tiny = DeviceSet(accelCapacities: [0: 20_000])
        for apply in [
            { (p: StableDiffusionPipeline) in _ = try p.enableSequentialCPUOffload(device: tiny.accel(0)) },
            { (p: StableDiffusionPipeline) in _ = try p.enableGroupOffload(device: tiny.accel(0), options: GroupOffloadOptions(type: .leafLevel)) },
            { (p: StableDiffusionPipeline) in try p.enableModelCPUOffload(device: tiny.accel(0)) },
            { (p: StableDiffusionPipeline) in _ = try p.applyDeviceMap(DeviceMap([("unet", .cpu), ("unet.conv_in", .accel(0))]), devices: tiny) },
        ] {
            let pipeline = try pipeline()
            XCTAssertThrowsError(try apply(pipeline)) { error in
                guard case OffloadError.insufficientCapacity(let device, let unit, let bytes, let free, _)? = error as? OffloadError else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(device, "accel:0")
                XCTAssertFalse(unit.isEmpty)
                XCTAssertGreaterThan(bytes, free)
            }
            XCTAssertTrue(pipeline.unet.allHooks().isEmpty, "nothing half-applied")
        }
    }

    /// A component the map sends wholly to the host still computes on the pipeline's
    /// accelerator, its weights streamed in per module (Diffusers' main_device + force_hooks).
    func testAHostOnlyComponentComputesOnThePipelinesAccelerator() throws {
        let pipeline = try pipeline()
        let plain = try pipeline.generate(.tinyOneStep()).images.floats()
        let devices = DeviceSet(accelCapacities: [0: 64 << 20])
        let statistics = try pipeline.applyDeviceMap(DeviceMap([("text_encoder", .accel(0)), ("unet", .cpu), ("vae", .accel(0))]),
                                                     devices: devices)
        XCTAssertFalse(pipeline.unet.allHooks().isEmpty)
        XCTAssertEqual(pipeline.unet.executionDevice, devices.accel(0))
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain)
        XCTAssertGreaterThan(statistics["unet"]?.bytesMoved ?? 0, 0)
    }
}
