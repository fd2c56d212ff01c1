import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// `device_map="balanced"` on the tiny pipeline: components spread over two accel devices by
/// size (snake order), the image unchanged, and the pipeline refusing `.to()` and offloading
/// until `resetDeviceMap()`, as Diffusers does.
final class PipelineDeviceMapTests: XCTestCase {
    func testBalancedMapSpreadsComponentsAndKeepsTheImage() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd")
        let plain = try pipeline.generate(.tinyOneStep()).images.floats()
        let devices = DeviceSet(accelCapacities: [0: 64 << 20, 1: 64 << 20])
        try pipeline.applyDeviceMap(.balanced, devices: devices)
        let map = try XCTUnwrap(pipeline.hfDeviceMap)
        // Largest first on the freest device, then the snake: unet → 0, vae → 1, text_encoder → 1.
        XCTAssertEqual(map.target(for: "unet"), .accel(0))
        XCTAssertEqual(map.target(for: "vae"), .accel(1))
        XCTAssertEqual(map.target(for: "text_encoder"), .accel(1))
        XCTAssertTrue(pipeline.unet.namedParameters().allSatisfy { $0.parameter.value?.device == devices.accel(0) })
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain)

        XCTAssertThrowsError(try pipeline.to(.cpu)) { XCTAssertTrue("\($0)".contains("resetDeviceMap"), "\($0)") }
        XCTAssertThrowsError(try pipeline.enableModelCPUOffload(device: devices.accel(0)))
        XCTAssertThrowsError(try pipeline.enableSequentialCPUOffload(device: devices.accel(0)))
        try pipeline.resetDeviceMap()
        XCTAssertNil(pipeline.hfDeviceMap)
        XCTAssertEqual(devices.accel(0).allocator.bytesInUse + devices.accel(1).allocator.bytesInUse, 0)
        try pipeline.enableModelCPUOffload(device: devices.accel(0))
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain)
    }

    func testAComponentThatFitsNowhereRunsFromTheHostWithSequentialOffload() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd")
        let plain = try pipeline.generate(.tinyOneStep()).images.floats()
        let devices = DeviceSet(accelCapacities: [0: 64 << 20])
        // A budget smaller than the UNet (about 4 MB) but big enough for the others.
        try pipeline.applyDeviceMap(.balanced, devices: devices, maxMemory: ["0": "2MB"])
        let map = try XCTUnwrap(pipeline.hfDeviceMap)
        XCTAssertEqual(map.target(for: "unet"), .cpu)
        XCTAssertFalse(pipeline.unet.allHooks().isEmpty, "the host-placed UNet streams onto accel:0")
        XCTAssertEqual(try pipeline.generate(.tinyOneStep()).images.floats(), plain)
        XCTAssertThrowsError(try PipelineDeviceMapRequest(parsing: "auto")) { XCTAssertTrue("\($0)".contains("not supported"), "\($0)") }
    }
}

/// The guide's SDXL example, `device_map="balanced"` with `max_memory={0: X, 1: X}`, on the tiny
/// SDXL pipeline: the map Diffusers computes for the same component sizes
/// (make_sdxl_device_map_fixtures.py), and the plain run's image.
final class SDXLPipelineDeviceMapTests: XCTestCase {
    func testBalancedMapsEqualDiffusers() throws {
        let folder = OffloadStrategyTests.root + "/tiny-sdxl"
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "blurry")
        (options.steps, options.width, options.height, options.guidanceScale) = (1, 32, 32, 5)
        for (number, fixture) in try readJSON(deviceMapFixtures + "/sdxl-pipeline-cases.json").array().enumerated() {
            guard let dtype = DType(rawValue: try fixture.member("dtype").string()) else { throw FixtureError("dtype") }
            let label = "SDXL case \(number)"
            let pipeline = try AutoPipeline.textToImage(folder: folder, dtype: dtype)
            let plain = try pipeline.generate(options, progress: nil).images.floats()
            for entry in try fixture.member("component_sizes").array() {
                let parts = try entry.array()
                let component = try XCTUnwrap(pipeline.component(named: try parts[0].string()), label)
                XCTAssertEqual(ModuleTree(component).moduleSizes(dtype: dtype).total, try parts[1].int(), label)
            }
            let devices = DeviceSet(accelCapacities: [0: 64 << 20, 1: 64 << 20])
            try pipeline.applyDeviceMap(.balanced, devices: devices, maxMemory: budgets(fixture.member("max_memory")))
            let map = try XCTUnwrap(pipeline.hfDeviceMap, label)
            XCTAssertEqual(dictionary(map), dictionary(try mapPairs(fixture.member("device_map"))), label)
            XCTAssertEqual(try pipeline.generate(options, progress: nil).images.floats(), plain, "\(label): the plain image")
            try pipeline.resetDeviceMap()
        }
    }
}
