import Foundation
import XCTest

/// `--images-per-chunk` on the demo pipeline, and a budget whose plan runs the batch in chunks.
extension CLITests {
    func testImagesPerChunkOptionsAndRefusals() throws {
        let folder = try temporaryFolder("cli-chunks")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--prompt", "a red circle", "--seed", "4", "--steps", "2", "--batch", "3"]
        try assertFailsWithOneLine(base + ["--images-per-chunk", "0"], containing: "--images-per-chunk must be at least 1, not 0")
        try assertFailsWithOneLine(base + ["--images-per-chunk", "3"], containing: "splits a batch of more than 3 images; --batch is 3")
        try assertFailsWithOneLine(base + ["--images-per-chunk", "1", "--memory-budget", "4GB"], containing: "leave out --images-per-chunk")
        try assertFailsWithOneLine(base + ["--images-per-chunk", "1", "--scheduler", "euler-a", "--out", folder + "/a.png"],
                                   containing: "draws noise at every step")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/a-0.png"))

        // The same images as the whole batch, file for file.
        XCTAssertEqual(try run(base + ["--out", folder + "/whole.png"]).status, 0)
        let chunked = try run(base + ["--images-per-chunk", "2", "--out", folder + "/chunked.png", "--report", folder + "/chunked.json"])
        XCTAssertEqual(chunked.status, 0, chunked.stderr)
        for index in 0..<3 {
            XCTAssertEqual(try imagePixels(folder + "/chunked-\(index).png"), try imagePixels(folder + "/whole-\(index).png"), "image \(index)")
        }
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/chunked.json"))) as? [String: Any])
        XCTAssertEqual((report["options"] as? [String: Any])?["images_per_chunk"] as? String, "2")
    }

    /// A budget below every whole-batch plan's peak but above a chunked one's: the plan runs the
    /// batch in chunks, its peak stays under the budget, and its images are those of the same
    /// techniques on the whole batch.
    func testABudgetRunsTheBatchInChunks() throws {
        let folder = try temporaryFolder("cli-budget-chunks")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let request = ["--prompt", "a red circle", "--seed", "2", "--steps", "1", "--width", "256", "--height", "256", "--batch", "8"]
        func plan(_ budget: String) throws -> [[String: Any]] {
            let planned = try run(["plan", "--json"] + request + ["--memory-budget", budget])
            XCTAssertEqual(planned.status, 0, planned.stderr)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(planned.stdout.utf8)) as? [String: Any])
            return try XCTUnwrap(object["candidates"] as? [[String: Any]])
        }
        // Roomy: the whole batch fits, no chunk size is weighed: each technique decoding whole and
        // one image at a time.
        let roomy = try plan("8GB")
        XCTAssertEqual(roomy.count, 6)
        XCTAssertEqual(roomy.filter { ($0["techniques"] as? [String: Any])?["vae_slicing"] as? Bool == true }.count, 3)
        let wholeNeed = try XCTUnwrap(roomy.compactMap { $0["needed_bytes"] as? Int }.min())
        // A tenth under every whole-batch plan (a prediction moves by a megabyte from one process to
        // the next): chunk sizes are weighed, halving until one fits.
        let tight = try plan("\(wholeNeed / 1024 * 9 / 10)KiB")
        // The resident ones, decoding whole (group offloading's peak on this tiny pipeline is
        // predicted less closely than the planner's headroom allows: BENCHMARKS.md).
        let chunked = tight.filter {
            let techniques = $0["techniques"] as? [String: Any]
            return techniques?["images_per_chunk"] is Int && techniques?["offload"] as? String == "none" && techniques?["vae_tiling"] as? Bool == false
        }
        XCTAssertFalse(chunked.isEmpty, "\(tight.map { $0["command_line"] ?? "" })")
        let best = try XCTUnwrap(chunked.min { ($0["needed_bytes"] as? Int ?? .max) < ($1["needed_bytes"] as? Int ?? .max) })
        let bestNeed = try XCTUnwrap(best["needed_bytes"] as? Int)
        XCTAssertLessThan(bestNeed + bestNeed / 20, wholeNeed, "chunks hold less: \(bestNeed) vs \(wholeNeed)")

        let budget = "\((bestNeed + bestNeed / 20) / 1024)KiB"
        let result = try run(["generate"] + request + ["--memory-budget", budget, "--out", folder + "/budget.png",
                                                       "--report", folder + "/budget.json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("--images-per-chunk"), result.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/budget.json"))) as? [String: Any])
        let chosen = try XCTUnwrap(report["plan"] as? [String: Any])
        let peak = try XCTUnwrap((report["memory"] as? [String: Any])?["process_peak_rss_bytes"] as? Int)
        XCTAssertLessThanOrEqual(peak, try HostMemoryBudgetText.bytes(budget))

        // The same techniques asked for by hand, and on the whole batch: the same images.
        var same = try XCTUnwrap(chosen["chosen_command_line"] as? String).split(separator: " ").map(String.init)
        let chunkOption = try XCTUnwrap(same.firstIndex(of: "--images-per-chunk"))
        same.removeSubrange(chunkOption...chunkOption + 1)
        XCTAssertEqual(try run(["generate"] + request + same + ["--out", folder + "/whole.png"]).status, 0)
        for index in 0..<8 {
            XCTAssertEqual(try imagePixels(folder + "/budget-\(index).png"), try imagePixels(folder + "/whole-\(index).png"), "image \(index)")
        }
    }
}
