import Foundation
import Tensor
import XCTest

/// Derived copies of mapped weights in a spill file: written once, their pages released with
/// the weight's and read back from the file, never packed twice.
final class SpillFileTests: XCTestCase {
    final class Derived: StorageBackedValue {
        let backingStorage: Storage
        init(_ storage: Storage) { backingStorage = storage }
    }

    final class Plain {}

    /// A mapped f32 tensor holding `values` (a slot of its own spill file stands in for a checkpoint).
    func mappedTensor(_ values: [Float], shape: [Int], in file: SpillFile) throws -> Tensor {
        let storage = try file.allocate(byteCount: values.count * 4)
        values.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return Tensor(storage: storage, dtype: .f32, shape: shape)
    }

    func testSpilledDerivedDataOutlivesThePageRelease() throws {
        let file = try SpillFile(folder: NSTemporaryDirectory())
        let weight = try mappedTensor((0..<1000).map(Float.init), shape: [1000], in: file)
        XCTAssertTrue(weight.storage.isMapped)
        weight.storage.spillFile = file
        var made = 0
        let derived = try weight.storage.derived("copy") { () -> Derived in
            made += 1
            let slot = try weight.storage.derivedStorage(byteCount: 4000)
            slot.pointer.copyMemory(from: weight.storage.pointer, byteCount: 4000)
            return Derived(slot)
        }
        XCTAssertTrue(derived.backingStorage.isMapped, "the copy is a slot of the spill file")
        XCTAssertEqual(file.byteCount, 8000)
        _ = weight.storage.derived("plain") { Plain() }

        weight.storage.releaseResidentPages()
        let again = try weight.storage.derived("copy") { () -> Derived in made += 1; return Derived(try Storage(byteCount: 4, device: .cpu)) }
        XCTAssertTrue(again === derived, "kept across the release")
        XCTAssertEqual(made, 1)
        var rebuilt = false
        _ = weight.storage.derived("plain") { rebuilt = true; return Plain() }
        XCTAssertTrue(rebuilt, "derived data in memory goes with the release")
        // The released pages come back from the file with what was written.
        let back = Tensor(storage: again.backingStorage, dtype: .f32, shape: [1000])
        XCTAssertEqual(try back.floats(), (0..<1000).map(Float.init))
        XCTAssertEqual(try weight.floats(), (0..<1000).map(Float.init))

        // Without the file, derived copies are ordinary allocations again.
        weight.storage.spillFile = nil
        let owned = try weight.storage.derived("copy") { Derived(try weight.storage.derivedStorage(byteCount: 16)) }
        XCTAssertFalse(owned.backingStorage.isMapped)
        XCTAssertEqual(file.byteCount, 8000)
    }

    func testLargeSlotsStartOnHugePageBoundaries() throws {
        let file = try SpillFile(folder: NSTemporaryDirectory())
        _ = try file.allocate(byteCount: 100)
        let large = try file.allocate(byteCount: 3 << 20)
        let small = try file.allocate(byteCount: 10)
        XCTAssertEqual(file.byteCount, 100 + (3 << 20) + 10)
        // A large slot's mapping is 2 MiB-aligned when the kernel honours the file offset's alignment.
        XCTAssertEqual(Int(bitPattern: large.pointer) % 4096, 0)
        XCTAssertEqual(Int(bitPattern: small.pointer) % 4096, 0)
    }

    func testAnUnusableFolderIsAnError() {
        XCTAssertThrowsError(try SpillFile(folder: "/proc/no-such-folder")) { error in
            XCTAssertTrue("\(error)".contains("/proc/no-such-folder"), "\(error)")
        }
    }

    /// A convolution whose mapped weight has a spill file packs it into the file once: the
    /// numbers are those of the ordinary path, and a call after the release packs nothing.
    func testConvolutionPacksIntoTheSpillFileOnce() throws {
        let file = try SpillFile(folder: NSTemporaryDirectory())
        let (o, c) = (32, 16)
        let values = (0..<(o * c * 9)).map { Float(($0 * 37) % 101) / 101 - 0.5 }
        let weight = try mappedTensor(values, shape: [o, c, 3, 3], in: file)
        let reference = try Tensor(values, shape: [o, c, 3, 3])
        let x = try Tensor((0..<(2 * c * 12 * 12)).map { Float(($0 * 13) % 29) / 29 - 0.5 }, shape: [2, c, 12, 12])
        let expected = try x.conv2d(weight: reference, padding: 1).floats()

        weight.storage.spillFile = file
        let before = file.byteCount
        XCTAssertEqual(try x.conv2d(weight: weight, padding: 1).floats(), expected)
        let packed = file.byteCount - before
        XCTAssertGreaterThanOrEqual(packed, values.count * 4, "the packed weight went to the file")
        weight.storage.releaseResidentPages()
        XCTAssertEqual(try x.conv2d(weight: weight, padding: 1).floats(), expected)
        XCTAssertEqual(file.byteCount - before, packed, "not packed again after the release")
    }
}
