import Foundation
import Models
import NN
import Tensor
import TestSupport
import XCTest

/// The tiny SDXL-style models (Fixtures/tiny-sdxl-models, random weights, made by
/// tools/reference/make_sdxl_model_fixtures.py) against the outputs Diffusers/transformers
/// computed for them (f32, within DESIGN.md's 1e-4 relative L2).
final class TinySDXLModelTests: XCTestCase {
    static let root = "tiny-sdxl-models"

    private func unet(_ name: String) throws -> UNet2DConditionModel {
        let folder = Fixtures.path("\(Self.root)/\(name)")
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
        try unet.load(from: Checkpoint(folder: folder))
        return unet
    }

    private func added(_ f: SafeTensorsFile) throws -> UNet2DConditionModel.AddedConditions? {
        guard f.names.contains("time_ids") else { return nil }
        return .init(textEmbeds: try f.tensor(named: "text_embeds"), timeIds: try f.tensor(named: "time_ids"))
    }

    /// The whole UNet at two timesteps and with one timestep per sample, in both memory formats.
    private func checkUNet(_ name: String) throws {
        let unet = try unet(name)
        let f = try Fixtures.file("\(Self.root)/outputs/\(name).safetensors")
        let (sample, context, added) = (try f.tensor(named: "sample"), try f.tensor(named: "encoder_hidden_states"), try added(f))
        for format in MemoryFormat.allCases {
            unet.setMemoryFormat(format)
            for t in [981, 1] {
                let out = try unet(sample, timestep: Tensor(int64: [Int64(t)], shape: []), encoderHiddenStates: context,
                                   addedConditions: added)
                try assertMatches(out, f.tensor(named: "out_t\(t)"), "\(name) at t=\(t), \(format)")
            }
            let out = try unet(sample, timestep: f.tensor(named: "timesteps_per_sample"), encoderHiddenStates: context,
                               addedConditions: added)
            try assertMatches(out, f.tensor(named: "out_per_sample"), "\(name) with a timestep per sample, \(format)")
        }
    }

    func testBaseUNet() throws { try checkUNet("unet-base") }

    /// Four levels with plain first and last ones, an int transformer depth, five time ids.
    func testRefinerUNet() throws { try checkUNet("unet-refiner") }

    /// Nested transformer_layers_per_block with reverse_transformer_layers_per_block, no addition embedding.
    func testAsymmetricUNet() throws { try checkUNet("unet-asymmetric") }

    /// A captured SDXL UNet takes the added conditions as two more inputs; replays equal the
    /// eager forward bit for bit, for other time ids too.
    func testCaptureWithAddedConditions() throws {
        let unet = try unet("unet-base")
        let f = try Fixtures.file("\(Self.root)/outputs/unet-base.safetensors")
        let (sample, context, added) = (try f.tensor(named: "sample"), try f.tensor(named: "encoder_hidden_states"), try XCTUnwrap(added(f)))
        let t = try Tensor(int64: [981], shape: [])
        let captured = try unet.capture(inputShapes: .init(sample: sample, timestep: t, encoderHiddenStates: context, addedConditions: added))
        XCTAssertEqual(captured.inputShapes.addedConditions?.timeIds, TensorSpec([2, 6]))
        let other = UNet2DConditionModel.AddedConditions(textEmbeds: added.textEmbeds, timeIds: try added.timeIds * Tensor([0.5], shape: [1]))
        for conditions in [added, other] {
            let eager = try unet(sample, timestep: t, encoderHiddenStates: context, addedConditions: conditions)
            let replayed = try captured(sample, timestep: t, encoderHiddenStates: context, addedConditions: conditions)
            XCTAssertEqual(try replayed.bytes(), try eager.bytes())
        }
        try assertMatches(captured(sample, timestep: t, encoderHiddenStates: context, addedConditions: added), f.tensor(named: "out_t981"), "replayed")
        XCTAssertThrowsError(try captured(sample, timestep: t, encoderHiddenStates: context), "the captured inputs include the conditions")
    }

