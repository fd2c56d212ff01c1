import Foundation
import Images
import XCTest

enum CLITestError: Error, CustomStringConvertible {
    case binaryNotBuilt(String)
    var description: String { "no diffuse binary beside \(self.path); build all products before testing" }
    private var path: String { if case .binaryNotBuilt(let p) = self { return p }; return "" }
}

/// Runs the built `diffuse` binary as a subprocess.
final class CLITests: XCTestCase {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    private let fixtures = CLITests.packageRoot + "/Tests/Fixtures/checkpoints"

    /// The products folder holds the test bundle and the `diffuse` executable side by side.
    func binary() throws -> String {
        // On Linux the bundle URL is the products folder itself; on macOS it is the .xctest
        // bundle inside it. Never fall back to another configuration's (possibly stale) binary.
        var url = Bundle(for: CLITests.self).bundleURL
        for _ in 0..<3 {
            let candidate = url.appendingPathComponent("diffuse").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        throw CLITestError.binaryNotBuilt(Bundle(for: CLITests.self).bundleURL.path)
    }

    /// Runs `diffuse` with `arguments`; `environment` entries are added to (or, with nil values,
    /// removed from) this process's environment.
    func run(_ arguments: [String], environment: [String: String?] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        if !environment.isEmpty {
            var merged = ProcessInfo.processInfo.environment
            for (key, value) in environment { merged[key] = value }
            process.environment = merged
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting so a large output cannot fill the pipe and block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    /// A fresh empty folder under the temporary directory, named `prefix-<uuid>`; the caller removes it.
    func temporaryFolder(_ prefix: String) throws -> String {
        let folder = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The decoded pixels of the image at `path` (two runs give "the same image" when these are
    /// equal; the files differ in their parameters, which name the model folder).
    func imagePixels(_ path: String) throws -> [UInt8] { try Image(contentsOfFile: path).pixels }

    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func assertFailsWithOneLine(_ arguments: [String], containing fragment: String, environment: [String: String?] = [:],
                                        file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try run(arguments, environment: environment)
        XCTAssertEqual(result.status, 1, file: file, line: line)
        XCTAssertTrue(result.stdout.isEmpty, result.stdout, file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("error: "), result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(fragment), result.stderr, file: file, line: line)
    }

    func testInspectTotalsMatchDiffusersExpectations() throws {
        let expected = try json(String(decoding: try Data(contentsOf: URL(fileURLWithPath: fixtures + "/expected.json")), as: UTF8.self))
        let folders = try XCTUnwrap(expected["folders"] as? [String: [String: Any]])
        for name in ["unet-single", "unet-sharded", "unet-fp16-sharded"] {
            let result = try run(["inspect", fixtures + "/" + name, "--json"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try json(result.stdout)
            let totals = try XCTUnwrap(report["totals"] as? [String: Int])
            let info = try XCTUnwrap(folders[name])
            XCTAssertEqual(totals["tensors"], info["total_tensors"] as? Int, name)
            XCTAssertEqual(totals["parameters"], info["total_parameters"] as? Int, name)
            XCTAssertEqual(totals["bytes"], info["total_data_bytes"] as? Int, name)
            XCTAssertEqual(report["class_name"] as? String, "UNet2DConditionModel")
            XCTAssertEqual((report["files"] as? [String])?.sorted(), (info["weight_files"] as? [String])?.sorted(), name)
        }
    }

    func testInspectTextOfAFileAndAnIndex() throws {
        let file = try run(["inspect", fixtures + "/unet-single/diffusion_pytorch_model.safetensors"])
        XCTAssertEqual(file.status, 0)
        XCTAssertTrue(file.stdout.contains("conv_in.weight"))
        XCTAssertTrue(file.stdout.contains("F32"))
        XCTAssertTrue(file.stdout.contains("[16, 4, 3, 3]"))
        XCTAssertTrue(file.stdout.contains("tensors: 208  parameters: 253364  bytes: 1013456"))
        let index = try run(["inspect", fixtures + "/unet-sharded/diffusion_pytorch_model.safetensors.index.json", "--json"])
        XCTAssertEqual(index.status, 0, index.stderr)
        XCTAssertEqual(try json(index.stdout)["kind"] as? String, "index")
    }

    func testInspectPipelineFolder() throws {
        let folder = NSTemporaryDirectory() + "cli-pipeline-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/tokenizer", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixtures + "/unet-sharded", toPath: folder + "/unet")
        try Data(#"{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "safety_checker": [null, null]}"#.utf8)
            .write(to: URL(fileURLWithPath: folder + "/model_index.json"))
        let result = try run(["inspect", folder, "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try json(result.stdout)
        XCTAssertEqual(report["kind"] as? String, "pipeline")
        XCTAssertEqual((report["totals"] as? [String: Int])?["tensors"], 208)
        let components = try XCTUnwrap(report["components"] as? [String: Any])
        XCTAssertEqual(Set(components.keys), ["unet", "tokenizer"])
    }

    /// A component model_index.json names whose folder is absent: one sentence, exit 1.
    func testInspectPipelineWithAMissingComponentFolder() throws {
        let folder = NSTemporaryDirectory() + "cli-pipeline-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/tokenizer", withIntermediateDirectories: true)
        try Data(#"{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "tokenizer": ["transformers", "CLIPTokenizer"]}"#.utf8)
            .write(to: URL(fileURLWithPath: folder + "/model_index.json"))
        let result = try run(["inspect", folder])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("has no unet folder"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stdout.isEmpty, result.stdout)
    }

    func testShardThenInspect() throws {
        let out = NSTemporaryDirectory() + "cli-shard-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try run(["shard", fixtures + "/unet-single", "--max-shard-size", "200KB", "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("wrote 6 weight file(s) with 208 tensors"))
        // In the model's state_dict order, as Diffusers' save_pretrained(max_shard_size="200KB")
        // wrote unet-sharded: the same file names, tensor-to-shard assignment and weight_map, byte for byte.
        let expected = try FileManager.default.contentsOfDirectory(atPath: fixtures + "/unet-sharded").sorted()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), expected)
        for name in expected {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: fixtures + "/unet-sharded/" + name)), name)
        }
        let inspect = try run(["inspect", out, "--json"])
        XCTAssertEqual((try json(inspect.stdout)["totals"] as? [String: Int])?["bytes"], 1013456)
        // Back to one file: no index remains.
        let single = try run(["shard", out, "--out", out])
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(),
                       ["config.json", "diffusion_pytorch_model.safetensors"])
    }

    func testBadInputIsOneErrorLineAndExitOne() throws {
        let folder = try temporaryFolder("cli-bad")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/tiny.safetensors"))
        try Data(#"{"weight_map": {"a": "../x.safetensors"}}"#.utf8).write(to: URL(fileURLWithPath: folder + "/diffusion_pytorch_model.safetensors.index.json"))

        try assertFailsWithOneLine(["inspect", folder + "/nope"], containing: "nope")
        try assertFailsWithOneLine(["inspect", folder + "/tiny.safetensors"], containing: "too small")
        try assertFailsWithOneLine(["inspect", folder], containing: "path separator")
        try assertFailsWithOneLine(["shard", fixtures + "/unet-single", "--max-shard-size", "5GiB", "--out", folder + "/o"],
                                   containing: "Unit 'IB' not supported")
        try assertFailsWithOneLine(["shard", folder + "/nope", "--out", folder + "/o"], containing: "no such folder")
        try assertFailsWithOneLine(["inspect"], containing: "Missing expected argument")
        try assertFailsWithOneLine(["frobnicate"], containing: "frobnicate")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/o"))
    }

    func testHelpExitsZero() throws {
        let result = try run(["--help"])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.stdout.contains("inspect"))
        XCTAssertTrue(result.stdout.contains("shard"))
    }
}
