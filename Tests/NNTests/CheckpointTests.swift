import Foundation
import NN
import Tensor
import TestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    private func expected() throws -> JSONValue {
        try JSONParser.parse(readBytes(checkpointFixtures + "/expected.json"))
    }

    func testResolvesDiffusersFolders() throws {
        let single = try Checkpoint(folder: checkpointFixtures + "/unet-single")
        XCTAssertEqual(single.files, ["diffusion_pytorch_model.safetensors"])
        let sharded = try Checkpoint(folder: checkpointFixtures + "/unet-sharded")
        XCTAssertEqual(sharded.files.count, 6)
        let fp16 = try Checkpoint(folder: checkpointFixtures + "/unet-fp16-sharded", variant: "fp16")
        XCTAssertEqual(fp16.files, ["diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                                    "diffusion_pytorch_model.fp16-00002-of-00002.safetensors"])
        XCTAssertEqual(Checkpoint.availableVariants(in: checkpointFixtures + "/unet-fp16-sharded"), ["fp16"])
        XCTAssertThrowsError(try Checkpoint(folder: checkpointFixtures + "/unet-fp16-sharded")) { error in
            guard case CheckpointError.noWeights = error else { return XCTFail("\(error)") }
        }
    }

    func testTotalsMatchDiffusersExpectations() throws {
        let folders = try XCTUnwrap(try expected()["folders"])
        for (name, variant) in [("unet-single", nil), ("unet-sharded", nil), ("unet-fp16-sharded", "fp16")] as [(String, String?)] {
            let checkpoint = try Checkpoint(folder: checkpointFixtures + "/" + name, variant: variant)
            let entries = try checkpoint.headers().flatMap(\.header.entries)
            let info = try XCTUnwrap(folders[name])
            XCTAssertEqual(entries.count, info["total_tensors"]?.intValue, name)
            XCTAssertEqual(entries.reduce(0) { $0 + $1.elementCount }, info["total_parameters"]?.intValue, name)
            XCTAssertEqual(entries.reduce(0) { $0 + $1.byteCount }, info["total_data_bytes"]?.intValue, name)
            if case .sharded(let index) = checkpoint.layout {
                XCTAssertEqual(index.totalSize, info["index_total_size"]?.intValue, name)
            }
        }
    }

    func testShardedAndSingleLoadTheSameTensors() throws {
        let single = try Checkpoint(folder: checkpointFixtures + "/unet-single").loadAll()
        var seen = 0
        var shardsVisited: [String] = []
        try Checkpoint(folder: checkpointFixtures + "/unet-sharded").forEachShard { file, tensors in
            shardsVisited.append(file)
            for (name, tensor) in tensors {
                XCTAssertTrue(tensor.storage.isMapped)
                XCTAssertEqual(try tensor.bytes(), try single[name]?.bytes(), name)
                seen += 1
            }
        }
        XCTAssertEqual(seen, single.count)
        XCTAssertEqual(shardsVisited, shardsVisited.sorted())
    }

    func testLoadAllConvertsIntoOwnedCopies() throws {
        let f32 = try Checkpoint(folder: checkpointFixtures + "/unet-single").loadAll()
        let converted = try Checkpoint(folder: checkpointFixtures + "/unet-fp16-sharded", variant: "fp16").loadAll(dtype: .f32)
        XCTAssertEqual(converted.count, f32.count)
        for (name, tensor) in converted {
            XCTAssertEqual(tensor.dtype, .f32)
            XCTAssertFalse(tensor.storage.isMapped, name)
            // fp16 of the same weights: within half precision.
            let a = try tensor.floats(), b = try XCTUnwrap(f32[name]).floats()
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: abs(y) * 1e-3 + 1e-4, name) }
        }
    }

    func testIndexPreferredOverSingleFileAndLegacyVariantIndex() throws {
        let folder = try makeTemporaryFolder(self)
        let a = try Tensor([1, 2], shape: [2])
        try SafeTensorsWriter.write(["a": a], to: folder + "/diffusion_pytorch_model.safetensors")
        try SafeTensorsWriter.write(["a": a], to: folder + "/shard.safetensors")
        try writeFile(folder + "/diffusion_pytorch_model.safetensors.index.json", #"{"weight_map": {"a": "shard.safetensors"}}"#)
        XCTAssertEqual(try Checkpoint(folder: folder).files, ["shard.safetensors"])
        // Legacy variant spelling.
        try SafeTensorsWriter.write(["a": a], to: folder + "/v.safetensors")
        try writeFile(folder + "/diffusion_pytorch_model.safetensors.fp16.index.json", #"{"weight_map": {"a": "v.safetensors"}}"#)
        XCTAssertEqual(try Checkpoint(folder: folder, variant: "fp16").files, ["v.safetensors"])
    }

    func testTransformersNames() throws {
        let folder = try makeTemporaryFolder(self)
        try SafeTensorsWriter.write(["w": try Tensor([1], shape: [1])], to: folder + "/model.safetensors")
        XCTAssertEqual(try Checkpoint(folder: folder).files, ["model.safetensors"])
    }

    func testMissingShardIsNamed() throws {
        let folder = try makeTemporaryFolder(self)
        let index = folder + "/diffusion_pytorch_model.safetensors.index.json"
        try writeFile(index, #"{"metadata": {"total_size": 8}, "weight_map": {"a": "diffusion_pytorch_model-00001-of-00002.safetensors"}}"#)
        assertThrows(CheckpointError.missingShard(folder: folder, shard: "diffusion_pytorch_model-00001-of-00002.safetensors", index: index)) {
            try Checkpoint(folder: folder)
        }
    }

    func testShardPathOutsideTheFolderIsRejected() throws {
        let folder = try makeTemporaryFolder(self)
        let index = folder + "/diffusion_pytorch_model.safetensors.index.json"
        for shard in ["../evil.safetensors", "sub/x.safetensors", "/etc/passwd", "..", "a\\\\b.safetensors"] {
            try writeFile(index, "{\"weight_map\": {\"a\": \"\(shard)\"}}")
            let expectedName = shard.replacingOccurrences(of: "\\\\", with: "\\")
            assertThrows(CheckpointError.shardPathNotAllowed(index: index, shard: expectedName)) { try Checkpoint(folder: folder) }
        }
        XCTAssertTrue(CheckpointError.shardPathNotAllowed(index: index, shard: "../x").description
            .contains("contains a path separator or a parent-directory reference"))
    }

    func testTensorListedButAbsentFromItsShard() throws {
        let folder = try makeTemporaryFolder(self)
        try SafeTensorsWriter.write(["a": try Tensor([1], shape: [1])], to: folder + "/s.safetensors")
        let index = folder + "/diffusion_pytorch_model.safetensors.index.json"
        try writeFile(index, #"{"weight_map": {"a": "s.safetensors", "b": "s.safetensors"}}"#)
        let checkpoint = try Checkpoint(folder: folder)
        assertThrows(CheckpointError.tensorMissingFromShard(index: index, tensor: "b", shard: "s.safetensors")) {
            try checkpoint.forEachShard { _, _ in }
        }
    }

    func testNoWeightsListsTheNamesTried() throws {
        let folder = try makeTemporaryFolder(self)
        XCTAssertThrowsError(try Checkpoint(folder: folder)) { error in
            guard case CheckpointError.noWeights(_, let tried) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(tried.contains("diffusion_pytorch_model.safetensors"))
            XCTAssertTrue(tried.contains("model.safetensors.index.json"))
        }
        assertThrows(CheckpointError.folderNotFound(path: folder + "/x")) { try Checkpoint(folder: folder + "/x") }
        assertThrows(CheckpointError.invalidVariant(variant: "../x", reason: "it must be a plain name such as fp16")) {
            try Checkpoint(folder: folder, variant: "../x")
        }
    }

    func testModelConfigAccessors() throws {
        let config = try ModelConfig(path: checkpointFixtures + "/unet-single/config.json")
        XCTAssertEqual(config.className, "UNet2DConditionModel")
        XCTAssertEqual(config.diffusersVersion, "0.42.1")
        XCTAssertEqual(try config.ints("block_out_channels"), [16, 32])
        XCTAssertEqual(try config.int("in_channels"), 4)
        XCTAssertEqual(try config.string("act_fn"), "silu")
        XCTAssertEqual(try config.bool("center_input_sample"), false)
        XCTAssertEqual(try config.strings("down_block_types"), ["DownBlock2D", "CrossAttnDownBlock2D"])
        XCTAssertNil(try config.optionalString("addition_embed_type"))
        XCTAssertEqual(try config.int("missing_key", default: 7), 7)
        XCTAssertFalse(config.entries.contains { $0.key.hasPrefix("_") })
        let path = checkpointFixtures + "/unet-single/config.json"
        assertThrows(CheckpointError.configKeyType(path: path, key: "act_fn", expected: "an integer", found: "a string")) {
            try config.int("act_fn")
        }
        assertThrows(CheckpointError.missingConfigKey(path: path, key: "nope")) { try config.double("nope") }
        XCTAssertEqual(try config.double("norm_eps"), 1e-5, accuracy: 1e-12)
    }

    func testPipelineIndex() throws {
        let folder = try makeTemporaryFolder(self)
        let path = folder + "/model_index.json"
        try writeFile(path, """
            {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1", "feature_extractor": [null, null],
             "requires_safety_checker": false, "text_encoder": ["transformers", "CLIPTextModel"],
             "unet": ["diffusers", "UNet2DConditionModel"], "_name_or_path": "x"}
            """)
        let index = try PipelineIndex(path: path)
        XCTAssertEqual(index.className, "StableDiffusionPipeline")
        XCTAssertEqual(index.components.map(\.name), ["text_encoder", "unet"])
        XCTAssertEqual(index.components.last?.className, "UNet2DConditionModel")
        XCTAssertEqual(index.options.map(\.key), ["requires_safety_checker"])
    }
}
