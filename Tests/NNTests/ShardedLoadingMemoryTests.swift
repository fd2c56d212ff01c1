import Foundation
import NN
import Tensor
import XCTest

/// Shards are mapped one at a time: walking a sharded checkpoint raises the process's peak
/// resident set by about one shard, not by the model (read from VmHWM).
final class ShardedLoadingMemoryTests: XCTestCase {
    func testPeakResidentSetOfShardByShardLoadingIsAboutOneShard() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shard-rss-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tensorBytes = 8 << 20                      // 8 MiB per tensor
        let shardBytes = 2 * tensorBytes               // two tensors per shard
        let tensorCount = 12                           // 96 MiB in six shards
        // Written one tensor at a time so that building the fixture does not itself hold the model.
        var state: [(name: String, tensor: Tensor)] = []
        for i in 0..<tensorCount {
            let t = try Tensor.empty([tensorBytes / 4], dtype: .f32)
            let p = t.data.assumingMemoryBound(to: UInt32.self)
            for j in 0..<t.count { p[j] = UInt32(truncatingIfNeeded: i &* 2654435761 &+ j) }
            state.append((String(format: "block.%02d.weight", i), t))
        }
        let saved = try CheckpointWriter.save(state, to: folder, maxShardSize: shardBytes)
        XCTAssertEqual(saved.files.count, tensorCount / 2)
        state.removeAll()

        let checkpoint = try Checkpoint(folder: folder)
        ProcessMemory.resetPeak()
        let base = try XCTUnwrap(ProcessMemory.peakResidentBytes)
        var checksum: UInt64 = 0
        try checkpoint.forEachShard { _, tensors in
            for tensor in tensors.values {
                XCTAssertTrue(tensor.storage.isMapped)
                let p = tensor.data.assumingMemoryBound(to: UInt32.self)
                for j in stride(from: 0, to: tensor.count, by: 1024) { checksum &+= UInt64(p[j]) }
            }
        }
        let growth = try XCTUnwrap(ProcessMemory.peakResidentBytes) - base
        print("shard-by-shard walk: peak RSS grew \(formatBytes(growth)) for \(tensorCount / 2) shards of \(formatBytes(shardBytes))")
        XCTAssertNotEqual(checksum, 0)
        XCTAssertGreaterThan(growth, shardBytes / 2, "the pages of a shard were really touched")
        XCTAssertLessThan(growth, 2 * shardBytes, "peak grew by \(formatBytes(growth)); one shard is \(formatBytes(shardBytes)), the model \(formatBytes(tensorCount * tensorBytes))")
    }
}
