import Foundation
import XCTest

/// `diffuse generate` without `--model` runs the demo pipeline shipped in models/demo.
extension CLITests {
    func testGenerateWithoutModelUsesTheDemoPipeline() throws {
        let folder = try temporaryFolder("cli-demo")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try run(["generate", "--prompt", "a large red circle on a blue background", "--steps", "2", "--seed", "42",
                              "--out", folder + "/image.png", "--report", folder + "/report.json"],
                             environment: ["DIFFUSE_DEMO_MODEL": nil])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/report.json"))) as? [String: Any])
        let options = try XCTUnwrap(report["options"] as? [String: String])
        XCTAssertEqual(options["model"].map { URL(fileURLWithPath: $0).standardized.path },
                       URL(fileURLWithPath: CLITests.packageRoot + "/models/demo").standardized.path)
        XCTAssertEqual(options["width"], "64", "the demo UNet's 16×16 latents through a VAE that scales by 4")
    }

    func testDemoModelEnvironmentVariable() throws {
        // Pointing elsewhere runs that pipeline; pointing at nothing is one clear error.
        let folder = try temporaryFolder("cli-demo-env")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try run(["generate", "--prompt", "a red circle", "--steps", "1", "--width", "64", "--height", "64",
                              "--out", folder + "/image.png"],
                             environment: ["DIFFUSE_DEMO_MODEL": CLITests.packageRoot + "/Tests/Fixtures/tiny-sd"])
        XCTAssertEqual(result.status, 0, result.stderr)
        try assertFailsWithOneLine(["generate", "--prompt", "a red circle", "--out", folder + "/never.png"],
                                   containing: "no --model given", environment: ["DIFFUSE_DEMO_MODEL": folder + "/missing"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/never.png"))
    }
}
