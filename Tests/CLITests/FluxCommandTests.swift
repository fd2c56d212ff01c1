import Foundation
import NN
import Tensor
import XCTest

/// FLUX through `diffuse`: the tiny dev pipeline gives Diffusers' image with the family's
/// defaults, what Diffusers ignores is ignored with a warning line, and bad FLUX inputs are
/// one clear sentence with nothing written.
extension CLITests {
    static var tinyFluxDev: String { packageRoot + "/Tests/Fixtures/tiny-flux-dev" }
    static var tinyFluxSchnell: String { packageRoot + "/Tests/Fixtures/tiny-flux-schnell" }

    /// The run of Diffusers' `square` fixture (seed 0, 3 steps, 32×32, guidance by default 3.5).
    func testFluxGenerateGivesDiffusersImage() throws {
        let work = try temporaryFolder("cli-flux")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let result = try run(["generate", "--model", Self.tinyFluxDev, "--prompt", "a red fox in the snow", "--steps", "3", "--width", "32",
                              "--height", "32", "--seed", "0", "--quiet", "--out", work + "/fox.png", "--save-tensor", work + "/fox.safetensors",
                              "--report", work + "/report.json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        let image = try SafeTensorsFile(path: work + "/fox.safetensors").tensor(named: "image").floats()
        let expected = try SafeTensorsFile(path: Self.tinyFluxDev + "/outputs/calls.safetensors").tensor(named: "square.image").floats()
        XCTAssertEqual(image.count, expected.count)
        XCTAssertLessThanOrEqual(zip(image, expected).map { abs($0 - $1) }.max() ?? 1, 2e-3)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/report.json"))) as? [String: Any]
        XCTAssertEqual((report?["options"] as? [String: String])?["guidance"], "3.5", "FLUX's default guidance")
    }

    /// Diffusers runs without true CFG when there is no negative prompt, and schnell ignores the
    /// guidance scale: the same here, each said on stderr as a warning line and in the report.
    func testFluxIgnoredOptionsWarn() throws {
        let work = try temporaryFolder("cli-flux-warn")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let base = ["generate", "--prompt", "a red fox in the snow", "--steps", "2", "--width", "32", "--height", "32"]
        let cfg = try run(base + ["--model", Self.tinyFluxDev, "--true-cfg-scale", "3", "--out", work + "/a.png", "--report", work + "/a.json"])
        XCTAssertEqual(cfg.status, 0, cfg.stderr)
        XCTAssertTrue(cfg.stderr.hasPrefix("warning: true_cfg_scale 3.0 was ignored"), cfg.stderr)
        let report = try String(contentsOfFile: work + "/a.json", encoding: .utf8)
        XCTAssertTrue(report.contains("true_cfg_scale 3.0 was ignored"), report)
        let schnell = try run(base + ["--model", Self.tinyFluxSchnell, "--guidance", "5", "--out", work + "/b.png"])
        XCTAssertEqual(schnell.status, 0, schnell.stderr)
        XCTAssertTrue(schnell.stderr.hasPrefix("warning: the guidance scale 5.0 was ignored"), schnell.stderr)
    }

    /// `--image` on a FLUX folder is FluxImg2ImgPipeline with Diffusers' defaults for it:
    /// strength 0.6 (3 of 4 steps: int(4 − 2.4) = 1 skipped) and guidance 7.0.
    func testFluxImageToImageDefaults() throws {
        let work = try temporaryFolder("cli-flux-i2i")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let result = try run(["generate", "--model", Self.tinyFluxDev, "--prompt", "a boat", "--steps", "4", "--image",
                              Self.tinyFluxDev + "/outputs/init.png", "--quiet", "--out", work + "/i2i.png", "--report", work + "/r.json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/r.json"))) as? [String: Any]
        let options = report?["options"] as? [String: String]
        XCTAssertEqual(options?["strength"], "0.6")
        XCTAssertEqual(options?["guidance"], "7.0")
        XCTAssertEqual(((report?["timings"] as? [String: Any])?["steps_s"] as? [Double])?.count, 3)
    }

    /// A pipeline folder of symbolic links to the tiny dev pipeline's files, less `replaced`.
    private func fluxCopy(_ root: String, replacing replaced: [String: Data]) throws -> String {
        let copy = root + "/pipeline"
        let manager = FileManager.default
        for case let relative as String in manager.enumerator(atPath: Self.tinyFluxDev)! {
            let source = Self.tinyFluxDev + "/" + relative, target = copy + "/" + relative
            var folder: ObjCBool = false
            _ = manager.fileExists(atPath: source, isDirectory: &folder)
            if folder.boolValue { try manager.createDirectory(atPath: target, withIntermediateDirectories: true) }
            else if replaced[relative] == nil { try manager.createSymbolicLink(atPath: target, withDestinationPath: source) }
        }
        for (relative, data) in replaced { try data.write(to: URL(fileURLWithPath: copy + "/" + relative)) }
        return copy
    }

    func assertFluxRefused(_ arguments: [String], model: String? = nil, naming fragment: String, in work: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let out = work + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let result = try run(["generate", "--model", model ?? Self.tinyFluxDev, "--prompt", "a fox", "--steps", "2", "--width", "32",
                              "--height", "32", "--out", out + "/x.png"] + arguments)
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("error: ") && result.stderr.contains(fragment), "\(fragment): \(result.stderr)", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [], "nothing written", file: file, line: line)
    }

