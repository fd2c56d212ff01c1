import NN
import Tensor
import TestSupport
import XCTest
import Models

/// The tiny Stable Diffusion components (Fixtures/tiny-sd, random weights) against the outputs
/// Diffusers/transformers computed for them (f32, within DESIGN.md's 1e-4 relative L2).
final class TinySDModelTests: XCTestCase {
    static let folder = Fixtures.path("tiny-sd")

    func testCLIPTextEncoder() throws {
        let config = try CLIPTextConfig(ModelConfig(path: Self.folder + "/text_encoder/config.json"))
        let model = CLIPTextModel(config)
        try model.load(from: Checkpoint(folder: Self.folder + "/text_encoder"))
        let f = try Fixtures.file("tiny-sd/outputs/text_encoder.safetensors")
        let out = try model(f.tensor(named: "input_ids"), outputHiddenStates: true)
        try assertMatches(out.lastHiddenState, f.tensor(named: "last_hidden_state"), "last hidden state")
        try assertMatches(out.pooledOutput, f.tensor(named: "pooler_output"), "pooled output")
        try assertMatches(out.hiddenStates[0], f.tensor(named: "embeddings"), "embeddings")
        let penultimate = try out.hiddenStates[out.hiddenStates.count - 2].narrowed(axis: 0, start: 0, length: 1)
        try assertMatches(penultimate, f.tensor(named: "hidden_states_penultimate"), "hidden_states[-2]")
    }

    func testCLIPLoadsKeysWithoutTheTextModelPrefix() throws {
        let config = try CLIPTextConfig(ModelConfig(path: Self.folder + "/text_encoder/config.json"))
        let weights = try Checkpoint(folder: Self.folder + "/text_encoder").loadAll()
        let stripped = Dictionary(uniqueKeysWithValues: weights.map { (String($0.key.dropFirst("text_model.".count)), $0.value) })
        let model = CLIPTextModel(config)
        try model.load(weights: stripped)
        let reference = CLIPTextModel(config)
        try reference.load(weights: weights)
        let ids = try Tensor(int64: [998, 5, 999], shape: [1, 3])
        XCTAssertEqual(try model(ids).lastHiddenState.floats(), try reference(ids).lastHiddenState.floats())
    }

    /// In both memory formats (channels-last carries NHWC activations from conv to conv).
    func testVAEEncodeAndDecode() throws {
        let vae = AutoencoderKL(try AutoencoderKLConfig(ModelConfig(path: Self.folder + "/vae/config.json")))
        try vae.load(from: Checkpoint(folder: Self.folder + "/vae"))
        let f = try Fixtures.file("tiny-sd/outputs/vae.safetensors")
        for format in MemoryFormat.allCases {
            vae.setMemoryFormat(format)
            let posterior = try vae.encode(f.tensor(named: "image"))
            try assertMatches(posterior.mean, f.tensor(named: "encode.mean"), "\(format): posterior mean")
            try assertMatches(posterior.logVariance, f.tensor(named: "encode.logvar"), "\(format): posterior log-variance")
            try assertMatches(posterior.standardDeviation, f.tensor(named: "encode.std"), "\(format): posterior std")
            try assertMatches(posterior.sample(noise: f.tensor(named: "encode.sample_noise_seed0")),
                              f.tensor(named: "encode.sample_seed0"), "\(format): posterior sample")
            try assertMatches(vae.decode(f.tensor(named: "latent")), f.tensor(named: "decode"), "\(format): decode")
            try assertMatches(vae.decode(f.tensor(named: "latent_batch2")), f.tensor(named: "decode_batch2"), "\(format): decode, batch 2, non-square")
        }
    }

    func testUNetBothConfigurations() throws {
        for name in ["tiny-sd", "tiny-sd-v"] {
            let folder = Fixtures.path(name + "/unet")
            let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
            try unet.load(from: Checkpoint(folder: folder))
            let f = try Fixtures.file(name + "/outputs/unet.safetensors")
            for format in MemoryFormat.allCases {
                unet.setMemoryFormat(format)
                for t in [981, 1] {
                    let out = try unet(f.tensor(named: "sample"), timestep: Tensor(int64: [Int64(t)], shape: []),
                                       encoderHiddenStates: f.tensor(named: "encoder_hidden_states"))
                    XCTAssertEqual(out.memoryFormat, format, "the output keeps the layout")
                    try assertMatches(out, f.tensor(named: "out_t\(t)"), "\(name) UNet at t=\(t), \(format)")
                }
            }
        }
    }

