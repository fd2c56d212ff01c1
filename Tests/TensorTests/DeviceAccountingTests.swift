import Foundation
import Tensor
import XCTest

/// Every allocation is accounted to its device, capacities are enforced like a GPU's, and
/// copies between devices are real.
final class DeviceAccountingTests: XCTestCase {
    func testBytesInUseMoveExactlyWithAllocationsAndFrees() throws {
        let device = Device.accel(3)
        XCTAssertEqual(device.allocator.bytesInUse, 0)
        var a: Tensor? = try Tensor.empty([256, 1024], dtype: .f32, device: device)    // 1 MiB
        XCTAssertEqual(device.allocator.bytesInUse, 1 << 20)
        var b: Tensor? = try Tensor.zeros([1000], dtype: .bf16, device: device)         // 2000 B
        XCTAssertEqual(device.allocator.bytesInUse, (1 << 20) + 2000)
        XCTAssertEqual(device.allocator.liveAllocations, 2)
        // Views share storage: no new bytes.
        let view = try XCTUnwrap(a).reshaped([1024, 256]).transposed(0, 1)
        XCTAssertEqual(device.allocator.bytesInUse, (1 << 20) + 2000)
        a = nil
        XCTAssertEqual(device.allocator.bytesInUse, (1 << 20) + 2000, "the view keeps the storage alive")
        withExtendedLifetime(view) {}
        b = nil
        _ = b
        XCTAssertEqual(device.allocator.bytesInUse, 1 << 20)
        XCTAssertEqual(device.allocator.peakBytes, (1 << 20) + 2000)
        device.allocator.resetPeak()
        XCTAssertEqual(device.allocator.peakBytes, device.allocator.bytesInUse)
    }

    /// An accelerator keeps freed large blocks for reuse (as PyTorch's caching allocator):
    /// not counted in use, counted against the capacity, given back when room is needed.
    func testAcceleratorsReuseFreedBlocks() throws {
        let device = Device.accel(4, capacity: 5 << 20)
        var a: Tensor? = try Tensor.empty([512, 1024], device: device)          // 2 MiB
        let first = try XCTUnwrap(a).storage.pointer
        a = nil
        XCTAssertEqual(device.allocator.bytesInUse, 0)
        XCTAssertEqual(device.allocator.bytesCached, 2 << 20, "the freed block is kept")
        let b = try Tensor.empty([1024, 512], device: device)                     // the same size
        XCTAssertEqual(b.storage.pointer, first, "and handed out again")
        XCTAssertEqual(device.allocator.bytesCached, 0)
        var c: Tensor? = try Tensor.empty([256, 1024], device: device)            // 1 MiB
        c = nil
        _ = c
        XCTAssertEqual(device.allocator.bytesCached, 1 << 20)
        // 2 MiB in use + 1 MiB cached + 3 MiB would pass the 5 MiB capacity: the cache gives way.
        let d = try Tensor.empty([768, 1024], device: device)
        XCTAssertEqual(device.allocator.bytesCached, 0)
        XCTAssertEqual(device.allocator.bytesInUse, 5 << 20)
        XCTAssertThrowsError(try Tensor.empty([1], device: device), "still a capacity")
        withExtendedLifetime((b, d)) {}
        // Small blocks are malloc's.
        var small: Tensor? = try Tensor.empty([16], device: .accel(5))
        small = nil
        _ = small
        XCTAssertEqual(Device.accel(5).allocator.bytesCached, 0)
        let other = Device.accel(6)
        var e: Tensor? = try Tensor.empty([512, 1024], device: other)
        e = nil
        _ = e
        other.allocator.emptyCache()
        XCTAssertEqual(other.allocator.bytesCached, 0)
    }

    /// The host keeps freed large blocks too (fresh pages are faulted in and cleared one by
    /// one), and gives them back on `emptyCache`.
    func testTheHostReusesFreedBlocks() throws {
        let host = Device.cpu.allocator
        host.emptyCache()
        var a: Tensor? = try Tensor.empty([1024, 1024])                           // 4 MiB
        let first = try XCTUnwrap(a).storage.pointer
        a = nil
        XCTAssertEqual(host.bytesCached, 4 << 20, "the freed block is kept")
        let c = try Tensor.empty([1024, 1024])                                    // the same size
        XCTAssertEqual(c.storage.pointer, first, "and handed out again, not faulted in anew")
        XCTAssertEqual(host.bytesCached, 0)
        var d: Tensor? = try Tensor.empty([512, 1024])
        d = nil
        _ = d
        XCTAssertEqual(host.bytesCached, 2 << 20)
        XCTAssertLessThanOrEqual(host.bytesCached + host.bytesInUse, host.highWaterBytes, "caching never raises the footprint")
        host.emptyCache()
        XCTAssertEqual(host.bytesCached, 0)
        withExtendedLifetime(c) {}
    }

