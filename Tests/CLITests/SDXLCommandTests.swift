import Foundation
import NN
import Tensor
import XCTest

/// The guide's SDXL examples through `diffuse`: the UNet re-saved in shards and loaded in bf16,
/// the base-to-refiner ensemble by files, and SDXL's flags refused where they cannot apply.
extension CLITests {
    static var tinySDXL: String { packageRoot + "/Tests/Fixtures/tiny-sdxl" }

    func generateSDXL(_ model: String, _ extra: [String], tensor: String) throws {
        let result = try run(["generate", "--model", model, "--prompt", "a red circle", "--steps", "2", "--width", "32", "--height", "32",
                              "--guidance", "5", "--seed", "0", "--quiet", "--out", tensor + ".png", "--save-tensor", tensor] + extra)
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// `unet.save_pretrained(max_shard_size=...)`, then the pipeline from those shards in bf16: the
    /// same image as from the single file.
    func testShardedSDXLUNetLoadsInBF16() throws {
        let root = try temporaryFolder("cli-sdxl-shard")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let copy = root + "/pipeline"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.tinySDXL) where name != "unet" && name != "outputs" {
            try FileManager.default.createSymbolicLink(atPath: copy + "/" + name, withDestinationPath: Self.tinySDXL + "/" + name)
        }
        let shard = try run(["shard", Self.tinySDXL + "/unet", "--max-shard-size", "500KB", "--out", copy + "/unet"])
        XCTAssertEqual(shard.status, 0, shard.stderr)
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: copy + "/unet").contains("diffusion_pytorch_model.safetensors.index.json"))
        try generateSDXL(Self.tinySDXL, ["--dtype", "bf16"], tensor: root + "/single.safetensors")
        try generateSDXL(copy, ["--dtype", "bf16"], tensor: root + "/sharded.safetensors")
        let sharded = try SafeTensorsFile(path: root + "/sharded.safetensors").tensor(named: "image").floats()
        let single = try SafeTensorsFile(path: root + "/single.safetensors").tensor(named: "image").floats()
        XCTAssertTrue(sharded == single, "the same image from the shards, bit for bit")
    }

    func testSDXLFlagsAreCheckedAndRefused() throws {
        let work = try temporaryFolder("cli-sdxl-flags")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let base = ["generate", "--model", Self.tinySDXL, "--prompt", "x", "--steps", "2", "--width", "32", "--height", "32", "--out", work + "/x.png"]
        for (extra, fragment) in [(["--original-size", "1024"], "--original-size must be WIDTHxHEIGHT"),
                                  (["--original-size", "0x512"], "--original-size must be WIDTHxHEIGHT"),
                                  (["--original-size=-8x8"], "--original-size must be WIDTHxHEIGHT"),
                                  (["--crops-coords-top-left", "1,2,3"], "--crops-coords-top-left must be TOP,LEFT"),
                                  (["--denoising-end", "1"], "--denoising-end must be between 0 and 1"),
                                  (["--denoising-start", "0.5"], "--denoising-start applies to image-to-image"),
                                  (["--aesthetic-score", "6"], "StableDiffusionXLPipeline has no aesthetic_score")] {
            let result = try run(base + extra)
            XCTAssertEqual(result.status, 1, "\(extra)")
            XCTAssertTrue(result.stderr.contains(fragment), "\(extra): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/x.png"))
        }
        // --image-latents whose shape the UNet cannot take.
        try SafeTensorsWriter.write(["latents": try Tensor.zeros([1, 3, 16, 16])], to: work + "/bad.safetensors")
        let bad = try run(base + ["--image-latents", work + "/bad.safetensors"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("--image-latents") && bad.stderr.contains("[B, 4, h, w]"), bad.stderr)
        // SD has no SDXL arguments.
        let sd = try run(["generate", "--model", Self.packageRoot + "/Tests/Fixtures/tiny-sd", "--prompt", "x", "--steps", "2",
                          "--denoising-end", "0.5", "--out", work + "/y.png"])
        XCTAssertEqual(sd.status, 1)
        XCTAssertTrue(sd.stderr.contains("StableDiffusionPipeline has no denoising_end"), sd.stderr)
    }

    /// `--image` on an SDXL folder selects SDXL's image-to-image pipeline, with its default
    /// strength (0.3, Diffusers' for StableDiffusionXLImg2ImgPipeline).
    func testImageToImageOnSDXL() throws {
        let work = try temporaryFolder("cli-sdxl-i2i")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let result = try run(["generate", "--model", Self.tinySDXL, "--prompt", "a red circle", "--steps", "4", "--width", "32",
                              "--height", "32", "--image", Self.packageRoot + "/Tests/Fixtures/tiny-sd/init.png", "--quiet",
                              "--out", work + "/i2i.png", "--report", work + "/report.json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/report.json"))) as? [String: Any]
        XCTAssertEqual((report?["options"] as? [String: String])?["strength"], "0.3")
        XCTAssertEqual(((report?["timings"] as? [String: Any])?["steps_s"] as? [Double])?.count, 1, "0.3 of 4 steps")
        XCTAssertEqual(Set(((report?["device_map"] as? [String: String]) ?? [:]).keys), ["text_encoder", "text_encoder_2", "unet", "vae"])
    }

    /// The base stops at 0.8 and saves its latents; the refiner continues from them.
    func testBaseToRefinerEnsembleByFiles() throws {
        let work = try temporaryFolder("cli-sdxl-ensemble")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try generateSDXL(Self.tinySDXL, ["--steps", "10", "--denoising-end", "0.8", "--save-latents", work + "/latents.safetensors"],
                         tensor: work + "/base.safetensors")
        let refined = try run(["generate", "--model", Self.packageRoot + "/Tests/Fixtures/tiny-sdxl-refiner", "--prompt", "a red circle",
                               "--steps", "10", "--guidance", "5", "--image-latents", work + "/latents.safetensors", "--denoising-start", "0.8",
                               "--quiet", "--out", work + "/refined.png", "--report", work + "/report.json"])
        XCTAssertEqual(refined.status, 0, refined.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/report.json"))) as? [String: Any]
        let steps = try XCTUnwrap((report?["timings"] as? [String: Any])?["steps_s"] as? [Double])
        XCTAssertEqual(steps.count, 2, "the refiner runs the last 2 of 10 steps")
    }
}
