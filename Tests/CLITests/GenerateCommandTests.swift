import Foundation
import XCTest

/// `diffuse generate` on the tiny SD pipeline: files, report, image-to-image, and every bad
/// input the issue lists ending as one error line with exit status 1.
extension CLITests {
    private var pipeline: String { CLITests.packageRoot + "/Tests/Fixtures/tiny-sd" }

    func testGenerateWritesImagesTensorAndReport() throws {
        let folder = try temporaryFolder("cli-generate")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try run(["generate", "--model", pipeline, "--prompt", "a red circle", "--steps", "2", "--width", "64",
                              "--height", "64", "--batch", "2", "--seed", "7", "--out", folder + "/image.png",
                              "--save-tensor", folder + "/image.safetensors", "--report", folder + "/report.json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        for name in ["image-0.png", "image-1.png"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
            XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], name)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/image.safetensors"))
        XCTAssertTrue(result.stdout.contains("image-0.png"), result.stdout)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/report.json"))) as? [String: Any])
        let timings = try XCTUnwrap(report["timings"] as? [String: Any])
        for key in ["load_s", "text_encoder_s", "denoise_s", "vae_decode_s", "total_s"] { XCTAssertNotNil(timings[key] as? Double, key) }
        XCTAssertEqual((timings["steps_s"] as? [Double])?.count, 3, "PNDM runs 3 UNet calls for 2 steps")
        let memory = try XCTUnwrap(report["memory"] as? [String: Any])
        XCTAssertGreaterThan(memory["process_peak_rss_bytes"] as? Int ?? 0, 0)
        XCTAssertNotNil((memory["devices"] as? [String: Any])?["cpu"])
        XCTAssertEqual((report["options"] as? [String: String])?["seed"], "7")
        XCTAssertNotNil(report["device_map"] as? [String: String])
        XCTAssertEqual((report["outputs"] as? [String])?.count, 3)
    }

    func testImageToImage() throws {
        let folder = try temporaryFolder("cli-generate")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try run(["generate", "--model", pipeline, "--prompt", "a blue square", "--image", pipeline + "/init.png",
                              "--strength", "0.5", "--steps", "2", "--scheduler", "ddim", "--out", folder + "/out.png"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/out.png"))
    }

    /// A pipeline folder whose components link to the tiny one, with `edit` applied.
    private func brokenPipeline(_ edit: (String) throws -> Void) throws -> String {
        let folder = try temporaryFolder("cli-generate")
        let manager = FileManager.default
        try manager.copyItem(atPath: pipeline + "/model_index.json", toPath: folder + "/model_index.json")
        for component in ["tokenizer", "text_encoder", "scheduler", "vae", "unet"] {
            try manager.createDirectory(atPath: folder + "/" + component, withIntermediateDirectories: true)
            for file in try manager.contentsOfDirectory(atPath: pipeline + "/" + component) {
                try manager.copyItem(atPath: "\(pipeline)/\(component)/\(file)", toPath: "\(folder)/\(component)/\(file)")
            }
        }
        try edit(folder)
        return folder
    }

    func testGenerateBadInputs() throws {
        let base = ["generate", "--prompt", "x", "--steps", "1", "--width", "64", "--height", "64"]
        let noVAE = try brokenPipeline { try FileManager.default.removeItem(atPath: $0 + "/vae") }
        let unknownBlock = try brokenPipeline { folder in
            let path = folder + "/unet/config.json"
            let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"UpBlock2D\"", with: "\"KUpBlock2D\"")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let wrongShape = try brokenPipeline { folder in
            let weights = folder + "/unet/diffusion_pytorch_model.safetensors"
            try FileManager.default.removeItem(atPath: weights)
            try FileManager.default.copyItem(atPath: CLITests.packageRoot + "/Tests/Fixtures/tiny-sd-v/unet/diffusion_pytorch_model.safetensors",
                                             toPath: weights)
        }
        let notPNG = NSTemporaryDirectory() + "not-a-png-\(UUID().uuidString).png"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notPNG))
        defer { for path in [noVAE, unknownBlock, wrongShape, notPNG] { try? FileManager.default.removeItem(atPath: path) } }

        try assertFailsWithOneLine(base + ["--model", noVAE], containing: "vae")
        try assertFailsWithOneLine(base + ["--model", unknownBlock], containing: "KUpBlock2D")
        try assertFailsWithOneLine(base + ["--model", wrongShape], containing: "wrong shape")
        try assertFailsWithOneLine(["generate", "--model", pipeline, "--prompt", "x", "--width", "60"], containing: "multiple of 8")
        try assertFailsWithOneLine(["generate", "--model", pipeline, "--prompt", "x", "--image", pipeline + "/init.png",
                                    "--strength", "1.5"], containing: "strength")
        try assertFailsWithOneLine(base + ["--model", pipeline, "--image", notPNG], containing: "PNG")
        try assertFailsWithOneLine(["generate", "--model", pipeline, "--prompt", "x", "--batch", "0"], containing: "batch")
        try assertFailsWithOneLine(["generate", "--model", pipeline], containing: "prompt")
        try assertFailsWithOneLine(["generate", "--model", pipeline, "--prompt", "x", "--scheduler", "magic"], containing: "scheduler")
        try assertFailsWithOneLine(base + ["--model", pipeline, "--latents", notPNG], containing: notPNG)
    }
}