    func testBadFluxInputsAreOneClearSentence() throws {
        let work = try temporaryFolder("cli-flux-bad")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try assertFluxRefused(["--max-sequence-length", "600"], naming: "max-sequence-length cannot be greater than 512", in: work)
        // Latents of the wrong shape: the unpacked noise is [1, 16, 16, 16] at 32×32.
        let latents = work + "/latents.safetensors"
        try SafeTensorsWriter.write(["latents": try Tensor.zeros([1, 16, 8, 8])], to: latents)
        try assertFluxRefused(["--latents", latents], naming: "[1, 16, 16, 16]", in: work)
        try assertFluxRefused(["--true-cfg-scale", "2"], model: Self.packageRoot + "/Tests/Fixtures/tiny-sd", naming: "has no true_cfg_scale", in: work)

        let config = try String(contentsOfFile: Self.tinyFluxDev + "/transformer/config.json", encoding: .utf8)
        // axes_dims_rope that do not add up to the head width.
        let axes = config.replacingOccurrences(of: #""axes_dims_rope": \[\s*4,\s*6,\s*6\s*\]"#, with: "\"axes_dims_rope\": [4, 6, 8]",
                                               options: .regularExpression)
        XCTAssertNotEqual(axes, config)
        try assertFluxRefused([], model: try fluxCopy(work + "/axes", replacing: ["transformer/config.json": Data(axes.utf8)]),
                              naming: "axes_dims_rope", in: work)

        // A transformer built for 48-wide text states beside the 32-wide T5, weights consistent with its config.
        let wide = config.replacingOccurrences(of: #""joint_attention_dim": 32"#, with: "\"joint_attention_dim\": 48", options: .regularExpression)
        XCTAssertNotEqual(wide, config)
        let weights = try SafeTensorsFile(path: Self.tinyFluxDev + "/transformer/diffusion_pytorch_model.safetensors")
        var tensors: [String: Tensor] = [:]
        for name in weights.names { tensors[name] = try weights.tensor(named: name) }
        tensors["context_embedder.weight"] = try Tensor.zeros([32, 48])
        let rewritten = work + "/wide.safetensors"
        try SafeTensorsWriter.write(tensors, to: rewritten)
        let widePipeline = try fluxCopy(work + "/wide", replacing: ["transformer/config.json": Data(wide.utf8),
                                                                     "transformer/diffusion_pytorch_model.safetensors": Data(contentsOf: URL(fileURLWithPath: rewritten))])
        try assertFluxRefused([], model: widePipeline, naming: "joint_attention_dim is 48", in: work)

        // Malformed Unigram tokenizer.json files.
        let tokenizer = try String(contentsOfFile: Self.tinyFluxDev + "/tokenizer_2/tokenizer.json", encoding: .utf8)
        let broken: [(String, String)] = [
            ("vocab", tokenizer.replacingOccurrences(of: "\"vocab\":", with: "\"vocabulary\":")),
            ("charsmap", tokenizer.replacingOccurrences(of: #""precompiled_charsmap":\s*"[^"]*""#, with: "\"precompiled_charsmap\": \"!!!not base64\"",
                                                        options: .regularExpression)),
            ("score", tokenizer.replacingOccurrences(of: #"\"<unk>\",\s*0\.0\s*\]"#, with: "\"<unk>\", \"zero\"]", options: .regularExpression)),
        ]
        for (name, text) in broken {
            XCTAssertNotEqual(text, tokenizer, name)
            try assertFluxRefused([], model: try fluxCopy(work + "/tok-\(name)", replacing: ["tokenizer_2/tokenizer.json": Data(text.utf8)]),
                                  naming: "tokenizer", in: work)
        }
    }
}