    /// The added embedding alone, and the time embedding the resnets get (time + added).
    func testAddedEmbedding() throws {
        for name in ["unet-base", "unet-refiner"] {
            let unet = try unet(name)
            let f = try Fixtures.file("\(Self.root)/outputs/\(name).safetensors")
            let augmented = try XCTUnwrap(unet.addedEmbedding(added(f), batch: 2, dtype: .f32))
            try assertMatches(augmented, f.tensor(named: "t981.add_embedding"), "\(name) add_embedding")
            let time = try unet.timeEmbedding(Tensor(int64: [981], shape: []), batch: 2, dtype: .f32)
            try assertMatches(time + augmented, f.tensor(named: "t981.emb"), "\(name) time + added embedding")
            let ids = try f.tensor(named: "time_ids")
            let projected = try timestepEmbedding(ids.reshaped([-1]), dimension: 8, flipSinToCos: true, downscaleFreqShift: 0)
            try assertMatches(projected, f.tensor(named: "t981.add_time_proj"), "\(name) add_time_proj")
        }
    }

    func testStructureAndTallies() throws {
        let base = try unet("unet-base")
        XCTAssertEqual(base.config.transformerLayersPerBlock, [1, 2])
        XCTAssertEqual(base.config.upTransformerDepth(0), 2)
        XCTAssertEqual(base.config.midTransformerLayers, 2)
        XCTAssertEqual(base.config.textTimeEmbedding,
                       .init(additionTimeEmbedDim: 8, projectionClassEmbeddingsInputDim: 80))
        XCTAssertEqual(base.downBlocks[1].attentions?[0].blocks.count, 2)
        let asymmetric = try unet("unet-asymmetric")
        XCTAssertEqual(asymmetric.config.transformerLayersPerBlock, [.perLayer([1, 2]), .perLayer([2, 1])])
        XCTAssertEqual(asymmetric.config.midTransformerLayers, 2)
        XCTAssertEqual(asymmetric.config.upTransformerDepth(1), .perLayer([2, 1, 1]))
        for name in ["unet-base", "unet-refiner", "unet-asymmetric"] {
            let config = try UNet2DConditionConfig(ModelConfig(path: Fixtures.path("\(Self.root)/\(name)/config.json")))
            let model = UNet2DConditionModel(config)
            XCTAssertEqual(config.impliedParameters, ParameterTally(tensors: model.namedParameters().count, elements: model.parameterCount), name)
            let checkpoint = try Checkpoint(folder: Fixtures.path("\(Self.root)/\(name)"))
            XCTAssertNoThrow(try checkpoint.checkHolds(config.impliedParameters, config: name))
            XCTAssertEqual(try checkpoint.parameterTally(), config.impliedParameters, name)
        }
        // Diffusers registers add_embedding after time_embedding, before the blocks.
        let paths = base.namedParameters().map(\.path)
        XCTAssertEqual(Array(paths.prefix(10)), ["conv_in.weight", "conv_in.bias", "time_embedding.linear_1.weight", "time_embedding.linear_1.bias",
                                                 "time_embedding.linear_2.weight", "time_embedding.linear_2.bias", "add_embedding.linear_1.weight",
                                                 "add_embedding.linear_1.bias", "add_embedding.linear_2.weight", "add_embedding.linear_2.bias"])
    }

    /// SDXL base's and refiner's real shapes (model_index configs as in the reference notes):
    /// the tally and the built (unloaded) model both give Diffusers' state-dict counts, taken
    /// from UNet2DConditionModel on the meta device with diffusers 0.42.1.
    func testSDXLSizedTallies() throws {
        var base = UNet2DConditionConfig()
        base.blockOutChannels = [320, 640, 1280]
        base.downBlockTypes = [.plain, .crossAttention, .crossAttention]
        base.upBlockTypes = [.crossAttention, .crossAttention, .plain]
        base.transformerLayersPerBlock = [1, 2, 10]
        base.attentionHeads = [5, 10, 20]
        base.crossAttentionDim = 2048
        base.useLinearProjection = true
        base.textTimeEmbedding = .init(additionTimeEmbedDim: 256, projectionClassEmbeddingsInputDim: 2816)
        var refiner = base
        refiner.blockOutChannels = [384, 768, 1536, 1536]
        refiner.downBlockTypes = [.plain, .crossAttention, .crossAttention, .plain]
        refiner.upBlockTypes = [.plain, .crossAttention, .crossAttention, .plain]
        refiner.transformerLayersPerBlock = [4, 4, 4, 4]
        refiner.attentionHeads = [6, 12, 24, 24]
        refiner.crossAttentionDim = 1280
        refiner.textTimeEmbedding = .init(additionTimeEmbedDim: 256, projectionClassEmbeddingsInputDim: 2560)
        for (name, config, tensors, elements) in [("base", base, 1680, 2_567_463_684), ("refiner", refiner, 1220, 2_259_526_660)] {
            XCTAssertEqual(config.impliedParameters, ParameterTally(tensors: tensors, elements: elements), name)
            let model = UNet2DConditionModel(config)
            XCTAssertEqual(ParameterTally(tensors: model.namedParameters().count, elements: model.parameterCount), config.impliedParameters, name)
        }
    }

