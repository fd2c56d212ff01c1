import Foundation
import Models
import NN
import Tensor
import TestSupport
import XCTest

/// The tiny T5 / UMT5 encoders (Fixtures/tiny-t5, random weights, made by
/// tools/reference/make_t5_fixtures.py) against what transformers 5.24 computed for them: f32
/// within 1e-5 relative L2 (the bound is 1e-4), bf16 and f16 within transformers' own
/// drift from f32.
final class T5EncoderModelTests: XCTestCase {
    static let root = "tiny-t5"

    private func model(_ name: String, dtype: DType? = nil, keepingFP32: Bool = false) throws -> T5EncoderModel {
        let folder = Fixtures.path("\(Self.root)/\(name)")
        let model = T5EncoderModel(try T5Config(ModelConfig(path: folder + "/config.json")))
        if keepingFP32 {
            try model.loadKeepingFP32Modules(from: Checkpoint(folder: folder), dtype: dtype)
        } else {
            try model.load(from: Checkpoint(folder: folder), dtype: dtype)
        }
        return model
    }

    private func outputs() throws -> SafeTensorsFile { try Fixtures.file("\(Self.root)/outputs.safetensors") }

    /// FLUX's way: one sequence with pads and no mask.
    func testSequenceWithoutMask() throws {
        let f = try outputs()
        let out = try model("t5-v1_1")(f.tensor(named: "a.input_ids"))
        try assertMatches(out.lastHiddenState, f.tensor(named: "a.last_hidden_state"), tolerance: 1e-5, "t5-v1_1 [1, 77]")
    }

    /// 170 tokens (offsets up to 169: every log bucket and the last one), a padding mask, and
    /// the same batch without it (row 1's pads then attend; row 0 has none).
    func testMaskedBatchAndLongOffsets() throws {
        let f = try outputs()
        let t5 = try model("t5-v1_1")
        let ids = try f.tensor(named: "b.input_ids"), mask = try f.tensor(named: "b.attention_mask")
        let masked = try t5(ids, attentionMask: mask).lastHiddenState
        try assertMatches(masked, f.tensor(named: "b.last_hidden_state"), tolerance: 1e-5, "t5-v1_1 [2, 170] masked")
        let unmasked = try t5(ids).lastHiddenState
        try assertMatches(unmasked.narrowed(axis: 0, start: 1, length: 1), f.tensor(named: "b.unmasked.last_hidden_state"),
                          tolerance: 1e-5, "t5-v1_1 [2, 170] row 1 unmasked")
        XCTAssertEqual(try unmasked.narrowed(axis: 0, start: 0, length: 1).floats(), try masked.narrowed(axis: 0, start: 0, length: 1).floats(),
                       "a row without pads is the same with its all-ones mask")
        // A boolean or float mask means the same as transformers' 0/1 ints.
        let asFloat = try Tensor(mask.floats(), shape: mask.shape)
        XCTAssertEqual(try t5(ids, attentionMask: asFloat).lastHiddenState.floats(), try masked.floats())
    }

    /// Every attention kernel computes the same with the additive bias.
    func testAttentionKernels() throws {
        let f = try outputs()
        let t5 = try model("t5-v1_1")
        let ids = try f.tensor(named: "b.input_ids"), mask = try f.tensor(named: "b.attention_mask")
        for backend in [AttentionBackend.naive, .flash, .sliced(1), .sliced(3)] {
            try t5.setAttentionBackend(backend)
            try assertMatches(t5(ids, attentionMask: mask).lastHiddenState, f.tensor(named: "b.last_hidden_state"),
                              tolerance: 1e-5, "t5-v1_1 with \(backend)")
        }
        XCTAssertEqual(t5.attentionKernels.count, 2, "one attention layer per block")
    }

    /// bf16 weights (every one, as transformers' bf16 load): the error against transformers'
    /// bf16 output and against its f32 output stay within its own bf16 drift.
    func testBFloat16() throws {
        let f = try outputs()
        let t5 = try model("t5-v1_1", dtype: .bf16)
        let out = try t5(f.tensor(named: "b.input_ids"), attentionMask: f.tensor(named: "b.attention_mask")).lastHiddenState
        XCTAssertEqual(out.dtype, .bf16)
        let reference = try f.tensor(named: "b.last_hidden_state"), transformersBF16 = try f.tensor(named: "b.bf16.last_hidden_state")
        let drift = try relativeL2(transformersBF16, reference)   // 0.0185 (README.md)
        // Measured: 0.0184 from f32, 0.0077 from transformers' bf16.
        XCTAssertLessThan(try relativeL2(out, reference), 1.25 * drift, "drift from f32 within transformers' own")
        XCTAssertLessThan(try relativeL2(out, transformersBF16), 0.75 * drift, "closer to transformers' bf16 output than that drift")
    }

