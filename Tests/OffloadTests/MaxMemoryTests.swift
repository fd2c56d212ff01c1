import Foundation
import Offload
import Tensor
import XCTest

/// Memory strings and `getMaxMemory`, beyond the cases checked against Accelerate's output.
final class MaxMemoryTests: XCTestCase {
    /// Every case the semantics document names: binary and decimal units, lowercase `b` bits,
    /// bare strings rejected, integers as bytes.
    func testMemoryStrings() throws {
        let cases: [(MemoryBudget, Int)] = [
            ("1GiB", 1 << 30), ("1MiB", 1 << 20), ("1KiB", 1024), ("1GB", 1_000_000_000), ("1MB", 1_000_000),
            ("1KB", 1000), ("5Gb", 625_000_000), ("5gb", 625_000_000), ("8Mb", 1_000_000), ("8kb", 1000),
            ("1.5GB", 1_500_000_000), ("0.5GiB", 1 << 29), ("5gB", 5_000_000_000), ("5gib", 5 << 30),
            (1234, 1234), (0, 0),
        ]
        for (budget, bytes) in cases { XCTAssertEqual(try budget.resolved(), bytes, "\(budget)") }
        for bad: MemoryBudget in ["1000", "", "GB", "1TB", "5B", "one GB", "-1GB", -1] {
            let text: String
            switch bad {
            case .text(let value): text = value
            case .bytes(let value): text = String(value)
            }
            XCTAssertEqual(message { _ = try bad.resolved() },
                           "`size` \(text) is not in a valid format. Use an integer for bytes, or a string with an unit (like '5.0GB').")
        }
    }

    func testKeysAreSortedAcceleratorsThenCPUThenDisk() throws {
        let machine = MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 0)
        let memory = try getMaxMemory(["disk": "1GB", "cpu": 5, "1": "1MB", "accel:0": 7, "10": 3, "2": "1KiB"],
                                      inventory: machine)
        XCTAssertEqual(memory.devices, [.accel(0), .accel(1), .accel(2), .accel(10), .cpu, .disk])
        XCTAssertEqual(memory.entries.map(\.bytes), [7, 1_000_000, 1024, 3, 5, 1_000_000_000])
        XCTAssertEqual(memory.description, "{0: 7, 1: 1000000, 2: 1024, 10: 3, 'cpu': 5, 'disk': 1000000000}")
        // Devices the user leaves out are not used (no cpu here).
        XCTAssertEqual(try getMaxMemory(["0": "1MB"], inventory: machine).devices, [.accel(0)])
    }

    func testUnknownKeysAndBadValues() {
        let machine = MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 0)
        for key in ["mps", "cuda:0", "gpu", "-1", "accel:-1", ""] {
            XCTAssertEqual(message { _ = try getMaxMemory([key: "1GB"], inventory: machine) },
                           "Device \(key) is not recognized, available devices are integers (for accel devices), 'cpu' and 'disk'")
        }
        XCTAssertEqual(message { _ = try getMaxMemory(["0": "1GB", "accel:0": "2GB"], inventory: machine) },
                       "max_memory gives accel:0 twice ('0' and 'accel:0')")
        XCTAssertEqual(message { _ = try getMaxMemory(["cpu": "lots"], inventory: machine) },
                       "`size` lots is not in a valid format. Use an integer for bytes, or a string with an unit (like '5.0GB').")
    }

    /// Without user budgets: each accelerator's free bytes and the host's available memory.
    func testDefaultsComeFromTheMachine() throws {
        let inventory = MemoryInventory(acceleratorFreeBytes: [(1, 300), (0, 200)], cpuAvailableBytes: 1000)
        let memory = try getMaxMemory(nil, inventory: inventory)
        XCTAssertEqual(memory, MaxMemory([(.accel(0), 200), (.accel(1), 300), (.cpu, 1000)]))

        let devices = DeviceSet(accelCapacities: [0: 5000, 1: 8000])
        try devices.accel(0).allocator.reserve(1200)
        defer { devices.accel(0).allocator.release(1200) }
        let current = MemoryInventory.current(devices: devices)
        XCTAssertEqual(current.acceleratorFreeBytes.map(\.index), [0, 1])
        XCTAssertEqual(current.acceleratorFreeBytes.map(\.bytes), [3800, 8000])
        let host = try XCTUnwrap(MemoryInventory.hostAvailableBytes())
        XCTAssertGreaterThan(host, 0)
        XCTAssertGreaterThan(current.cpuAvailableBytes, 0)
        let fromDevices = try getMaxMemory(nil, devices: devices)
        XCTAssertEqual(fromDevices.devices, [.accel(0), .accel(1), .cpu])
        XCTAssertEqual(fromDevices[.accel(0)], 3800)
    }

    func testSubscriptKeepsOrder() {
        var memory = MaxMemory([(.cpu, 10)])
        memory[.disk] = 5
        memory[.accel(3)] = 1
        memory[.accel(1)] = 2
        XCTAssertEqual(memory.devices, [.accel(1), .accel(3), .cpu, .disk])
        memory[.accel(3)] = nil
        XCTAssertEqual(memory.accelerators, [.accel(1)])
    }
}
