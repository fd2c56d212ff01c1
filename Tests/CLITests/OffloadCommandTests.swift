import Foundation
import XCTest

/// `diffuse generate` with placement and offloading options on the tiny pipeline.
extension CLITests {
    private var tinyPipeline: String { CLITests.packageRoot + "/Tests/Fixtures/tiny-sd" }

    func testOffloadOptionsGiveThePlainImageAndReportTransfers() throws {
        let folder = try temporaryFolder("cli-offload")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--model", tinyPipeline, "--prompt", "a red circle", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64"]
        let plain = try run(base + ["--out", folder + "/plain.png"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let expected = try imagePixels(folder + "/plain.png")
        for offload in [["--offload", "model"], ["--offload", "sequential"], ["--offload", "group-block", "--blocks-per-group", "1", "--stream"],
                        ["--offload", "group-leaf"], ["--offload", "none"]] {
            let name = offload.joined(separator: "_")
            let result = try run(base + ["--device", "accel:0", "--accel-capacity", "0=256MB", "--out", "\(folder)/\(name).png",
                                         "--report", "\(folder)/\(name).json"] + offload)
            XCTAssertEqual(result.status, 0, "\(offload): \(result.stderr)")
            XCTAssertEqual(try imagePixels("\(folder)/\(name).png"), expected, "\(offload): same image")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).json"))) as? [String: Any])
            let devices = try XCTUnwrap((report["memory"] as? [String: Any])?["devices"] as? [String: [String: Int]])
            XCTAssertEqual(devices["accel:0"]?["capacity_bytes"], 256_000_000)
            XCTAssertGreaterThan(devices["accel:0"]?["peak_bytes"] ?? 0, 0)
            let transfers = try XCTUnwrap(report["transfers"] as? [String: Any])
            if offload[1] != "none" {
                XCTAssertGreaterThan(transfers["bytes"] as? Int ?? 0, 0, "\(offload)")
                // Per component and hook: the parts add up to the total.
                let parts = try XCTUnwrap(transfers["by_hook"] as? [[String: Any]], "\(offload)")
                XCTAssertFalse(parts.isEmpty)
                XCTAssertEqual(parts.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) }, transfers["bytes"] as? Int)
                XCTAssertTrue(parts.allSatisfy { ($0["hook"] as? String)?.isEmpty == false && $0["component"] is String })
            }
        }
    }

    func testOffloadBadOptions() throws {
        let base = ["generate", "--model", tinyPipeline, "--prompt", "x", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64"]
        try assertFailsWithOneLine(base + ["--device", "accel:0", "--offload", "group-leaf", "--record-stream"], containing: "--stream")
        try assertFailsWithOneLine(base + ["--device", "accel:0", "--offload", "group-block"], containing: "--blocks-per-group")
        try assertFailsWithOneLine(base + ["--offload", "model"], containing: "accel")
        try assertFailsWithOneLine(base + ["--device", "gpu:0"], containing: "gpu:0")
        try assertFailsWithOneLine(base + ["--device", "accel:0", "--accel-capacity", "0=5 potatoes"], containing: "5 potatoes")
        try assertFailsWithOneLine(base + ["--device", "accel:0", "--offload", "magic"], containing: "magic")
        // A device too small for the model: the allocator's out-of-memory error, one line.
        try assertFailsWithOneLine(base + ["--device", "accel:0", "--accel-capacity", "0=100KB"], containing: "out of memory on accel:0")
    }

    func testModuleLevelDeviceMapsGiveThePlainImage() throws {
        let folder = try temporaryFolder("cli-device-map")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--model", tinyPipeline, "--prompt", "a red circle", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64"]
        XCTAssertEqual(try run(base + ["--out", folder + "/plain.png"]).status, 0)
        let expected = try imagePixels(folder + "/plain.png")
        let mapFile = folder + "/map.json"
        try Data(#"{"text_encoder": 1, "unet": 0, "unet.mid_block": "cpu", "unet.up_blocks": "disk", "vae": "accel:1"}"#.utf8)
            .write(to: URL(fileURLWithPath: mapFile))
        let capacities = ["--accel-capacity", "0=64MB,1=64MB"]
        for (name, value) in [("file", mapFile), ("auto", "auto")] {
            let extra = name == "auto" ? ["--max-memory", "0=1MB,1=1MB,cpu=1GB"] : []
            let result = try run(base + capacities + extra + ["--device-map", value, "--out", "\(folder)/\(name).png",
                                                             "--report", "\(folder)/\(name).json"])
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            XCTAssertEqual(try imagePixels("\(folder)/\(name).png"), expected, name)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).json"))) as? [String: Any])
            let map = try XCTUnwrap(report["device_map"] as? [String: String])
            let transfers = try XCTUnwrap(report["transfers"] as? [String: Any])
            XCTAssertGreaterThan(transfers["bytes"] as? Int ?? 0, 0, "\(name): cpu/disk modules streamed")
            if name == "file" {
                XCTAssertEqual(map["unet.mid_block"], "cpu")
                XCTAssertEqual(map["unet.up_blocks"], "disk")
                XCTAssertEqual(map["text_encoder"], "accel:1")
            } else {
                XCTAssertTrue(map.values.contains("cpu"), "\(map)")
            }
        }
        try Data(#"{"unet.nope": 0}"#.utf8).write(to: URL(fileURLWithPath: mapFile))
        try assertFailsWithOneLine(base + capacities + ["--device-map", mapFile], containing: "nope")
        try Data(#"{"unet": "gpu:0"}"#.utf8).write(to: URL(fileURLWithPath: mapFile))
        try assertFailsWithOneLine(base + capacities + ["--device-map", mapFile], containing: "gpu:0")
        try assertFailsWithOneLine(base + capacities + ["--device-map", "everywhere"], containing: "everywhere")
        try assertFailsWithOneLine(base + ["--device", "accel:0", "--accel-capacity", "0=20KB", "--offload", "sequential"],
                                   containing: "19.53 KiB free")
    }

    func testVAESlicingAndTilingOptions() throws {
        let folder = try temporaryFolder("cli-vae")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The tiny VAE's sample_size is 32 px: a 64 px image decodes in 2×2 tiles and more.
        let base = ["generate", "--model", tinyPipeline, "--prompt", "a red circle", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64",
                    "--batch", "2"]
        let plain = try run(base + ["--out", folder + "/plain.png", "--save-tensor", folder + "/plain.safetensors"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let sliced = try run(base + ["--vae-slicing", "--out", folder + "/sliced.png", "--save-tensor", folder + "/sliced.safetensors"])
        XCTAssertEqual(sliced.status, 0, sliced.stderr)
        let tiled = try run(base + ["--vae-tiling", "--vae-tile-size", "32", "--out", folder + "/tiled.png",
                                    "--save-tensor", folder + "/tiled.safetensors", "--report", folder + "/tiled.json"])
        XCTAssertEqual(tiled.status, 0, tiled.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/tiled.json"))) as? [String: Any])
        XCTAssertEqual((report["options"] as? [String: String])?["vae_tiling"], "32 px tiles")
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/tiled.safetensors")),
                          try Data(contentsOf: URL(fileURLWithPath: folder + "/plain.safetensors")), "tiling changes the decode")
        try assertFailsWithOneLine(base + ["--vae-tiling", "--vae-tile-size", "15"], containing: "multiple of")
        try assertFailsWithOneLine(base + ["--vae-tile-size", "32"], containing: "--vae-tiling")
    }

    func testAttentionOption() throws {
        let folder = try temporaryFolder("cli-attention")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--model", tinyPipeline, "--prompt", "a red circle", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64"]
        for value in ["naive", "flash", "sliced", "sliced:2"] {
            let result = try run(base + ["--attention", value, "--out", "\(folder)/\(value).png"])
            XCTAssertEqual(result.status, 0, "\(value): \(result.stderr)")
        }
        try assertFailsWithOneLine(base + ["--attention", "sliced:99"], containing: "smaller or equal")
        try assertFailsWithOneLine(base + ["--attention", "quantum"], containing: "quantum")
        try assertFailsWithOneLine(base + ["--attention", "sliced:0"], containing: "at least 1")
    }

    func testStorageDTypeOption() throws {
        let folder = try temporaryFolder("cli-storage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = ["generate", "--model", tinyPipeline, "--prompt", "a red circle", "--seed", "0", "--steps", "1", "--width", "64", "--height", "64"]
        for extra in [["--storage-dtype", "f8e4m3"], ["--storage-dtype", "f8e4m3", "--dtype", "bf16", "--offload", "group-leaf"],
                      ["--storage-dtype", "f8e5m2", "--device", "accel:0", "--offload", "group-block", "--blocks-per-group", "1", "--stream"]] {
            let result = try run(base + extra + ["--out", folder + "/x.png"])
            XCTAssertEqual(result.status, 0, "\(extra): \(result.stderr)")
        }
        try assertFailsWithOneLine(base + ["--storage-dtype", "int8"], containing: "int8")
    }
}
