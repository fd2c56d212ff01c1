import Foundation
import Models
import NN
import Tensor
import TestSupport
import XCTest

/// SDXL's UNet config fields and added conditions: what is wrong is a clear error naming the
/// field or the numbers that disagree, before anything is built or computed.
final class SDXLConfigErrorTests: XCTestCase {
    static let base = Fixtures.path("tiny-sdxl-models/unet-base")
    private var folder = ""

    override func setUpWithError() throws {
        folder = try ConfigEditing.temporaryFolder("sdxl-config")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The tiny base UNet's config with `changes` (JSON literals; nil removes the key).
    private func config(_ changes: [String: String?], from source: String = base) throws -> UNet2DConditionConfig {
        let path = folder + "/config.json"
        try ConfigEditing.write(from: source + "/config.json", to: path, changes)
        return try UNet2DConditionConfig(ModelConfig(path: path))
    }

    private func assertError(_ mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for mention in mentions {
                XCTAssertTrue("\(error)".contains(mention), "\(error) does not mention \(mention)", file: file, line: line)
            }
        }
    }

    private func inputs(batch: Int = 1, pooled: Int = 32, ids: Int = 6) throws -> (Tensor, Tensor, UNet2DConditionModel.AddedConditions) {
        (try Tensor.zeros([batch, 4, 16, 16]), try Tensor.zeros([batch, 7, 64]),
         .init(textEmbeds: try Tensor.zeros([batch, pooled]), timeIds: try Tensor.zeros([batch, ids])))
    }

    func testMismatchedProjectionInputDimSaysWhichNumbersDisagree() throws {
        let unet = UNet2DConditionModel(try config(["projection_class_embeddings_input_dim": "81"]))
        let (sample, context, added) = try inputs()
        assertError(["projection_class_embeddings_input_dim = 81", "text_embeds width 32", "6 time ids", "addition_time_embed_dim 8", "= 80"]) {
            try unet(sample, timestep: Tensor([1], shape: [1]), encoderHiddenStates: context, addedConditions: added)
        }
        // Five ids (a refiner's) given to a base model.
        let base = UNet2DConditionModel(try config([:]))
        let (_, _, refinerIds) = try inputs(ids: 5)
        assertError(["projection_class_embeddings_input_dim = 80", "5 time ids", "= 72"]) {
            try base(sample, timestep: Tensor([1], shape: [1]), encoderHiddenStates: context, addedConditions: refinerIds)
        }
    }

    func testAddedConditionsMustMatchTheConfig() throws {
        let unet = UNet2DConditionModel(try config([:]))
        let (sample, context, added) = try inputs()
        assertError(["addition_embed_type 'text_time'", "needs added conditions"]) {
            try unet(sample, timestep: Tensor([1], shape: [1]), encoderHiddenStates: context)
        }
        let (_, _, batchOfTwo) = try inputs(batch: 2)
        assertError(["batch of 1", "[2, 32]"]) {
            try unet(sample, timestep: Tensor([1], shape: [1]), encoderHiddenStates: context, addedConditions: batchOfTwo)
        }
        let plain = UNet2DConditionModel(try config(["addition_embed_type": "null"]))
        assertError(["no addition embedding"]) {
            try plain(sample, timestep: Tensor([1], shape: [1]), encoderHiddenStates: context, addedConditions: added)
        }
    }

    func testTransformerLayersPerBlockListsAreChecked() throws {
        assertError(["transformer_layers_per_block", "a list of 3", "one entry per block: 2"]) { try self.config(["transformer_layers_per_block": "[1, 2, 2]"]) }
        assertError(["transformer_layers_per_block[1]", "1...1024"]) { try self.config(["transformer_layers_per_block": "[1, 0]"]) }
        assertError(["transformer_layers_per_block[1]", "an integer or a list", "a string"]) {
            try self.config(["transformer_layers_per_block": #"[1, "2"]"#])
        }
        assertError(["transformer_layers_per_block[0]", "a list of 3", "one count per transformer in the block: 2"]) {
            try self.config(["transformer_layers_per_block": "[[1, 1, 1], [1, 2]]", "reverse_transformer_layers_per_block": "[[1, 1, 1], [1, 1, 1]]"])
        }
        assertError(["reverse_transformer_layers_per_block"]) { try self.config(["transformer_layers_per_block": "[[1, 1], [1, 2]]"]) }
        assertError(["reverse_transformer_layers_per_block[1][2]"]) {
            try self.config(["transformer_layers_per_block": "[[1, 1], [1, 2]]", "reverse_transformer_layers_per_block": "[[1, 1, 1], [1, 1, -1]]"])
        }
        assertError(["reverse_transformer_layers_per_block[0]", "a list of 2", "in the block: 3"]) {
            try self.config(["transformer_layers_per_block": "[[1, 1], [1, 2]]", "reverse_transformer_layers_per_block": "[[1, 1], [1, 1, 1]]"])
        }
        // A reverse list alone (with an int or flat list down) is Diffusers' rule too.
        let c = try config(["reverse_transformer_layers_per_block": "[3, 1]"])
        XCTAssertEqual(c.upTransformerDepth(0), 3)
        XCTAssertEqual(c.midTransformerLayers, 2)
        let model = UNet2DConditionModel(c)
        XCTAssertEqual(c.impliedParameters, ParameterTally(tensors: model.namedParameters().count, elements: model.parameterCount))
    }

    func testAdditionEmbeddingFieldsAreChecked() throws {
        assertError(["addition_embed_type 'text'", "not supported"]) { try self.config(["addition_embed_type": #""text""#]) }
        assertError(["addition_embed_type 'image'"]) { try self.config(["addition_embed_type": #""image""#]) }
        assertError(["addition_time_embed_dim"]) { try self.config(["addition_time_embed_dim": nil]) }
        assertError(["addition_time_embed_dim"]) { try self.config(["addition_time_embed_dim": "0"]) }
        assertError(["addition_time_embed_dim = 1", "no time-id frequencies"]) { try self.config(["addition_time_embed_dim": "1"]) }
        assertError(["projection_class_embeddings_input_dim"]) { try self.config(["projection_class_embeddings_input_dim": "null"]) }
        // Still refused: the other conditioning fields Diffusers' UNet has.
        assertError(["class_embed_type"]) { try self.config(["class_embed_type": #""projection""#]) }
        assertError(["time_cond_proj_dim"]) { try self.config(["time_cond_proj_dim": "256"]) }
        assertError(["encoder_hid_dim"]) { try self.config(["encoder_hid_dim": "64"]) }
        // Without the addition embedding the fields it would use are ignored, as in Diffusers.
        XCTAssertNil(try config(["addition_embed_type": "null"]).textTimeEmbedding)
    }

    /// A checkpoint without add_embedding for a text_time config (or the reverse) is a checkpoint mismatch.
    func testCheckpointWithoutTheAddedEmbedding() throws {
        let plain = try config(["addition_embed_type": "null"])
        let checkpoint = try Checkpoint(folder: Self.base)
        XCTAssertNotEqual(try checkpoint.parameterTally(), plain.impliedParameters)
        XCTAssertThrowsError(try UNet2DConditionModel(plain).load(from: checkpoint)) { error in
            guard case ModuleError.checkpointMismatch(_, let unexpected, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(unexpected.contains("add_embedding.linear_1.weight"), "\(unexpected)")
        }
    }
}
