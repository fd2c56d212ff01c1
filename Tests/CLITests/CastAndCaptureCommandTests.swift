import Foundation
import XCTest

/// `diffuse cast` (a model saved in its layerwise-casting storage dtype, mapped as it is by
/// later runs), `--capture` and `--[no-]channels-last` on the tiny pipeline.
extension CLITests {
    private var tinySD: String { CLITests.packageRoot + "/Tests/Fixtures/tiny-sd" }

    func testCastWritesTheStorageDTypeAndGenerateUsesIt() throws {
        let folder = NSTemporaryDirectory() + "cli-cast-" + UUID().uuidString
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder + "/pipeline", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: folder) }
        let cast = try run(["cast", tinySD + "/unet", "--storage-dtype", "f8e4m3", "--out", folder + "/pipeline/unet"])
        XCTAssertEqual(cast.status, 0, cast.stderr)
        XCTAssertTrue(cast.stdout.contains("in f8e4m3fn"), cast.stdout)
        let inspect = try run(["inspect", folder + "/pipeline/unet/diffusion_pytorch_model.safetensors"])
        XCTAssertTrue(inspect.stdout.contains("F8_E4M3"), inspect.stdout)
        XCTAssertTrue(fm.fileExists(atPath: folder + "/pipeline/unet/config.json"))

        // The other components of the tiny pipeline beside the cast UNet.
        for name in ["model_index.json", "tokenizer", "text_encoder", "vae", "scheduler"] {
            try fm.createSymbolicLink(atPath: folder + "/pipeline/" + name, withDestinationPath: tinySD + "/" + name)
        }
        let base = ["generate", "--prompt", "a red circle", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64", "--storage-dtype", "f8e4m3"]
        let original = try run(base + ["--model", tinySD, "--out", folder + "/original.png"])
        let saved = try run(base + ["--model", folder + "/pipeline", "--out", folder + "/saved.png"])
        XCTAssertEqual(original.status, 0, original.stderr)
        XCTAssertEqual(saved.status, 0, saved.stderr)
        XCTAssertEqual(try imagePixels(folder + "/saved.png"),
                       try imagePixels(folder + "/original.png"), "the saved storage dtype gives the same image")

        try assertFailsWithOneLine(["cast", tinySD + "/unet", "--storage-dtype", "i64", "--out", folder + "/x"], containing: "i64")
        try assertFailsWithOneLine(["cast", tinySD + "/text_encoder", "--storage-dtype", "bf16", "--out", folder + "/x"], containing: "UNet2DConditionModel and AutoencoderKL")
        try assertFailsWithOneLine(["cast", tinySD + "/unet", "--storage-dtype", "bf16", "--out", tinySD + "/unet/"], containing: "another folder")
        XCTAssertFalse(fm.fileExists(atPath: folder + "/x"), "nothing written after a refusal")
    }

    func testCaptureAndMemoryFormatOptionsGiveThePlainImage() throws {
        let folder = try temporaryFolder("cli-capture")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--model", tinySD, "--prompt", "a red circle", "--seed", "0", "--steps", "3", "--width", "64", "--height", "64"]
        let plain = try run(base + ["--out", folder + "/plain.png"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let captured = try run(base + ["--capture", "--out", folder + "/captured.png", "--report", folder + "/captured.json"])
        XCTAssertEqual(captured.status, 0, captured.stderr)
        XCTAssertEqual(try imagePixels(folder + "/captured.png"),
                       try imagePixels(folder + "/plain.png"), "captured: the same image")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/captured.json"))) as? [String: Any])
        let capture = try XCTUnwrap(report["capture"] as? [String: Int])
        XCTAssertGreaterThan(capture["arena_bytes"] ?? 0, 0)
        XCTAssertLessThanOrEqual(capture["arena_bytes"] ?? .max, capture["eager_peak_bytes"] ?? 0)
        let nchw = try run(base + ["--no-channels-last", "--save-tensor", folder + "/nchw.safetensors", "--out", folder + "/nchw.png"])
        XCTAssertEqual(nchw.status, 0, nchw.stderr)
    }

    func testProfileReportsEachPhaseByOpClass() throws {
        let folder = try temporaryFolder("cli-profile")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--model", tinySD, "--prompt", "a red circle", "--seed", "0", "--steps", "3", "--width", "64", "--height", "64"]
        let plain = try run(base + ["--out", folder + "/plain.png", "--report", folder + "/plain.json"])
        let profiled = try run(base + ["--profile", "--out", folder + "/profiled.png", "--report", folder + "/profiled.json"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(profiled.status, 0, profiled.stderr)
        XCTAssertEqual(try imagePixels(folder + "/profiled.png"),
                       try imagePixels(folder + "/plain.png"), "profiling changes no number")
        func report(_ name: String) throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))) as? [String: Any])
        }
        XCTAssertNil(try report("plain.json")["profile"])
        let profile = try XCTUnwrap(try report("profiled.json")["profile"] as? [String: [String: Any]])
        XCTAssertEqual(Set(profile.keys), ["text_encoder", "unet_first_step", "unet_step", "vae_decode"])
        XCTAssertEqual(profile["unet_step"]?["entries"] as? Int, 3, "PNDM: 4 UNet calls for 3 steps, all but the first")
        let step = try XCTUnwrap(profile["unet_step"]?["seconds"] as? [String: Double])
        XCTAssertGreaterThan(step["convolution"] ?? 0, 0)
        XCTAssertGreaterThan(step["attention"] ?? 0, 0)
        XCTAssertGreaterThan((profile["text_encoder"]?["seconds"] as? [String: Double])?["matmul"] ?? 0, 0)
        XCTAssertGreaterThan((profile["unet_step"]?["operations"] as? [String: Double])?["conv2d"] ?? 0, 0)
        try assertFailsWithOneLine(base + ["--profile", "--out", folder + "/x.png"], containing: "--report")
    }
}
