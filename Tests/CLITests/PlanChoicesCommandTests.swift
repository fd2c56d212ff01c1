import Foundation
import XCTest

/// What a budget's plan chooses besides the placement, on the demo pipeline: a batch decoded one
/// image at a time where its whole decode does not fit (the plain run's images, bit for bit), and
/// the memory-efficient attention kernel in place of a requested naive one whose score matrices
/// do not fit.
extension CLITests {
    /// The candidates `diffuse plan --json` weighs for `request` within `budget`.
    private func plannedCandidates(_ request: [String], budget: String) throws -> [[String: Any]] {
        let planned = try run(["plan", "--json"] + request + ["--memory-budget", budget])
        XCTAssertEqual(planned.status, 0, planned.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(planned.stdout.utf8)) as? [String: Any])
        return try XCTUnwrap(object["candidates"] as? [[String: Any]])
    }

    /// `request` within the budget `needed` plus a tenth: the run's report, its peak within the budget.
    private func runWithinTenthOver(_ needed: Int, _ request: [String], out: String) throws -> (report: [String: Any], stderr: String) {
        let budget = "\(needed / 1024 + needed / 10240)KiB"
        let result = try run(["generate"] + request + ["--memory-budget", budget, "--out", out + ".png", "--save-tensor", out + ".safetensors",
                                                       "--report", out + ".json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + ".json"))) as? [String: Any])
        let peak = try XCTUnwrap((report["memory"] as? [String: Any])?["process_peak_rss_bytes"] as? Int)
        XCTAssertLessThanOrEqual(peak, try HostMemoryBudgetText.bytes(budget))
        return (report, result.stderr)
    }

    private func need(_ candidate: [String: Any]) -> Int { candidate["needed_bytes"] as? Int ?? .max }
    private func techniques(_ candidate: [String: Any]) -> [String: Any] { candidate["techniques"] as? [String: Any] ?? [:] }

    func testABudgetDecodesTheBatchOneImageAtATime() throws {
        let folder = try temporaryFolder("cli-plan-slicing")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let request = ["--prompt", "a red circle", "--seed", "5", "--steps", "1", "--width", "256", "--height", "256", "--batch", "6"]
        let roomy = try plannedCandidates(request, budget: "8GB")
        let whole = roomy.filter { techniques($0)["vae_slicing"] as? Bool == false }.map(need).min() ?? 0
        let sliced = try XCTUnwrap(roomy.filter { techniques($0)["vae_slicing"] as? Bool == true }.min { need($0) < need($1) })
        XCTAssertLessThan(need(sliced) + need(sliced) / 10, whole, "one image at a time holds one image's decode")
        let (report, stderr) = try runWithinTenthOver(need(sliced), request, out: folder + "/sliced")
        XCTAssertTrue(stderr.contains("--vae-slicing within --memory-budget"), stderr)
        XCTAssertEqual(((report["plan"] as? [String: Any])?["chosen"] as? [String: Any])?["images_per_chunk"] as? Int, nil,
                       "the whole batch, decoded one image at a time")
        // The plain run's images, bit for bit.
        XCTAssertEqual(try run(["generate"] + request + ["--out", folder + "/plain.png", "--save-tensor", folder + "/plain.safetensors"]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/sliced.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: folder + "/plain.safetensors")))
    }

    func testABudgetReplacesANaiveAttentionKernelThatCannotFit() throws {
        let folder = try temporaryFolder("cli-plan-attention")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let request = ["--prompt", "a red circle", "--seed", "6", "--steps", "1", "--width", "256", "--height", "256", "--attention", "naive"]
        let naive = try plannedCandidates(request, budget: "8GB")
        XCTAssertEqual(naive.count, 3, "where the requested kernel fits, no other is weighed")
        // Well below every plan with whole score matrices: the memory-efficient kernel is weighed, and chosen.
        let tight = try plannedCandidates(request, budget: "\((naive.map(need).min() ?? 0) / 2048)KiB")
        let flash = try XCTUnwrap(tight.filter { techniques($0)["attention"] as? String == "flash" }.min { need($0) < need($1) })
        XCTAssertLessThan(need(flash) + need(flash) / 10, naive.map(need).min() ?? 0)
        XCTAssertTrue((flash["command_line"] as? String)?.hasSuffix(" --attention flash") == true, "\(flash)")
        let (report, stderr) = try runWithinTenthOver(need(flash), request, out: folder + "/flash")
        XCTAssertTrue(stderr.contains("--attention flash within --memory-budget"), stderr)
        let plan = try XCTUnwrap(report["plan"] as? [String: Any])
        XCTAssertEqual((plan["chosen"] as? [String: Any])?["attention"] as? String, "flash")
        // The images of the chosen techniques asked for by hand (the memory-efficient kernel, and
        // whatever else the plan picked beside it, such as a tiled decode).
        let chosen = try XCTUnwrap(plan["chosen_command_line"] as? String)
        XCTAssertTrue(chosen.hasSuffix(" --attention flash"), chosen)
        let byHand = request.filter { $0 != "naive" && $0 != "--attention" } + chosen.split(separator: " ").map(String.init)
        XCTAssertEqual(try run(["generate"] + byHand + ["--out", folder + "/hand.png", "--save-tensor", folder + "/hand.safetensors"]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/flash.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: folder + "/hand.safetensors")))
    }
}
