import Foundation
import XCTest

/// `diffuse generate --memory-budget` on the demo pipeline: bad budgets and combinations, a
/// budget no plan fits (refused before loading, nothing written), a roomy one (the plain image,
/// the plan in the report), and one whose working memory runs out (the allocator's error as one
/// sentence, not a kill) or is run again a plan down.
extension CLITests {
    func testMemoryBudgetBadValuesAndCombinations() throws {
        let base = ["generate", "--prompt", "x", "--steps", "1"]
        for (value, words) in [("0", "more than 0 bytes"), ("-1GB", "takes a size such as 6GB"), ("5 apples", "not '5 apples'"),
                               ("1e999GB", "not '1e999GB'"), ("12", "needs a unit")] {
            try assertFailsWithOneLine(base + ["--memory-budget", value], containing: words)
        }
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--offload", "group-leaf"], containing: "give --memory-budget or --offload")
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--device-map", "cpu"], containing: "--device-map and --max-memory")
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--device", "accel:0"], containing: "plans a run on the cpu")
    }

    func testMemoryBudgetPlansRefusesAndEnforces() throws {
        let folder = try temporaryFolder("cli-budget")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--prompt", "a red circle", "--seed", "3", "--steps", "2"]
        XCTAssertEqual(try run(base + ["--out", folder + "/plain.png"]).status, 0)

        // Roomy: every weight resident, the plain image, the plan and its limit in the report.
        let roomy = try run(base + ["--memory-budget", "8GB", "--out", folder + "/roomy.png", "--report", folder + "/roomy.json"])
        XCTAssertEqual(roomy.status, 0, roomy.stderr)
        XCTAssertTrue(roomy.stderr.contains("plan: --offload none within --memory-budget"), roomy.stderr)
        XCTAssertEqual(try imagePixels(folder + "/roomy.png"), try imagePixels(folder + "/plain.png"))
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/roomy.json"))) as? [String: Any])
        let plan = try XCTUnwrap(report["plan"] as? [String: Any])
        XCTAssertEqual(plan["chosen"] as? String, "--offload none")
        XCTAssertEqual(plan["budget_bytes"] as? Int, 8_000_000_000)
        let candidates = try XCTUnwrap(plan["candidates"] as? [[String: Any]])
        XCTAssertEqual(candidates.map { $0["technique"] as? String },
                       ["--offload none", "--offload group-block --blocks-per-group 1", "--offload group-leaf"])
        let cpu = try XCTUnwrap(((report["memory"] as? [String: Any])?["devices"] as? [String: [String: Int]])?["cpu"])
        XCTAssertEqual(cpu["capacity_bytes"], plan["allocator_limit_bytes"] as? Int)
        XCTAssertLessThanOrEqual(cpu["peak_bytes"] ?? .max, plan["allocator_limit_bytes"] as? Int ?? 0)

        // Below the smallest plan: refused before loading, the budget that would do named, nothing written.
        try assertFailsWithOneLine(base + ["--memory-budget", "1MB", "--out", folder + "/small.png", "--report", folder + "/small.json"],
                                   containing: "cannot hold this run")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/small.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/small.json"))

        // Resident weights fit with a mebibyte to spare, the computation does not: the phase
        // that runs out is run again a plan down (a step with the UNet group-offloaded, or the
        // decode tiled), said on a warning line and in the report.
        let process = try XCTUnwrap(plan["process_bytes"] as? Int), outputs = try XCTUnwrap(plan["output_bytes"] as? Int)
        let weights = candidates.compactMap { $0["weight_bytes_at_once"] as? Int }
        XCTAssertEqual(weights.count, 3)
        let tight = "\((process + outputs + weights[0]) / 1024 + 1024)KiB"
        let retried = try run(base + ["--memory-budget", tight, "--out", folder + "/tight.png", "--report", folder + "/tight.json"])
        XCTAssertEqual(retried.status, 0, retried.stderr)
        XCTAssertTrue(retried.stderr.contains("warning: a denoising step ran out of memory on cpu")
                      || retried.stderr.contains("warning: the VAE decode ran out of memory on cpu"), retried.stderr)
        let tightReport = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/tight.json"))) as? [String: Any])
        XCTAssertFalse(((tightReport["plan"] as? [String: Any])?["retried"] as? [String] ?? []).isEmpty)

        // Per leaf with half a mebibyte to spare: no plan below it, so the allocator's refusal is
        // the run's one sentence (or, should the process have grown, the refusal up front).
        let leafOnly = "\((process + outputs + weights[2]) / 1024 + 512)KiB"
        try assertFailsWithOneLine(base + ["--quiet", "--memory-budget", leafOnly, "--out", folder + "/leaf.png", "--report", folder + "/leaf.json"],
                                   containing: "--memory-budget")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/leaf.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/leaf.json"))
    }
}