    /// Cached and live bytes together stay within the most ever in use: with a block live,
    /// freeing others of new sizes evicts the oldest cached instead of stacking them on top
    /// (a cache limited by the high-water mark alone let a bf16 SDXL step reach 9.2 GiB).
    func testCachingNeverRaisesTheFootprint() throws {
        let device = Device.accel(41), allocator = device.allocator
        let live = try Tensor.empty([1024, 1024], device: device)                     // 4 MiB, kept
        var b: Tensor? = try Tensor.empty([1024, 1024], device: device)               // high water 8 MiB
        b = nil
        XCTAssertEqual(allocator.bytesCached, 4 << 20)
        var c: Tensor? = try Tensor.empty([512, 1024], device: device)                // reuses nothing
        c = nil
        _ = (b, c)
        XCTAssertLessThanOrEqual(allocator.bytesCached + allocator.bytesInUse, allocator.highWaterBytes)
        XCTAssertEqual(allocator.bytesCached, 2 << 20, "the oldest cached block went")
        withExtendedLifetime(live) {}
        allocator.emptyCache()
    }

    func testPeakFollowsOperations() throws {
        let device = Device.accel(4)
        let x = try Tensor(Array(repeating: 1, count: 4096), shape: [64, 64], device: device)
        device.allocator.resetPeak()
        let before = device.allocator.bytesInUse
        let y = try x.silu()
        XCTAssertEqual(device.allocator.bytesInUse - before, 64 * 64 * 4, "one output, no leftover scratch")
        XCTAssertEqual(y.device, device)
    }

    func testCapacityIsEnforcedWithATypedError() throws {
        let device = Device.accel(0, capacity: 1_000_000)
        let kept = try Tensor.empty([200_000], dtype: .f32, device: device)            // 800 kB
        XCTAssertThrowsError(try Tensor.empty([100_000], dtype: .f32, device: device)) { error in
            guard let oom = error as? OutOfMemoryError else { return XCTFail("expected OutOfMemoryError, got \(error)") }
            XCTAssertEqual(oom.device, "accel:0")
            XCTAssertEqual(oom.requestedBytes, 400_000)
            XCTAssertEqual(oom.bytesInUse, 800_000)
            XCTAssertEqual(oom.capacityBytes, 1_000_000)
            XCTAssertTrue(oom.description.contains("accel:0"), oom.description)
        }
        XCTAssertEqual(device.allocator.bytesInUse, 800_000, "a refused allocation leaves no trace")
        withExtendedLifetime(kept) {}
        // An op whose output does not fit fails the same way, without leaking.
        XCTAssertThrowsError(try kept.silu())
        XCTAssertEqual(device.allocator.bytesInUse, 800_000)
    }

    func testCopiesBetweenDevicesAreRealAndAccounted() throws {
        let devices = DeviceSet(accelCapacities: [0: 10_000_000])
        let accel = try devices.device(named: "accel:0")
        XCTAssertTrue(accel == devices.accel(0), "one device per name")
        let host = try Tensor([1, 2, 3, 4], shape: [2, 2])
        let moved = try host.to(accel)
        XCTAssertEqual(moved.device, accel)
        XCTAssertNotEqual(moved.storage.pointer, host.storage.pointer)
        XCTAssertEqual(accel.allocator.bytesInUse, 16)
        XCTAssertEqual(try moved.floats(), [1, 2, 3, 4])
        XCTAssertThrowsError(try devices.device(named: "gpu:0"))
        XCTAssertThrowsError(try Tensor.zeros([1], device: .accel(9)) + Tensor.zeros([1]), "operands on two devices")
    }

    func testDeviceSetBandwidthAppliesToEveryAccelerator() throws {
        let devices = DeviceSet(accelCapacities: [0: 1 << 30], copyBandwidth: 1e9)
        XCTAssertEqual(devices.accel(0).allocator.copyBytesPerSecond, 1e9)
        XCTAssertEqual(devices.accel(3).allocator.copyBytesPerSecond, 1e9, "a device first named later gets it too")
        XCTAssertNil(devices.accel(3).allocator.capacity)
    }

    func testCopyBandwidthLimitIsHonoured() throws {
        let slow = Device.accel(1, copyBandwidth: 100e6)  // 100 MB/s
        let x = try Tensor.zeros([5_000_000], dtype: .f32)  // 20 MB → ≥ 0.2 s
        let start = Date()
        _ = try x.to(slow)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.19)
    }

    func testProcessPeakResidentSetIsReadable() throws {
        let before = try XCTUnwrap(ProcessMemory.peakResidentBytes)
        XCTAssertGreaterThan(before, 1 << 20)
        let resident = try XCTUnwrap(ProcessMemory.residentBytes)
        XCTAssertLessThanOrEqual(resident, before)
        // Touching 64 MiB of fresh pages raises the high-water mark by about that much (a
        // block the host's cache keeps would be resident already).
        Device.cpu.allocator.emptyCache()
        ProcessMemory.resetPeak()
        let base = try XCTUnwrap(ProcessMemory.peakResidentBytes)
        let big = try Tensor.zeros([16 << 20], dtype: .f32)
        let after = try XCTUnwrap(ProcessMemory.peakResidentBytes)
        XCTAssertGreaterThan(after - base, 60 << 20)
        withExtendedLifetime(big) {}
    }
}