    // MARK: text_encoder_2

    func testTextEncoderWithProjection() throws {
        let folder = Fixtures.path("\(Self.root)/text-encoder-2")
        let config = try CLIPTextConfig(ModelConfig(path: folder + "/config.json"))
        XCTAssertEqual(config.hiddenAct, .gelu)
        XCTAssertEqual(config.eosTokenId, 2)
        let model = CLIPTextModelWithProjection(config)
        try model.load(from: Checkpoint(folder: folder))
        XCTAssertEqual(model.namedParameters().count, config.impliedParameters(withProjection: true).tensors)
        let f = try Fixtures.file("\(Self.root)/outputs/text-encoder-2.safetensors")
        let out = try model(f.tensor(named: "input_ids"), outputHiddenStates: true)
        try assertMatches(try XCTUnwrap(out.textEmbeds), f.tensor(named: "text_embeds"), "text_embeds")
        try assertMatches(out.pooledOutput, f.tensor(named: "pooled_output"), "pooled output (argmax of the ids)")
        try assertMatches(out.lastHiddenState, f.tensor(named: "last_hidden_state"), "last hidden state")
        XCTAssertEqual(out.hiddenStates.count, config.numHiddenLayers + 1)
        for i in out.hiddenStates.indices {
            try assertMatches(out.hiddenStates[i], f.tensor(named: "hidden_states.\(i)"), "hidden_states[\(i)]")
        }
        // SDXL's prompt embeds (hidden_states[-2]) and clip_skip = 1 (hidden_states[-3]).
        try assertMatches(out.hiddenState(fromEnd: 2), f.tensor(named: "hidden_states.\(config.numHiddenLayers - 1)"), "hidden_states[-2]")
        try assertMatches(out.hiddenState(fromEnd: 1 + 2), f.tensor(named: "hidden_states.\(config.numHiddenLayers - 2)"), "clip_skip 1")
        XCTAssertThrowsError(try out.hiddenState(fromEnd: config.numHiddenLayers + 2)) { error in
            XCTAssertTrue("\(error)".contains("hidden_states[-7]"), "\(error)")
        }
        XCTAssertThrowsError(try model(f.tensor(named: "input_ids")).hiddenState(fromEnd: 2)) { error in
            XCTAssertTrue("\(error)".contains("outputHiddenStates"), "\(error)")
        }
    }

    /// The plain CLIPTextModel loads the same encoder from the projection model's file (its
    /// head's key left over) and computes the same states: one encoder, two heads.
    func testTextModelSharesTheEncoder() throws {
        let folder = Fixtures.path("\(Self.root)/text-encoder-2")
        let config = try CLIPTextConfig(ModelConfig(path: folder + "/config.json"))
        let weights = try Checkpoint(folder: folder).loadAll().filter { !$0.key.hasPrefix("text_projection.") }
        let plain = CLIPTextModel(config)
        try plain.load(weights: weights)
        let f = try Fixtures.file("\(Self.root)/outputs/text-encoder-2.safetensors")
        let out = try plain(f.tensor(named: "input_ids"))
        XCTAssertNil(out.textEmbeds)
        try assertMatches(out.pooledOutput, f.tensor(named: "pooled_output"), "CLIPTextModel pooled output")
        XCTAssertEqual(plain.className, "CLIPTextModel")
        XCTAssertEqual(CLIPTextModelWithProjection(config).className, "CLIPTextModelWithProjection")
        XCTAssertEqual(CLIPTextModelWithProjection(config).noSplitModuleClasses, plain.noSplitModuleClasses)
    }
}