    func testUNetBlocks() throws {
        let folder = Fixtures.path("tiny-sd/unet")
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
        try unet.load(from: Checkpoint(folder: folder))
        let f = try Fixtures.file("tiny-sd/outputs/unet_blocks.safetensors")
        let context = try f.tensor(named: "encoder_hidden_states")
        let embedding = try unet.timeEmbedding(Tensor(int64: [981], shape: [1]), batch: 1, dtype: .f32)
        try assertMatches(embedding, f.tensor(named: "time_embedding.out"), "time embedding")
        let projected = try timestepEmbedding(Tensor([981], shape: [1]), dimension: 32, flipSinToCos: true, downscaleFreqShift: 0)
        try assertMatches(projected, f.tensor(named: "time_proj.out"), "time projection")
        let x = try unet.convIn(f.tensor(named: "sample"))
        try assertMatches(x, f.tensor(named: "conv_in.out"), "conv_in")
        let (h0, states0) = try unet.downBlocks[0](x, timeEmbedding: embedding, context: context)
        try assertMatches(states0[0], f.tensor(named: "down_blocks.0.res.0"), "DownBlock2D resnet")
        try assertMatches(h0, f.tensor(named: "down_blocks.0.res.1"), "DownBlock2D downsampler")
        let (h1, _) = try unet.downBlocks[1](h0, timeEmbedding: embedding, context: context)
        try assertMatches(h1, f.tensor(named: "down_blocks.1.res.0"), "CrossAttnDownBlock2D")
        let transformer = try XCTUnwrap(unet.downBlocks[1].attentions?[0])
        try assertMatches(transformer(f.tensor(named: "down_blocks.1.attentions.0.in.hidden_states"), context: context),
                          f.tensor(named: "down_blocks.1.res.0"), "Transformer2DModel")
        try assertMatches(transformer.blocks[0](f.tensor(named: "down_blocks.1.attentions.0.transformer_blocks.0.in.hidden_states"),
                                                context: context),
                          f.tensor(named: "down_blocks.1.attentions.0.transformer_blocks.0.out"), "BasicTransformerBlock")
        let mid = try unet.midBlock(h1, timeEmbedding: embedding, context: context)
        try assertMatches(mid, f.tensor(named: "mid_block.out"), "UNetMidBlock2DCrossAttn")
        var skips = [x] + states0 + [h1]
        let up0 = try unet.upBlocks[0](mid, skips: &skips, timeEmbedding: embedding, context: context)
        try assertMatches(up0, f.tensor(named: "up_blocks.0.out"), "CrossAttnUpBlock2D")
        let up1 = try unet.upBlocks[1](up0, skips: &skips, timeEmbedding: embedding, context: context)
        try assertMatches(up1, f.tensor(named: "up_blocks.1.out"), "UpBlock2D")
        try assertMatches(unet.normOut(up1), f.tensor(named: "conv_norm_out.out"), "conv_norm_out")
    }

    func testBadConfigsAndCheckpointsAreClearErrors() throws {
        let base = try String(contentsOfFile: Self.folder + "/unet/config.json", encoding: .utf8)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bad-unet-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let bad = base.replacingOccurrences(of: "\"CrossAttnDownBlock2D\"", with: "\"SimpleCrossAttnDownBlock2D\"")
        try bad.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json"))) { error in
            XCTAssertTrue("\(error)".contains("SimpleCrossAttnDownBlock2D"), "\(error)")
        }
        // A checkpoint of another shape: every mismatch listed in one error, nothing loaded.
        let other = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: Fixtures.path("tiny-sd-v/unet/config.json"))))
        XCTAssertThrowsError(try other.load(from: Checkpoint(folder: Self.folder + "/unet"))) { error in
            guard case ModuleError.checkpointMismatch(let missing, let unexpected, let shapes) = error else {
                return XCTFail("expected a checkpoint mismatch, got \(error)")
            }
            XCTAssertFalse(missing.isEmpty || unexpected.isEmpty || shapes.isEmpty, "\(error)")
        }
        XCTAssertTrue(other.namedParameters().allSatisfy { $0.parameter.value == nil })
    }
}
