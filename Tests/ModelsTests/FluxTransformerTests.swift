import Foundation
import Models
import NN
import Tensor
import TestSupport
import XCTest

/// The tiny FLUX transformers (Fixtures/tiny-flux-models, random weights, made by
/// tools/reference/make_flux_fixtures.py) block by block against Diffusers 0.42.1: f32 within
/// 1e-4 relative L2, bf16 within Diffusers' own bf16 rounding.
final class FluxTransformerTests: XCTestCase {
    static let root = "tiny-flux-models"

    private func model(_ name: String, dtype: DType? = nil) throws -> FluxTransformer2DModel {
        let folder = Fixtures.path("\(Self.root)/transformer-\(name)")
        let model = FluxTransformer2DModel(try FluxTransformer2DConfig(ModelConfig(path: folder + "/config.json")))
        try model.load(from: Checkpoint(folder: folder), dtype: dtype)
        return model
    }

    private func outputs() throws -> SafeTensorsFile { try Fixtures.file("\(Self.root)/outputs.safetensors") }

    private func rotary(_ f: SafeTensorsFile) throws -> RotaryEmbedding {
        try RotaryEmbedding(positions: f.tensor(named: "rope.ids"), axesDims: [4, 6, 6])
    }

    /// FluxPosEmbed's float64 angles rounded to f32: the same bits (Diffusers repeats each pair's
    /// cosine and sine twice; the embedding keeps one).
    func testRotaryTablesEqualFluxPosEmbed() throws {
        let f = try outputs()
        let rope = try rotary(f)
        for (mine, name) in [(rope.cos, "rope.cos"), (rope.sin, "rope.sin")] {
            let theirs = try f.tensor(named: name).sliced(axis: 1, 0..<16, step: 2).contiguous()
            XCTAssertEqual(try mine.floats(), try theirs.floats(), name)
        }
    }

    func testTimestepGuidanceAndTextEmbedding() throws {
        let f = try outputs()
        let t = try f.tensor(named: "embed.timestep") * 1000, g = try f.tensor(named: "embed.guidance") * 1000
        let pooled = try f.tensor(named: "embed.pooled")
        try assertMatches(model("dev").timeTextEmbed(timestep: t, guidance: g, pooled: pooled), f.tensor(named: "embed.temb.dev"), "dev temb")
        try assertMatches(model("schnell").timeTextEmbed(timestep: t, guidance: nil, pooled: pooled), f.tensor(named: "embed.temb.schnell"),
                          "schnell temb")
    }

    func testDualStreamBlock() throws {
        let f = try outputs()
        let block = try model("dev").transformerBlocks[0]
        let out = try block(f.tensor(named: "dual.hidden_in"), context: f.tensor(named: "dual.encoder_in"), temb: f.tensor(named: "dual.temb"),
                            rotary: rotary(f))
        try assertMatches(out[0], f.tensor(named: "dual.encoder_out"), "dual block text")
        try assertMatches(out[1], f.tensor(named: "dual.hidden_out"), "dual block image")
    }

    func testSingleStreamBlock() throws {
        let f = try outputs()
        let block = try model("dev").singleTransformerBlocks[0]
        let out = try block(f.tensor(named: "single.hidden_in"), context: f.tensor(named: "single.encoder_in"),
                            temb: f.tensor(named: "single.temb"), rotary: rotary(f))
        try assertMatches(out[0], f.tensor(named: "single.encoder_out"), "single block text")
        try assertMatches(out[1], f.tensor(named: "single.hidden_out"), "single block image")
    }

    func testOutputNorm() throws {
        let f = try outputs()
        try assertMatches(model("dev").normOut(f.tensor(named: "norm_out.in"), conditioning: f.tensor(named: "norm_out.temb")),
                          f.tensor(named: "norm_out.out"), "norm_out")
    }

    private func forward(_ model: FluxTransformer2DModel, _ f: SafeTensorsFile, _ name: String, dtype: DType = .f32) throws -> Tensor {
        func input(_ key: String) throws -> Tensor { try f.tensor(named: "\(name).\(key)").to(dtype) }
        return try model(input("hidden_states"), encoderHiddenStates: input("encoder_hidden_states"),
                         pooledProjections: input("pooled_projections"), timestep: input("timestep"),
                         imageIds: input("img_ids"), textIds: input("txt_ids"),
                         guidance: name == "dev" ? input("guidance") : nil)
    }

    func testWholeTransformerDevAndSchnell() throws {
        let f = try outputs()
        for name in ["dev", "schnell"] {
            try assertMatches(forward(model(name), f, name), f.tensor(named: "\(name).output"), "\(name) transformer f32")
        }
    }

    /// In bf16 Diffusers rounds σ and the guidance to bf16 before the ×1000 (3.5 → 3504 for dev's
    /// first sample): the same rounding here gives Diffusers' bf16 output, not the f32 one.
    func testWholeTransformerInBF16() throws {
        let f = try outputs()
        for name in ["dev", "schnell"] {
            let out = try forward(model(name, dtype: .bf16), f, name, dtype: .bf16)
            XCTAssertEqual(out.dtype, .bf16)
            try assertMatches(out.to(.f32), f.tensor(named: "\(name).output_bf16").to(.f32), tolerance: 2e-2, "\(name) transformer bf16")
        }
    }

    /// The parameter count of FLUX.1-dev's and schnell's real configs, from the config alone
    /// and from the built (weightless) module tree.
    func testRealConfigParameterCounts() throws {
        var config = FluxTransformer2DConfig()
        config.guidanceEmbeds = true
        XCTAssertEqual(config.impliedParameters.elements, 11_901_408_320)
        XCTAssertEqual(FluxTransformer2DModel(config).parameterCount, 11_901_408_320)
        XCTAssertEqual(FluxTransformer2DModel(config).namedParameters().count, 1160)
        config.guidanceEmbeds = false
        XCTAssertEqual(config.impliedParameters.elements, 11_891_178_560)
        XCTAssertEqual(FluxTransformer2DModel(config).namedParameters().count, 1156)
    }

    func testConfigErrors() throws {
        let folder = Fixtures.path("\(Self.root)/transformer-dev")
        let base = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
        func config(_ edit: (String) -> String) throws -> ModelConfig {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("flux-config-\(UUID().uuidString).json")
            try edit(base).write(to: url, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: url) }
            return try ModelConfig(path: url.path)
        }
        let wrongAxes = try config { $0.replacingOccurrences(of: "\"axes_dims_rope\": [\n    4,\n    6,\n    6\n  ]", with: "\"axes_dims_rope\": [4, 6, 8]") }
        XCTAssertThrowsError(try FluxTransformer2DConfig(wrongAxes)) { error in
            XCTAssertTrue("\(error)".contains("axes_dims_rope"), "\(error)")
            XCTAssertTrue("\(error)".contains("attention_head_dim"), "\(error)")
        }
    }
}
