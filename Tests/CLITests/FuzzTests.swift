import Foundation
import XCTest

// The fuzz suite: every malformed input ends with exit status 1, nothing on stdout, one line
// on stderr starting "error: " that names what is at fault, no output left behind, and in
// bounded time (special files must not block); every valid control succeeds.
extension CLITests {
    /// A special file must be refused well before this; a clean error takes a second or less.
    static let fuzzLimit = 30.0

    func testMalformedInputsFailCleanlyAndControlsSucceed() throws {
        let base = CLITests.packageRoot + "/models/demo"
        let root = try temporaryFolder("diffuse-fuzz")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let harness = FuzzHarness(binary: try binary(), base: base, root: root)
        let cases = try FuzzCases.all(base: base)
        XCTAssertGreaterThanOrEqual(cases.filter { !$0.succeeds }.count, 150, "the suite's size")

        var failures: [String] = []
        for (index, fuzzCase) in cases.enumerated() {
            let folder = root + "/case-\(index)"
            let model = folder + "/model", out = folder + "/out", work = folder + "/work"
            for path in [out, work] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
            let substitute = { (text: String) in
                text.replacingOccurrences(of: "{model}", with: model).replacingOccurrences(of: "{out}", with: out)
                    .replacingOccurrences(of: "{work}", with: work).replacingOccurrences(of: "{root}", with: CLITests.packageRoot)
            }
            try harness.pipeline(model, replacing: fuzzCase.replacing)
            for (path, content) in fuzzCase.prepare {
                if case .link(let destination) = content {
                    try harness.place(.link(substitute(destination)), at: substitute(path))
                } else {
                    try harness.place(content, at: substitute(path))
                }
            }
            let before = FuzzHarness.contents(out)
            let outcome = try harness.run(fuzzCase.arguments.map(substitute), limit: Self.fuzzLimit)
            let after = FuzzHarness.contents(out)
            let label = "\(fuzzCase.name) [\(fuzzCase.arguments.map(substitute).joined(separator: " "))]"
            if outcome.timedOut {
                failures.append("\(label): still running after \(Self.fuzzLimit) s")
            } else if fuzzCase.succeeds {
                if outcome.status != 0 { failures.append("\(label): control failed with \(outcome.status): \(outcome.stderr)") }
            } else {
                let lines = outcome.stderr.split(separator: "\n")
                let message = substitute(fuzzCase.fragment)
                if outcome.status != 1 {
                    failures.append("\(label): exit \(outcome.status), stderr: \(outcome.stderr.suffix(300))")
                } else if lines.count != 1 || !outcome.stderr.hasPrefix("error: ") {
                    failures.append("\(label): not one error line: \(outcome.stderr.suffix(300))")
                } else if !outcome.stderr.contains(message) {
                    failures.append("\(label): the message does not name '\(message)': \(outcome.stderr)")
                } else if outcome.stdout.split(separator: "\n").contains(where: { !$0.hasPrefix("step ") }) {
                    failures.append("\(label): printed more than progress on stdout: \(outcome.stdout.prefix(200))")
                } else if after != before {
                    failures.append("\(label): left \(Set(after).subtracting(before).sorted()) behind")
                }
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(cases.count) cases:\n" + failures.joined(separator: "\n"))
    }
}
