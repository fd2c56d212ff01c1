import Foundation
import Models
import NN
import Tensor
import TestSupport
import XCTest

/// The fuzzing findings on model configs (issue 14), each now a typed error naming the file and
/// key before anything divides, allocates or builds; and the parameter tallies that let a
/// config be compared with its checkpoint before the model is built, checked against built
/// models.
final class ModelConfigValidationTests: XCTestCase {
    static let demo = packageRoot + "/models/demo"
    static let tinySD = packageRoot + "/Tests/Fixtures/tiny-sd"
    private var folder = ""

    override func setUpWithError() throws {
        folder = try ConfigEditing.temporaryFolder("config-validation")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// `component`'s config.json from the demo model with `changes`, written to a temporary
    /// file and read back (so errors name that file).
    private func edited(_ component: String, _ changes: [String: String?], from root: String = demo) throws -> ModelConfig {
        let path = folder + "/\(component)-config.json"
        try ConfigEditing.write(from: root + "/\(component)/config.json", to: path, changes)
        return try ModelConfig(path: path)
    }

    /// Asserts that `body` throws `CheckpointError.configValue` for `key` whose message names
    /// the file and the key.
    private func assertValueError(_ key: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case let .configValue(path, errorKey, _, _)? = error as? CheckpointError else {
                return XCTFail("expected configValue for \(key), got \(error)", file: file, line: line)
            }
            XCTAssertEqual(errorKey, key, file: file, line: line)
            XCTAssertTrue(path.hasPrefix(folder), path, file: file, line: line)
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(key), "\(error)", file: file, line: line)
        }
    }

    /// Asserts an `invalidConfig` (a relation between keys) whose reason mentions `mention`.
    private func assertRelationError(_ mention: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case let .invalidConfig(path, reason)? = error as? CheckpointError else {
                return XCTFail("expected invalidConfig, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(path.hasPrefix(folder), path, file: file, line: line)
            XCTAssertTrue(reason.contains(mention), reason, file: file, line: line)
        }
    }

    // MARK: Divisors checked before the division

    func testZeroDivisorsAreRefusedBeforeDividing() throws {
        assertValueError("attention_head_dim") { try UNet2DConditionConfig(self.edited("unet", ["attention_head_dim": "0"])) }
        assertValueError("norm_num_groups") { try UNet2DConditionConfig(self.edited("unet", ["norm_num_groups": "0"])) }
        assertValueError("norm_num_groups") { try AutoencoderKLConfig(self.edited("vae", ["norm_num_groups": "0"])) }
        assertValueError("num_attention_heads") { try CLIPTextConfig(self.edited("text_encoder", ["num_attention_heads": "0"])) }
        assertValueError("attention_head_dim[1]") { try UNet2DConditionConfig(self.edited("unet", ["attention_head_dim": "[8, 0, 8]"])) }
        assertValueError("num_attention_heads") { try UNet2DConditionConfig(self.edited("unet", ["num_attention_heads": "-4"])) }
        assertValueError("block_out_channels[0]") { try UNet2DConditionConfig(self.edited("unet", ["block_out_channels": "[0, 96, 96]"])) }
    }

    func testRelationsBetweenKeys() throws {
        assertRelationError("norm_num_groups = 7") { try UNet2DConditionConfig(self.edited("unet", ["norm_num_groups": "7"])) }
        assertRelationError("attention_head_dim = 7") { try UNet2DConditionConfig(self.edited("unet", ["attention_head_dim": "7"])) }
        assertRelationError("num_attention_heads = 5") {
            try UNet2DConditionConfig(self.edited("unet", ["num_attention_heads": "[8, 5, 8]"]))
        }
        assertRelationError("norm_num_groups = 24") { try AutoencoderKLConfig(self.edited("vae", ["norm_num_groups": "24"])) }
        assertRelationError("num_attention_heads = 3") { try CLIPTextConfig(self.edited("text_encoder", ["num_attention_heads": "3"])) }
        assertRelationError("up_block_types") {
            try UNet2DConditionConfig(self.edited("unet", ["up_block_types": #"["CrossAttnUpBlock2D", "UpBlock2D"]"#]))
        }
        assertRelationError("down_block_types") {
            try AutoencoderKLConfig(self.edited("vae", ["block_out_channels": "[32, 64]"]))
        }
        assertValueError("attention_head_dim") { try UNet2DConditionConfig(self.edited("unet", ["attention_head_dim": "[8, 8]"])) }
        assertRelationError("freq_shift") { try UNet2DConditionConfig(self.edited("unet", ["freq_shift": "32"])) }
    }

    // MARK: Epsilons and factors

    func testNonFiniteOrZeroEpsilonsAndFactorsAreRefused() throws {
        for literal in ["NaN", "Infinity", "-Infinity", "0", "-1e-5", "1e-50"] {
            assertValueError("norm_eps") { try UNet2DConditionConfig(self.edited("unet", ["norm_eps": literal])) }
            assertValueError("layer_norm_eps") { try CLIPTextConfig(self.edited("text_encoder", ["layer_norm_eps": literal])) }
            assertValueError("scaling_factor") { try AutoencoderKLConfig(self.edited("vae", ["scaling_factor": literal])) }
        }
        for literal in ["NaN", "Infinity", "-Infinity", "1e300"] {
            assertValueError("shift_factor") { try AutoencoderKLConfig(self.edited("vae", ["shift_factor": literal])) }
            assertValueError("freq_shift") { try UNet2DConditionConfig(self.edited("unet", ["freq_shift": literal])) }
        }
        // A zero shift is no shift (Diffusers adds it), and a negative one is a real shift.
        XCTAssertEqual(try AutoencoderKLConfig(edited("vae", ["shift_factor": "0"])).shiftFactor, 0)
        XCTAssertEqual(try AutoencoderKLConfig(edited("vae", ["shift_factor": "-0.25"])).shiftFactor, -0.25)
        XCTAssertEqual(try AutoencoderKLConfig(edited("vae", ["scaling_factor": "1.5305"])).scalingFactor, 1.5305)
    }

    // MARK: Sizes and counts bounded

    func testHugeCountsAreRefusedQuickly() throws {
        let start = Date()
        assertValueError("layers_per_block") { try UNet2DConditionConfig(self.edited("unet", ["layers_per_block": "1000000"])) }
        assertValueError("layers_per_block") { try AutoencoderKLConfig(self.edited("vae", ["layers_per_block": "1000000"])) }
        assertValueError("num_hidden_layers") { try CLIPTextConfig(self.edited("text_encoder", ["num_hidden_layers": "1000000"])) }
        assertValueError("transformer_layers_per_block") {
            try UNet2DConditionConfig(self.edited("unet", ["transformer_layers_per_block": "1000000"]))
        }
        assertValueError("vocab_size") { try CLIPTextConfig(self.edited("text_encoder", ["vocab_size": "1000000000000"])) }
        assertValueError("block_out_channels") {
            try UNet2DConditionConfig(self.edited("unet", ["block_out_channels": "[" + Array(repeating: "32", count: 40).joined(separator: ", ") + "]"]))
        }
        assertValueError("downsample_padding") { try UNet2DConditionConfig(self.edited("unet", ["downsample_padding": "100000"])) }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "refused from the numbers, nothing built")
    }

    /// Each size within its bound but together a model no one has: refused from the tally.
    func testConfigsImplyingAbsurdModelsAreRefused() throws {
        assertRelationError("more than any model has") {
            try UNet2DConditionConfig(self.edited("unet", ["layers_per_block": "1000", "transformer_layers_per_block": "1000"]))
        }
        assertRelationError("more than any model has") {
            try CLIPTextConfig(self.edited("text_encoder", ["hidden_size": "1048576", "intermediate_size": "1048576",
                                                               "num_attention_heads": "1"]))
        }
    }

    /// `layers_per_block: 100` is a legal count, but the demo checkpoint holds the weights of
    /// one layer per block: the tally says so from the headers before anything is built.
    func testAConfigTheCheckpointCannotFillIsRefusedBeforeBuilding() throws {
        let start = Date()
        let config = try UNet2DConditionConfig(edited("unet", ["layers_per_block": "100"]))
        let checkpoint = try Checkpoint(folder: Self.demo + "/unet")
        XCTAssertThrowsError(try checkpoint.checkHolds(config.impliedParameters, config: folder + "/unet-config.json")) { error in
            guard case let .configCheckpointMismatch(configPath, checkpointPath, implied, found)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(configPath, folder + "/unet-config.json")
            XCTAssertTrue(checkpointPath.hasSuffix("unet/diffusion_pytorch_model.safetensors"), checkpointPath)
            XCTAssertTrue(implied.contains("tensors") && found.contains("tensors"), "\(implied) / \(found)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    // MARK: Tallies agree with built models

    private func assertTally(_ implied: ParameterTally, _ model: Module, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(implied, ParameterTally(tensors: model.namedParameters().count, elements: model.parameterCount), label,
                       file: file, line: line)
    }

    func testTalliesMatchBuiltModels() throws {
        for root in [Self.demo, Self.tinySD] {
            let unet = try UNet2DConditionConfig(ModelConfig(path: root + "/unet/config.json"))
            assertTally(unet.impliedParameters, UNet2DConditionModel(unet), "\(root) unet")
            let vae = try AutoencoderKLConfig(ModelConfig(path: root + "/vae/config.json"))
            assertTally(vae.impliedParameters, AutoencoderKL(vae), "\(root) vae")
            let text = try CLIPTextConfig(ModelConfig(path: root + "/text_encoder/config.json"))
            assertTally(text.impliedParameters(), CLIPTextModel(text), "\(root) text encoder")
            assertTally(text.impliedParameters(withProjection: true), CLIPTextModelWithProjection(text), "\(root) text encoder with projection")
            // The checkpoints hold exactly what the configs imply.
            for (name, implied) in [("unet", unet.impliedParameters), ("vae", vae.impliedParameters), ("text_encoder", text.impliedParameters())] {
                let checkpoint = try Checkpoint(folder: root + "/" + name)
                XCTAssertNoThrow(try checkpoint.checkHolds(implied, config: name))
                XCTAssertEqual(try checkpoint.parameterTally().elements, implied.elements, "\(root) \(name)")
            }
        }
        // SD 1.5's shapes (the defaults) and variants that change the block structure.
        var unet = UNet2DConditionConfig()
        unet.crossAttentionDim = 768
        assertTally(unet.impliedParameters, UNet2DConditionModel(unet), "SD 1.5 unet")
        XCTAssertEqual(unet.impliedParameters.tensors, 686)
        XCTAssertEqual(unet.impliedParameters.elements, 859_520_964)
        unet.useLinearProjection = true
        unet.onlyCrossAttention = true
        unet.layersPerBlock = 3
        unet.transformerLayersPerBlock = [2, 2, 2, 2]
        unet.attentionHeads = [5, 10, 20, 20]
        unet.crossAttentionDim = 1024
        assertTally(unet.impliedParameters, UNet2DConditionModel(unet), "varied unet")
        var vae = AutoencoderKLConfig()
        vae.blockOutChannels = [128, 256, 512, 512]
        vae.layersPerBlock = 2
        assertTally(vae.impliedParameters, AutoencoderKL(vae), "SD vae")
        XCTAssertEqual(vae.impliedParameters.elements, 83_653_863)
        vae.midBlockAddAttention = false
        vae.useQuantConv = false
        vae.usePostQuantConv = false
        vae.latentChannels = 16
        assertTally(vae.impliedParameters, AutoencoderKL(vae), "varied vae")
        var text = CLIPTextConfig()
        text.hiddenSize = 768
        text.intermediateSize = 3072
        assertTally(text.impliedParameters(), CLIPTextModel(text), "SD 1.5 text encoder")
        XCTAssertEqual(text.impliedParameters().elements, 123_060_480)
    }
}