    /// A float16 load keeps `wo` in f32 as transformers does: the residual stream turns f32
    /// after the first feed-forward layer, the final norm's f16 weight makes the output f16.
    func testFloat16KeepsFeedForwardOutputInFloat32() throws {
        let f = try outputs()
        let t5 = try model("t5-v1_1", dtype: .f16, keepingFP32: true)
        let kept = t5.namedParameters().filter { $0.parameter.value?.dtype == .f32 }.map(\.path)
        XCTAssertEqual(kept, ["encoder.block.0.layer.1.DenseReluDense.wo.weight", "encoder.block.1.layer.1.DenseReluDense.wo.weight"])
        let out = try t5(f.tensor(named: "b.input_ids"), attentionMask: f.tensor(named: "b.attention_mask")).lastHiddenState
        XCTAssertEqual(out.dtype, .f16)
        let reference = try f.tensor(named: "b.last_hidden_state"), transformersF16 = try f.tensor(named: "b.f16.last_hidden_state")
        let drift = try relativeL2(transformersF16, reference)    // 0.0021 (README.md)
        // Measured: 0.00213 from f32, 0.00106 from transformers' f16.
        XCTAssertLessThan(try relativeL2(out, reference), 1.25 * drift)
        XCTAssertLessThan(try relativeL2(out, transformersF16), 0.75 * drift)
        // An f16 load that does not keep them computes everything in f16: finite, further off.
        let plain = try model("t5-v1_1", dtype: .f16)
        XCTAssertTrue(plain.namedParameters().allSatisfy { $0.parameter.value?.dtype == .f16 })
        XCTAssertEqual(try plain(f.tensor(named: "b.input_ids")).lastHiddenState.nonFiniteCount(), 0)
    }

    /// The bucket of every relative position −600...600 equals transformers' (fixture), and the
    /// table of the reference notes (section 5) for both signs.
    func testRelativePositionBuckets() throws {
        let expected = try outputs().tensor(named: "buckets").int64s()
        let buckets = (-600...600).map { T5Attention.relativePositionBucket($0) }
        XCTAssertEqual(buckets.map(Int64.init), expected)
        func table(_ n: Int) -> Int {
            switch n {
            case 0..<8: return n
            case 8...11: return 8
            case 12...15: return 9
            case 16...22: return 10
            case 23...31: return 11
            case 32...45: return 12
            case 46...63: return 13
            case 64...90: return 14
            default: return 15
            }
        }
        for n in 0...600 {
            XCTAssertEqual(T5Attention.relativePositionBucket(-n), table(n), "offset \(-n)")
            XCTAssertEqual(T5Attention.relativePositionBucket(n), n == 0 ? 0 : 16 + table(n), "offset \(n)")
        }
        // Unusual settings stay within the buckets.
        for (count, distance) in [(4, 2), (6, 3), (33, 1000)] {
            for offset in [-5000, -7, 0, 3, 5000] {
                XCTAssertTrue((0..<count).contains(T5Attention.relativePositionBucket(offset, numBuckets: count, maxDistance: distance)))
            }
        }
        XCTAssertEqual(T5Attention.relativePositionBucket(.min), 15, "no overflow taking |n|")
    }

    /// An older full-model file: `encoder.embed_tokens.weight` next to `shared.weight`, a
    /// decoder and its embedding copy (ignored), the original "relu" feed-forward.
    func testOldCheckpointWithDecoderAndTiedCopy() throws {
        let f = try outputs()
        let folder = Fixtures.path("\(Self.root)/t5-old")
        let names = try Checkpoint(folder: folder).headers().flatMap { $0.header.entries.map(\.name) }
        XCTAssertTrue(names.contains("encoder.embed_tokens.weight") && names.contains("shared.weight"))
        XCTAssertTrue(names.contains { $0.hasPrefix("decoder.block.0.layer.1.EncDecAttention.") })
        let old = try model("t5-old")
        XCTAssertEqual(old.config.feedForwardProj, .relu)
        XCTAssertEqual(old.encoder.block[0].feedForward.dense.className, "T5DenseActDense")
        try assertMatches(old(f.tensor(named: "a.input_ids")).lastHiddenState, f.tensor(named: "old.last_hidden_state"),
                          tolerance: 1e-5, "t5-old (relu)")
    }

