import Foundation
import Models
import NN
import Pipelines
import Tensor
import TestSupport
import XCTest

/// The pipeline core: the family from `_class_name`, components through the registry by class
/// name, the layout's call order, and the errors of folders a family cannot take.
final class AutoPipelineTests: XCTestCase {
    static let tinySD = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-sd").path
    private var folder = ""

    /// A copy of the tiny SD pipeline: configs copied, weights linked.
    override func setUpWithError() throws {
        folder = try ConfigEditing.temporaryCopy(of: Self.tinySD, label: "auto-pipeline")
    }

    override func tearDown() { ConfigEditing.removeTemporaryCopy(folder) }

    private func editIndex(_ changes: [String: String?]) throws {
        try ConfigEditing.write(from: folder + "/model_index.json", to: folder + "/model_index.json", changes)
    }

    private func assertLoadFails(containing fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try AutoPipeline.textToImage(folder: folder), line: line) { error in
            for fragment in fragments { XCTAssertTrue("\(error)".contains(fragment), "\(error) lacks \(fragment)", line: line) }
        }
    }

    func testTheFamilyComesFromTheClassName() throws {
        let pipeline = try AutoPipeline.textToImage(folder: folder)
        XCTAssertTrue(pipeline is StableDiffusionPipeline)
        // model_cpu_offload_seq "text_encoder->image_encoder->unet->vae", with no image encoder.
        XCTAssertEqual(pipeline.namedComponents.map(\.name), ["text_encoder", "unet", "vae"])
        XCTAssertTrue(pipeline.denoiser === pipeline.component(named: "unet"))
        XCTAssertTrue(pipeline.imageToImage() is StableDiffusionImg2ImgPipeline)
        // A folder saved from the image-to-image pipeline selects the same family.
        try editIndex(["_class_name": #""StableDiffusionImg2ImgPipeline""#])
        XCTAssertEqual(try AutoPipeline.family(of: folder).layout.className, "StableDiffusionPipeline")
    }

    /// The same images as the family's own initialiser: the core changes no number.
    func testAutoPipelineRunsAsTheFamilyPipeline() throws {
        var options = GenerationOptions(prompt: "a red circle")
        options.steps = 2
        options.seed = 3
        let auto = try AutoPipeline.textToImage(folder: folder).generate(options, progress: nil)
        let direct = try StableDiffusionPipeline(folder: folder).generate(options)
        XCTAssertEqual(try auto.images.floats(), try direct.images.floats())
    }

    func testAnUnknownOrMissingPipelineClassIsRefused() throws {
        try editIndex(["_class_name": #""KandinskyPipeline""#])
        assertLoadFails(containing: ["KandinskyPipeline", "StableDiffusionPipeline", "model_index.json"])
        try editIndex(["_class_name": nil])
        assertLoadFails(containing: ["names no pipeline class", "StableDiffusionPipeline"])
    }

    func testAComponentTheIndexDoesNotNameIsSaidSo() throws {
        try editIndex(["text_encoder": nil])
        assertLoadFails(containing: ["names no text_encoder", "StableDiffusionPipeline needs"])
        try editIndex(["text_encoder": "[null, null]"])
        assertLoadFails(containing: ["names no text_encoder"])
    }

    /// A class the registry loads, in a slot the family cannot use it in.
    func testAComponentOfTheWrongClassIsRefused() throws {
        try FileManager.default.removeItem(atPath: folder + "/vae")
        try ConfigEditing.linkedCopy(of: Self.tinySD + "/unet", to: folder + "/vae")
        try editIndex(["vae": #"["diffusers", "UNet2DConditionModel"]"#])
        assertLoadFails(containing: ["component vae has class UNet2DConditionModel", "StableDiffusionPipeline needs AutoencoderKL"])
    }

    /// A registry without a class refuses it by name: what a family does not register, no
    /// pipeline loads.
    func testTheRegistryDecidesWhatLoads() throws {
        var registry = ComponentRegistry.standard
        XCTAssertTrue(registry.classNames.contains("UNet2DConditionModel"))
        registry = ComponentRegistry()
        XCTAssertThrowsError(try LoadedComponents(folder: folder, layout: StableDiffusionPipeline.layout, dtype: .f32,
                                                  castWeightsOnLoad: true, registry: registry)) { error in
            XCTAssertEqual(error as? PipelineError, .unknownComponentClass(component: "tokenizer", className: "CLIPTokenizer"))
        }
    }
}

/// The registry builds a model from its config alone, in Diffusers' `state_dict()` order:
/// what `diffuse shard` shards by.
final class UnloadedModelTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    func testParameterOrderIsTheStateDictOrder() throws {
        // transformers 5 names CLIP's keys without text_model. in state_dict() and adds it back on save.
        for (orderFile, className, folder, prefix) in [("unet", "UNet2DConditionModel", "checkpoints/unet-single", ""),
                                                       ("vae", "AutoencoderKL", "tiny-sd/vae", ""),
                                                       ("text-encoder", "CLIPTextModel", "tiny-sd/text_encoder", "text_model.")] {
            let order = try XCTUnwrap(JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixtures
                + "/state-dict-order/\(orderFile)-state-dict-order.json")))).arrayValue?.compactMap(\.stringValue)).map { prefix + $0 }
            let model = try XCTUnwrap(ComponentRegistry.standard.unloadedModel(className: className, folder: Self.fixtures + "/" + folder))
            let ours = model.namedParameters().map(\.path)
            XCTAssertEqual(ours.count, order.count, className)
            for (i, (a, b)) in zip(ours, order).enumerated() where a != b { XCTFail("\(className) \(i): \(a) != \(b)"); break }
        }
        XCTAssertNil(try ComponentRegistry.standard.unloadedModel(className: "PNDMScheduler", folder: Self.fixtures + "/checkpoints/unet-single"))
    }
}
