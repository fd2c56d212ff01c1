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
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--device-map", "cpu"], containing: "--device-map places weights by hand")
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--max-memory", "0=1GB"], containing: "add --device accel:N")
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--device", "accel:0", "--max-memory", "cpu=1GB"], containing: "not 'cpu=1GB'")
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--device", "accel:0", "--max-memory", "0=0"], containing: "more than 0 bytes")
        try assertFailsWithOneLine(base + ["--allow-lossy"], containing: "add --memory-budget")
        try assertFailsWithOneLine(base + ["--memory-budget", "8GB", "--allow-lossy", "--storage-dtype", "f8e4m3"], containing: "give one")
        // Images alone past the budget (64 at 2048², 768 MiB): refused as it stands, nothing
        // rehearsed (timing the operations of such a run for real once grew to the OOM killer).
        try assertFailsWithOneLine(base + ["--memory-budget", "50MB", "--width", "2048", "--height", "2048", "--batch", "64"],
                                   containing: "cannot hold this run: the process")
    }

    func testMemoryBudgetPlansRefusesAndEnforces() throws {
        let folder = try temporaryFolder("cli-budget")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--prompt", "a red circle", "--seed", "3", "--steps", "2"]
        XCTAssertEqual(try run(base + ["--out", folder + "/plain.png"]).status, 0)

        // Roomy: every weight resident, the plain image; the plan, its prediction and its limit in
        // the report, the measured peak within the budget and near the prediction.
        let roomy = try run(base + ["--memory-budget", "8GB", "--out", folder + "/roomy.png", "--report", folder + "/roomy.json"])
        XCTAssertEqual(roomy.status, 0, roomy.stderr)
        XCTAssertTrue(roomy.stderr.contains("plan: --offload none within --memory-budget"), roomy.stderr)
        XCTAssertEqual(try imagePixels(folder + "/roomy.png"), try imagePixels(folder + "/plain.png"))
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/roomy.json"))) as? [String: Any])
        let plan = try XCTUnwrap(report["plan"] as? [String: Any])
        XCTAssertEqual(plan["fits"] as? Bool, true)
        XCTAssertEqual((plan["chosen"] as? [String: Any])?["offload"] as? String, "none")
        XCTAssertEqual(plan["budget_bytes"] as? Int, 8_000_000_000)
        let candidates = try XCTUnwrap(plan["candidates"] as? [[String: Any]])
        // Where the plain decode fits, no tile size is weighed.
        XCTAssertEqual(candidates.map { $0["command_line"] as? String },
                       ["--offload none", "--offload group-block --blocks-per-group 1", "--offload group-leaf"])
        let memory = try XCTUnwrap(report["memory"] as? [String: Any])
        let cpu = try XCTUnwrap((memory["devices"] as? [String: [String: Int]])?["cpu"])
        XCTAssertEqual(cpu["capacity_bytes"], plan["allocator_limit_bytes"] as? Int)
        XCTAssertLessThanOrEqual(cpu["peak_bytes"] ?? .max, plan["allocator_limit_bytes"] as? Int ?? 0)
        let predicted = try XCTUnwrap(plan["predicted"] as? [String: Any])
        XCTAssertEqual((predicted["devices"] as? [String: Int])?["cpu"], cpu["peak_bytes"], "the rehearsal's host peak is the run's")
        XCTAssertNotNil(predicted["step_s"] as? Double)
        let measured = try XCTUnwrap(memory["process_peak_rss_bytes"] as? Int), forecast = try XCTUnwrap(predicted["process_peak_rss_bytes"] as? Int)
        XCTAssertLessThan(abs(Double(forecast - measured)) / Double(measured), 0.25, "predicted \(forecast), measured \(measured)")

        // Below the smallest plan: refused before loading, the budget that would do named, nothing written.
        try assertFailsWithOneLine(base + ["--memory-budget", "1MB", "--out", folder + "/small.png", "--report", folder + "/small.json"],
                                   containing: "cannot hold this run")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/small.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/small.json"))

        // An image whose whole decode does not fit but whose tiled one does: the tiled plan is
        // chosen, and the run stays within the budget.
        let big = ["generate", "--prompt", "a red circle", "--seed", "3", "--steps", "1", "--width", "512", "--height", "512"]
        func needs(_ budget: String, tiled: Bool) throws -> [Int] {
            let planned = try run(["plan", "--json"] + big.dropFirst() + ["--memory-budget", budget])
            XCTAssertEqual(planned.status, 0, planned.stderr)
            let options = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(planned.stdout.utf8)) as? [String: Any])
            return try XCTUnwrap(options["candidates"] as? [[String: Any]])
                .filter { ($0["techniques"] as? [String: Any])?["vae_tiling"] as? Bool == tiled }.compactMap { $0["needed_bytes"] as? Int }
        }
        let whole = try needs("8GB", tiled: false)
        XCTAssertEqual(whole.count, 3)
        XCTAssertEqual(try needs("8GB", tiled: true), [], "no tiles weighed where the whole decode fits")
        // Well below every whole decode (a prediction moves by a megabyte from one process to the
        // next): tiles are weighed, largest first, until one fits.
        let tiles = try needs("\((whole.min() ?? 0) / 2048)KiB", tiled: true)
        let least = try XCTUnwrap(tiles.min())
        XCTAssertLessThan(least + least / 10, whole.min() ?? 0, "tiling the decode lowers the peak at 512² below every whole decode's: \(tiles), \(whole)")
        let between = "\(least / 1024 + least / 10240)KiB"   // the tiled plan's need and a tenth
        let tiled = try run(big + ["--memory-budget", between, "--out", folder + "/tiled.png", "--report", folder + "/tiled.json"])
        XCTAssertEqual(tiled.status, 0, tiled.stderr)
        XCTAssertTrue(tiled.stderr.contains("--vae-tiling within --memory-budget"), tiled.stderr)
        let tiledReport = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/tiled.json"))) as? [String: Any])
        let tiledPeak = try XCTUnwrap((tiledReport["memory"] as? [String: Any])?["process_peak_rss_bytes"] as? Int)
        XCTAssertLessThanOrEqual(tiledPeak, try HostMemoryBudgetText.bytes(between))
    }

    /// `--max-memory 0=SIZE` with `--device accel:0`: model and sequential offload are weighed
    /// too, the fastest plan whose rehearsed accelerator peak fits runs, its peak there is the
    /// predicted one and within the budget (enforced as the device's capacity), and its images
    /// are those of the same techniques asked for by hand; a budget no plan fits names the least.
    func testAnAcceleratorBudgetChoosesThePlacement() throws {
        let folder = try temporaryFolder("cli-accel-budget")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let request = ["--prompt", "a red circle", "--seed", "3", "--steps", "2", "--device", "accel:0", "--accel-bandwidth", "2GB", "--memory-budget", "8GB"]
        let roomy = try run(["plan", "--json"] + request + ["--max-memory", "0=8GB"])
        XCTAssertEqual(roomy.status, 0, roomy.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(roomy.stdout.utf8)) as? [String: Any])
        let candidates = try XCTUnwrap(object["candidates"] as? [[String: Any]])
        var peaks: [String: Int] = [:], steps: [String: Double] = [:]
        for candidate in candidates {
            let line = try XCTUnwrap(candidate["command_line"] as? String)
            let predicted = try XCTUnwrap(candidate["predicted"] as? [String: Any], line)
            peaks[line] = try XCTUnwrap((predicted["devices"] as? [String: Int])?["accel:0"], line)
            steps[line] = try XCTUnwrap(predicted["step_s"] as? Double, line)
        }
        let blocks = "--offload group-block --blocks-per-group 1", streamed = blocks + " --stream"
        // Where copies take time, group offload is weighed copying one group ahead, and more.
        XCTAssertEqual(Set(peaks.keys).subtracting(["--offload none", "--offload model", blocks, "--offload group-leaf", "--offload sequential"]).count, 4,
                       "\(peaks.keys.sorted())")
        XCTAssertLessThan(try XCTUnwrap(peaks[blocks]), try XCTUnwrap(peaks["--offload none"]), "grouped by blocks, the accelerator holds less than resident")
        XCTAssertGreaterThan(try XCTUnwrap(peaks[streamed]), try XCTUnwrap(peaks[blocks]), "the group copied ahead is held too")
        XCTAssertLessThan(try XCTUnwrap(steps[streamed]), try XCTUnwrap(steps[blocks]), "its copy overlaps the computation")
        let budget = (try XCTUnwrap(peaks[streamed]) + (try XCTUnwrap(peaks["--offload model"]))) / 2   // above the streamed blocks' peak, below model offload's

        let run = try self.run(["generate"] + request + ["--max-memory", "0=\(budget)", "--out", folder + "/budget.png", "--report", folder + "/budget.json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/budget.json"))) as? [String: Any])
        let plan = try XCTUnwrap(report["plan"] as? [String: Any])
        let chosen = try XCTUnwrap(plan["chosen"] as? [String: Any])
        let accel = try XCTUnwrap(((report["memory"] as? [String: Any])?["devices"] as? [String: [String: Int]])?["accel:0"])
        let predicted = try XCTUnwrap(((plan["predicted"] as? [String: Any])?["devices"] as? [String: Int])?["accel:0"])
        XCTAssertEqual(chosen["stream"] as? Bool, true, "\(chosen)")
        // Copies ahead interleave with the computation as the threads run: the rehearsal saw one
        // interleaving (the plan adds the window copied ahead), the run another.
        let measured = try XCTUnwrap(accel["peak_bytes"])
        XCTAssertLessThanOrEqual(measured, budget)
        XCTAssertGreaterThan(measured, predicted * 3 / 4)
        XCTAssertLessThan(measured, predicted * 5 / 4)
        XCTAssertLessThanOrEqual(predicted, budget)
        XCTAssertEqual(accel["capacity_bytes"], budget, "the budget is enforced as the device's capacity")
        XCTAssertNotEqual(chosen["offload"] as? String, "none")
        let same = try XCTUnwrap(plan["chosen_command_line"] as? String).split(separator: " ").map(String.init)
        let byHand = request.prefix(request.count - 2) + same + ["--out", folder + "/hand.png"]
        XCTAssertEqual(try self.run(["generate"] + byHand).status, 0)
        XCTAssertEqual(try imagePixels(folder + "/budget.png"), try imagePixels(folder + "/hand.png"))
        // Copying ahead changes when bytes move, not the numbers.
        let unstreamed = request.prefix(request.count - 2) + same.filter { $0 != "--stream" && !$0.hasSuffix("KiB") && $0 != "--prefetch-bytes" }
        XCTAssertEqual(try self.run(["generate"] + unstreamed + ["--out", folder + "/unstreamed.png"]).status, 0)
        XCTAssertEqual(try imagePixels(folder + "/budget.png"), try imagePixels(folder + "/unstreamed.png"))

        try assertFailsWithOneLine(["generate"] + request + ["--max-memory", "0=1MB", "--out", folder + "/none.png"],
                                   containing: "no plan fits accel:0 within")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/none.png"))
        try assertFailsWithOneLine(["generate"] + request + ["--max-memory", "0=8GB", "--stream", "--out", folder + "/none.png"],
                                   containing: "--memory-budget chooses whether group offload copies groups ahead")
    }

    /// `diffuse plan`: the run rehearsed without reading a weight; the JSON object the issue
    /// names; nothing written; the plan of a run that cannot fit the machine says so.
    func testPlanCommand() throws {
        let folder = try temporaryFolder("cli-plan")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let asked = try run(["plan", "--prompt", "x", "--steps", "2", "--out", folder + "/never.png"])
        XCTAssertEqual(asked.status, 0, asked.stderr)
        XCTAssertTrue(asked.stdout.hasPrefix("chosen within the"), asked.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/never.png"))
        let json = try run(["plan", "--json", "--prompt", "x", "--steps", "2", "--memory-budget", "4GB"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        for key in ["fits", "chosen", "predicted", "candidates", "minimum_budget_bytes"] { XCTAssertNotNil(object[key], key) }
        let predicted = try XCTUnwrap(object["predicted"] as? [String: Any])
        XCTAssertGreaterThan(predicted["process_peak_rss_bytes"] as? Int ?? 0, 0)
        XCTAssertNotNil(predicted["devices"] as? [String: Int])
        XCTAssertNotNil(predicted["step_s"] as? Double)
        try assertFailsWithOneLine(["plan", "--prompt", "x", "--device-map", "cpu"], containing: "does not rehearse --device-map")
        try assertFailsWithOneLine(["plan", "--prompt", "x", "--memory-budget", "5 apples"], containing: "not '5 apples'")
        // Without a budget, a request whose rehearsed peak exceeds the memory available is refused up front.
        try assertFailsWithOneLine(["generate", "--prompt", "x", "--steps", "1", "--width", "1024", "--height", "1024", "--batch", "4",
                                    "--attention", "naive", "--out", folder + "/huge.png"], containing: "more than the")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/huge.png"))
    }
}

/// Budget texts as the command reads them, for the tests' comparisons.
enum HostMemoryBudgetText {
    static func bytes(_ text: String) throws -> Int {
        guard text.hasSuffix("KiB"), let kib = Int(text.dropLast(3)) else { throw NSError(domain: "budget", code: 1) }
        return kib * 1024
    }
}