    /// A file holding the embedding only as `encoder.embed_tokens.weight` loads the same.
    func testEmbeddingUnderItsTiedName() throws {
        let source = Fixtures.path("\(Self.root)/t5-v1_1")
        let folder = try ConfigEditing.temporaryFolder("t5-tied")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: source + "/config.json", toPath: folder + "/config.json")
        var tensors = try SafeTensorsFile(path: source + "/model.safetensors").tensors()
        tensors["encoder.embed_tokens.weight"] = tensors.removeValue(forKey: "shared.weight")
        try SafeTensorsWriter.write(tensors, to: folder + "/model.safetensors")
        let renamed = T5EncoderModel(try T5Config(ModelConfig(path: folder + "/config.json")))
        try renamed.load(from: Checkpoint(folder: folder))
        let ids = try outputs().tensor(named: "a.input_ids")
        XCTAssertEqual(try renamed(ids).lastHiddenState.floats(), try model("t5-v1_1")(ids).lastHiddenState.floats())
    }

    /// UMT5: a relative attention bias in every block, each block computing its own.
    func testUMT5() throws {
        let f = try outputs()
        let umt5 = try model("umt5")
        XCTAssertEqual(umt5.className, "UMT5EncoderModel")
        XCTAssertEqual(umt5.noSplitModuleClasses, ["UMT5Block"])
        XCTAssertTrue(umt5.encoder.block.items.allSatisfy { $0.selfAttention.attention.relativeAttentionBias != nil })
        let out = try umt5(f.tensor(named: "b.input_ids"), attentionMask: f.tensor(named: "b.attention_mask")).lastHiddenState
        try assertMatches(out, f.tensor(named: "umt5.b.last_hidden_state"), tolerance: 1e-5, "umt5 [2, 170] masked")
    }

    /// The tally the config implies equals the built model and the checkpoints, for the
    /// fixtures and for FLUX's T5-XXL (219 tensors, reference notes section 5).
    func testStructureAndTallies() throws {
        for name in ["t5-v1_1", "t5-old", "umt5"] {
            let folder = Fixtures.path("\(Self.root)/\(name)")
            let config = try T5Config(ModelConfig(path: folder + "/config.json"))
            let model = T5EncoderModel(config)
            XCTAssertEqual(config.impliedParameters, ParameterTally(tensors: model.namedParameters().count, elements: model.parameterCount), name)
            XCTAssertNoThrow(try Checkpoint(folder: folder).checkHolds(config.impliedParameters, config: name))
        }
        let t5 = try model("t5-v1_1")
        XCTAssertEqual(t5.className, "T5EncoderModel")
        XCTAssertEqual(t5.noSplitModuleClasses, ["T5Block"])
        XCTAssertEqual(t5.encoder.block.items.map { $0.selfAttention.attention.relativeAttentionBias != nil }, [true, false])
        XCTAssertEqual(try Checkpoint(folder: Fixtures.path("\(Self.root)/t5-v1_1")).parameterTally(), t5.config.impliedParameters)
        XCTAssertEqual(Array(t5.namedParameters().map(\.path).prefix(8)),
                       ["shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight", "encoder.block.0.layer.0.SelfAttention.k.weight",
                        "encoder.block.0.layer.0.SelfAttention.v.weight", "encoder.block.0.layer.0.SelfAttention.o.weight",
                        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "encoder.block.0.layer.0.layer_norm.weight",
                        "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"])
        var xxl = T5Config()
        (xxl.dModel, xxl.dKV, xxl.numHeads, xxl.dFF, xxl.numLayers, xxl.feedForwardProj) = (4096, 64, 64, 10240, 24, .gatedGelu)
        XCTAssertEqual(xxl.impliedParameters, ParameterTally(tensors: 219, elements: 4_762_310_656))
        let built = T5EncoderModel(xxl)
        XCTAssertEqual(ParameterTally(tensors: built.namedParameters().count, elements: built.parameterCount), xxl.impliedParameters)
    }

    // MARK: - Errors

    private func editedConfig(_ changes: [String: String?]) throws -> T5Config {
        let folder = try ConfigEditing.temporaryFolder("t5-config")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/config.json"
        try ConfigEditing.write(from: Fixtures.path("\(Self.root)/t5-v1_1/config.json"), to: path, changes)
        return try T5Config(ModelConfig(path: path))
    }

    private func assertError(_ mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for mention in mentions {
                XCTAssertTrue("\(error)".contains(mention), "\(error) does not mention \(mention)", file: file, line: line)
            }
        }
    }

    func testBadConfigsAreRefused() throws {
        assertError(["feed_forward_proj", "gated-silu", "gated-gelu", "relu"]) { try self.editedConfig(["feed_forward_proj": "\"gated-silu\""]) }
        assertError(["d_model", "0"]) { try self.editedConfig(["d_model": "0"]) }
        assertError(["d_kv", "-3"]) { try self.editedConfig(["d_kv": "-3"]) }
        assertError(["num_layers"]) { try self.editedConfig(["num_layers": "100000"]) }
        assertError(["relative_attention_num_buckets", "2"]) { try self.editedConfig(["relative_attention_num_buckets": "2"]) }
        assertError(["relative_attention_max_distance = 8", "8 exact offsets"]) { try self.editedConfig(["relative_attention_max_distance": "8"]) }
        assertError(["layer_norm_epsilon"]) { try self.editedConfig(["layer_norm_epsilon": "0"]) }
        assertError(["layer_norm_epsilon"]) { try self.editedConfig(["layer_norm_epsilon": "\"small\""]) }
        assertError(["is_decoder"]) { try self.editedConfig(["is_decoder": "true"]) }
        assertError(["num_heads × d_kv"]) { try self.editedConfig(["num_heads": "65536", "d_kv": "65536"]) }
        assertError(["implies"]) { try self.editedConfig(["d_model": "1048576", "d_ff": "1048576", "num_layers": "1000"]) }
        // Defaults fill what a config leaves out (transformers' T5Config defaults).
        let defaults = try editedConfig(["feed_forward_proj": nil, "num_decoder_layers": nil, "relative_attention_max_distance": nil])
        XCTAssertEqual(defaults.feedForwardProj, .relu)
        XCTAssertEqual(defaults.numDecoderLayers, defaults.numLayers)
        XCTAssertEqual(defaults.relativeAttentionMaxDistance, 128)
    }

    /// Weights of the wrong shape, missing or extra: one error listing them, nothing loaded.
    func testCheckpointMismatchesAreNamed() throws {
        let folder = Fixtures.path("\(Self.root)/t5-v1_1")
        let wider = T5EncoderModel(try editedConfig(["d_ff": "40"]))
        assertError(["wrong shape", "DenseReluDense.wi_0.weight", "[48, 32]", "[40, 32]"]) { try wider.load(from: Checkpoint(folder: folder)) }
        XCTAssertNil(wider.shared.weight.value, "nothing is loaded when the checkpoint does not fit")
        let deeper = T5EncoderModel(try editedConfig(["num_layers": "3"]))
        assertError(["missing", "encoder.block.2.layer.0.SelfAttention.q.weight"]) { try deeper.load(from: Checkpoint(folder: folder)) }
        let shallower = T5EncoderModel(try editedConfig(["num_layers": "1"]))
        assertError(["unexpected", "encoder.block.1."]) { try shallower.load(from: Checkpoint(folder: folder)) }
        let umt5 = T5EncoderModel(try editedConfig(["model_type": "\"umt5\""]))
        assertError(["missing", "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"]) {
            try umt5.load(from: Checkpoint(folder: folder))
        }
    }

    func testBadInputsAreRefused() throws {
        let t5 = try model("t5-v1_1")
        assertError(["integer token ids", "f32"]) { try t5(Tensor([1, 2], shape: [1, 2])) }
        assertError(["integer token ids", "[3]"]) { try t5(Tensor(int64: [1, 2, 3], shape: [3])) }
        assertError(["integer token ids"]) { try t5(Tensor(int64: [], shape: [1, 0])) }
        assertError(["token id 64", "vocabulary of 64"]) { try t5(Tensor(int64: [1, 64], shape: [1, 2])) }
        assertError(["token id -1"]) { try t5(Tensor(int64: [-1, 2], shape: [1, 2])) }
        assertError(["attention mask", "[1, 3]", "[1, 2]"]) { try t5(Tensor(int64: [1, 2], shape: [1, 2]), attentionMask: Tensor(int64: [1, 1, 1], shape: [1, 3])) }
        let unloaded = T5EncoderModel(t5.config)
        assertError(["no weights loaded"]) { try unloaded(Tensor(int64: [1, 2], shape: [1, 2])) }
    }
}
