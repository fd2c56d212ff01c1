import Foundation
import NN
import Offload
import Tensor
import XCTest

/// Pipeline-level `device_map`: the values Diffusers accepts and the balanced assignment of
/// whole components.
final class PipelineDeviceMapTests: XCTestCase {
    func testAcceptedValues() throws {
        XCTAssertEqual(try PipelineDeviceMapRequest(parsing: "balanced"), .balanced)
        XCTAssertEqual(try PipelineDeviceMapRequest(parsing: "accel"), .device(.accel(0)))
        XCTAssertEqual(try PipelineDeviceMapRequest(parsing: "cpu"), .device(.cpu))
        for bad in ["auto", "balanced_low_0", "sequential", "accel:1", "0", "disk", "Balanced", ""] {
            XCTAssertEqual(message { _ = try PipelineDeviceMapRequest(parsing: bad) },
                           "\(bad) not supported. Supported strategies are: balanced, accel, cpu")
        }
    }

    /// Three components over two accelerators: largest first, along the snake 1, 0, 0, 1
    /// (devices sorted by free memory, largest first).
    func testSnakeOrder() {
        let sizes = [(name: "unet", bytes: 400), (name: "vae", bytes: 100), (name: "text_encoder", bytes: 50)]
        // accel:1 has more memory, so the cycle is 1, 0, 0, 1.
        let memory = [(device: DeviceTarget.accel(1), bytes: 1000), (device: DeviceTarget.accel(0), bytes: 900)]
        XCTAssertEqual(assignComponentsToDevices(sizes, deviceMemory: memory).hfDeviceMap,
                       #"{"unet": 1, "vae": 0, "text_encoder": 0}"#)
        // Four components: the fourth goes back to accel:1 and is listed with the device's first component.
        let four = sizes + [(name: "safety_checker", bytes: 20)]
        XCTAssertEqual(assignComponentsToDevices(four, deviceMemory: memory).hfDeviceMap,
                       #"{"unet": 1, "safety_checker": 1, "vae": 0, "text_encoder": 0}"#)
        // Five: the cycle starts again at accel:1.
        let five = four + [(name: "image_encoder", bytes: 10)]
        XCTAssertEqual(dictionary(assignComponentsToDevices(five, deviceMemory: memory))["image_encoder"], .accel(1))
    }

    /// A component that does not fit goes to `cpu` and the position stays; every overflowing
    /// component stays in the map (Diffusers keeps only the last: see `assignComponentsToDevices`).
    func testOverflowToCPU() {
        let sizes = [(name: "unet", bytes: 400), (name: "vae", bytes: 100), (name: "text_encoder", bytes: 50)]
        let memory = [(device: DeviceTarget.accel(0), bytes: 120), (device: DeviceTarget.accel(1), bytes: 60)]
        // unet fits neither → cpu; vae tries accel:0 again and fits; text_encoder → accel:1.
        XCTAssertEqual(assignComponentsToDevices(sizes, deviceMemory: memory).hfDeviceMap,
                       #"{"unet": "cpu", "vae": 0, "text_encoder": 1}"#)
        let tight = [(device: DeviceTarget.accel(0), bytes: 60), (device: DeviceTarget.accel(1), bytes: 10)]
        XCTAssertEqual(assignComponentsToDevices(sizes, deviceMemory: tight).hfDeviceMap,
                       #"{"unet": "cpu", "vae": "cpu", "text_encoder": 0}"#)
        XCTAssertEqual(assignComponentsToDevices(sizes, deviceMemory: []), DeviceMap())
    }

    /// The Swift tiny-sd components, sized in the target dtype, with two accelerators.
    func testBalancedTinyPipeline() throws {
        let components = try ["unet", "vae", "text_encoder"].map { (name: $0, module: try swiftModel($0)) }
        let machine = MemoryInventory(acceleratorFreeBytes: [(0, 4_000_000), (1, 5_000_000)], cpuAvailableBytes: 1 << 30)
        let map = try XCTUnwrap(balancedPipelineDeviceMap(components: components, inventory: machine))
        XCTAssertEqual(map.hfDeviceMap, #"{"unet": 1, "vae": 0, "text_encoder": 0}"#)
        // In f16 the UNet (1.97 MB) fits a 2 MB device.
        let f16 = try XCTUnwrap(balancedPipelineDeviceMap(components: components, dtype: .f16,
                                                          maxMemory: ["0": "2MB", "1": "2MB", "cpu": "100MB"],
                                                          inventory: machine))
        XCTAssertEqual(f16.hfDeviceMap, #"{"unet": 0, "vae": 1, "text_encoder": 1}"#)
        // A per-component dtype: the UNet in f32 no longer fits.
        let mixed = try XCTUnwrap(balancedPipelineDeviceMap(components: components, dtype: .f16,
                                                            componentDTypes: ["unet": .f32],
                                                            maxMemory: ["0": "2MB", "1": "2MB"], inventory: machine))
        XCTAssertEqual(mixed.hfDeviceMap, #"{"unet": "cpu", "vae": 0, "text_encoder": 1}"#)
        // No accelerator budget: no map (components load as they are).
        XCTAssertNil(try balancedPipelineDeviceMap(components: components, maxMemory: ["cpu": "1GB"], inventory: machine))
        XCTAssertNil(try balancedPipelineDeviceMap(components: components,
                                                   inventory: MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 1 << 30)))
        XCTAssertThrowsError(try balancedPipelineDeviceMap(components: components, maxMemory: ["gpu0": "1GB"], inventory: machine))
    }
}
