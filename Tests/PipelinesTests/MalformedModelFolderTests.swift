import Foundation
import NN
import Pipelines
import Schedulers
import Tensor
import TestSupport
import XCTest

/// The fuzzing pass of issue 14 fed `diffuse` malformed folders derived from models/demo; each
/// case is now a typed error at load naming the file and key (or tensor), or, for transformers'
/// "no limit" tokenizer marker, a working pipeline.
final class MalformedModelFolderTests: XCTestCase {
    static let demo = packageRoot + "/models/demo"
    private var folder = ""

    /// A copy of the demo pipeline: configs copied, weights linked.
    override func setUpWithError() throws {
        folder = try ConfigEditing.temporaryCopy(of: Self.demo, label: "malformed-demo")
    }

    override func tearDown() { ConfigEditing.removeTemporaryCopy(folder) }

    private func edit(_ file: String, _ changes: [String: String?]) throws {
        let path = folder + "/" + file
        try ConfigEditing.write(from: path, to: path, changes)
    }

    /// transformers writes int(1e30) when a tokenizer has no known limit: the pipeline pads to
    /// the text encoder's 77 positions and gives exactly the unedited pipeline's states.
    func testNoLimitTokenizerIsBoundedByTheTextEncoder() throws {
        try edit("tokenizer/tokenizer_config.json", ["model_max_length": "1000000000000000019884624838656"])
        let edited = try StableDiffusionPipeline(folder: folder)
        XCTAssertNil(edited.tokenizer.modelMaxLength)
        let prompts = ["a red circle on a blue background", Array(repeating: "very", count: 90).joined(separator: " ")]
        let states = try edited.encodePrompt(prompts, classifierFreeGuidance: true)
        XCTAssertEqual(states.positive.shape, [2, 77, 128])
        let reference = try StableDiffusionPipeline(folder: Self.demo).encodePrompt(prompts, classifierFreeGuidance: true)
        XCTAssertEqual(try states.positive.floats(), try reference.positive.floats())
        XCTAssertEqual(try states.negative?.floats(), try reference.negative?.floats())
    }

    /// Asserts that loading the edited folder throws `CheckpointError.configValue` for `key` in `file`.
    private func assertConfigValueError(_ file: String, _ key: String, line: UInt = #line) {
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: folder), line: line) { error in
            guard case let .configValue(path, errorKey, _, _)? = error as? CheckpointError else {
                return XCTFail("expected configValue for \(key), got \(error)", line: line)
            }
            XCTAssertEqual(path, folder + "/" + file, line: line)
            XCTAssertEqual(errorKey, key, line: line)
        }
    }

    func testZeroDivisorsAndNonFiniteFactorsAreRefusedAtLoad() throws {
        let cases: [(file: String, key: String, literal: String)] = [
            ("unet/config.json", "attention_head_dim", "0"), ("unet/config.json", "norm_num_groups", "0"),
            ("unet/config.json", "norm_eps", "NaN"), ("vae/config.json", "norm_num_groups", "0"),
            ("vae/config.json", "scaling_factor", "0"), ("vae/config.json", "scaling_factor", "Infinity"),
            ("vae/config.json", "shift_factor", "NaN"), ("text_encoder/config.json", "layer_norm_eps", "0"),
            ("unet/config.json", "layers_per_block", "1000000"),
        ]
        for (file, key, literal) in cases {
            let original = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file))
            try edit(file, [key: literal])
            assertConfigValueError(file, key)
            try original.write(to: URL(fileURLWithPath: folder + "/" + file))
        }
        XCTAssertNoThrow(try StableDiffusionPipeline(folder: folder), "the restored folder loads")
    }

    /// A legal but wrong `layers_per_block` is refused from the checkpoint headers, quickly and
    /// before the UNet is built.
    func testConfigTheCheckpointCannotFill() throws {
        try edit("unet/config.json", ["layers_per_block": "100"])
        let start = Date()
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: folder)) { error in
            guard case let .configCheckpointMismatch(config, checkpoint, _, _)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(config, folder + "/unet/config.json")
            XCTAssertEqual(checkpoint, folder + "/unet/diffusion_pytorch_model.safetensors")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testScheduleWithoutNoiseIsRefusedAtLoad() throws {
        try edit("scheduler/scheduler_config.json", ["beta_start": "0", "beta_end": "0"])
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: folder)) { error in
            guard case .invalidValue(field: "beta_end", _, _, let path)? = error as? SchedulerError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, folder + "/scheduler/scheduler_config.json")
        }
    }

    /// A BOOL tensor where the text encoder needs float weights: a typed error naming the tensor and file.
    func testBoolWeightIsRefusedAtLoad() throws {
        let file = folder + "/text_encoder/model.safetensors"
        var tensors = try SafeTensorsFile(path: Self.demo + "/text_encoder/model.safetensors").tensors().mapValues { try $0.copied() }
        let name = "text_model.final_layer_norm.weight"
        tensors[name] = try XCTUnwrap(tensors[name]).to(.bool)
        try FileManager.default.removeItem(atPath: file)
        try SafeTensorsWriter.write(tensors, to: file)
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: folder)) { error in
            XCTAssertEqual(error as? ModuleError, .nonFloatingWeight(tensor: name, dtype: "BOOL", file: file))
        }
    }
}
