import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import TestSupport
import XCTest

/// The memory toolkit on the FLUX transformer beyond what every denoiser opts into
/// (OffloadStrategyTests, PipelineOffloadTests): its block groups, the guide's custom device
/// map, layerwise casting with its skip patterns, attention backends, the disk tier.
final class FluxOffloadTests: XCTestCase {
    let model = ModelCase.tinyFluxDev

    /// Block-level groups are the dual-stream and the single-stream blocks; the embedders and
    /// the output norm are the unmatched group.
    func testBlockGroupsAreBothBlockLists() throws {
        let transformer = try model.make()
        let state = try transformer.applyGroupOffloading(device: .accel(5), options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1), useStream: true))
        XCTAssertEqual(Set(state.groups.map(\.id)), ["transformer_blocks_0_0", "transformer_blocks_1_1", "single_transformer_blocks_0_0",
                                                      "single_transformer_blocks_1_1", "FluxTransformer2DModel_unmatched_group"])
        _ = try model.forward(transformer)
        XCTAssertEqual(state.executionOrder, ["transformer_blocks_0_0", "transformer_blocks_1_1", "single_transformer_blocks_0_0",
                                              "single_transformer_blocks_1_1"])
    }

    /// A transformer of FLUX.1's depth (19 + 38 blocks) at the tiny width, seeded random weights.
    func fullDepthTransformer() throws -> FluxTransformer2DModel {
        var config = try FluxTransformer2DConfig(ModelConfig(path: OffloadStrategyTests.root + "/tiny-flux-models/transformer-dev/config.json"))
        (config.numLayers, config.numSingleLayers) = (19, 38)
        let transformer = FluxTransformer2DModel(config)
        var generator = TorchGenerator(seed: 17)
        for (_, slot) in transformer.namedParameters() {
            let fanIn = slot.shape.count > 1 ? slot.shape[1] : 1
            slot.value = try generator.randn(slot.shape) * (slot.shape.count > 1 ? 1 / Float(fanIn).squareRoot() : 0.1)
        }
        return transformer
    }

    /// The guide's device map for the FLUX transformer, as written there: the embedders, the
    /// dual-stream blocks and single blocks 0–9 on the first accelerator, 10–20 on the second,
    /// the rest on the CPU. It executes and gives the plain output bit for bit, and every
    /// module computes where the map put it.
    func testTheGuidesCustomDeviceMap() throws {
        var entries = ["\"pos_embed\": 0", "\"time_text_embed\": 0", "\"context_embedder\": 0", "\"x_embedder\": 0", "\"transformer_blocks\": 0"]
        entries += (0..<38).map { "\"single_transformer_blocks.\($0)\": \($0 < 10 ? "0" : $0 <= 20 ? "1" : "\"cpu\"")" }
        entries += ["\"norm_out\": \"cpu\"", "\"proj_out\": \"cpu\""]
        let map = try DeviceMap(json: "{" + entries.joined(separator: ", ") + "}")
        let transformer = try fullDepthTransformer()
        let plain = try model.forward(transformer).floats()
        let devices = DeviceSet(accelCapacities: [0: 64 << 20, 1: 64 << 20])
        try transformer.dispatch(deviceMap: map, devices: devices)
        func device(_ path: String) -> String? {
            transformer.namedParameters().first { $0.path.hasPrefix(path + ".") }?.parameter.value?.device.description
        }
        XCTAssertEqual(device("transformer_blocks.18"), "accel:0")
        XCTAssertEqual(device("single_transformer_blocks.9"), "accel:0")
        XCTAssertEqual(device("single_transformer_blocks.10"), "accel:1")
        XCTAssertEqual(device("single_transformer_blocks.20"), "accel:1")
        XCTAssertGreaterThan(devices.accel(1).allocator.bytesInUse, 0)
        let out = try model.forward(transformer)
        XCTAssertEqual(try out.to(.cpu).floats(), plain, "the mapped transformer computes the plain output")
        try transformer.removeAllHooks()
    }

    /// Diffusers' layerwise casting of the FLUX transformer: the same layers cast (the AdaLN
    /// modulations, `pos_embed` and the top-level `proj_out` stay in the compute dtype) and
    /// Diffusers' outputs for every storage dtype.
    func testLayerwiseCastingMatchesDiffusers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: OffloadStrategyTests.root + "/layerwise-casting/flux-hooked-layers.json"))
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String])
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/layerwise-casting/flux-transformer.safetensors")
        for (name, dtype) in [("f8e4m3fn", DType.f8e4m3fn), ("f8e5m2", .f8e5m2), ("bf16", .bf16)] {
            let transformer = try model.make()
            try transformer.enableLayerwiseCasting(storage: dtype, compute: .f32)
            XCTAssertEqual(transformer.allHooks().filter { $0.name == OffloadHookName.layerwiseCasting }.map(\.path).sorted(), expected, name)
            try assertRelativeL2(model.forward(transformer), f.tensor(named: name), within: 1e-4, "\(name): Diffusers' layerwise-cast output")
            let stored = Dictionary(uniqueKeysWithValues: transformer.namedParameters().map { ($0.path, $0.parameter.value?.dtype) })
            XCTAssertEqual(stored["transformer_blocks.0.norm1.linear.weight"], .f32, "AdaLN modulation stays f32")
            XCTAssertEqual(stored["proj_out.weight"], .f32, "^proj_out$ stays f32")
            XCTAssertEqual(stored["single_transformer_blocks.0.proj_out.weight"], dtype, "a block's proj_out is cast")
        }
    }

    /// Every attention kernel gives Diffusers' output (SDPA over the joint sequence).
    func testAttentionBackends() throws {
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/tiny-flux-models/outputs.safetensors")
        let transformer = try model.make()
        for backend in [AttentionBackend.naive, .flash, .sliced(.auto), .sliced(AttentionSliceSize.max), .auto] {
            try transformer.setAttentionBackend(backend)
            try assertRelativeL2(model.forward(transformer), f.tensor(named: "dev.output"), within: 1e-4, "\(backend)")
        }
    }

    /// The disk tier: group offloading onto the CPU streams the mapped checkpoint's pages; the
    /// numbers are the plain run's, and with an offload folder (weights converted to bf16, so
    /// not mapped from the checkpoint) the groups go to files and come back the same.
    func testDiskTier() throws {
        let plain = try model.forward(model.make()).floats()
        for options in [GroupOffloadOptions(type: .leafLevel), GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1))] {
            let transformer = try model.make()
            XCTAssertTrue(transformer.namedParameters().allSatisfy { $0.parameter.value?.storage.isMapped == true }, "weights stay mapped")
            let state = try transformer.applyGroupOffloading(device: .cpu, options: options)
            XCTAssertEqual(try model.forward(transformer).floats(), plain, "\(options.type)")
            // The first forward traces the order; from then on each group's successor's pages
            // are asked for while it computes (one group ahead: prefetchBytes 0).
            XCTAssertEqual(state.executionOrder.count, state.groups.count - (options.type == .leafLevel ? 0 : 1), "\(options.type)")
            let advisedInFirst = state.statistics.prefetchCount
            XCTAssertEqual(try model.forward(transformer).floats(), plain, "\(options.type), pages read ahead")
            let perForward = state.statistics.prefetchCount - advisedInFirst
            XCTAssertGreaterThanOrEqual(perForward, state.executionOrder.count - 1, "\(options.type): each following group asked for")
            XCTAssertLessThanOrEqual(perForward, state.executionOrder.count + 1, "\(options.type): once per onload")
        }
        let folder = NSTemporaryDirectory() + "flux-disk-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let folderPath = OffloadStrategyTests.root + "/tiny-flux-models/transformer-dev"
        let bf16 = FluxTransformer2DModel(try FluxTransformer2DConfig(ModelConfig(path: folderPath + "/config.json")))
        try bf16.load(from: Checkpoint(folder: folderPath), dtype: .bf16)
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/tiny-flux-models/outputs.safetensors")
        func run(_ m: FluxTransformer2DModel) throws -> [Float] {
            func input(_ key: String) throws -> Tensor { try f.tensor(named: "dev.\(key)").to(.bf16) }
            return try m(input("hidden_states"), encoderHiddenStates: input("encoder_hidden_states"), pooledProjections: input("pooled_projections"),
                         timestep: input("timestep"), imageIds: input("img_ids"), textIds: input("txt_ids"), guidance: input("guidance")).floats()
        }
        let resident = try run(bf16)
        var options = GroupOffloadOptions(type: .leafLevel)
        options.offloadToDiskPath = folder
        try bf16.applyGroupOffloading(device: .cpu, options: options)
        XCTAssertEqual(try run(bf16), resident, "bf16 groups from their files")
        let written = try FileManager.default.contentsOfDirectory(atPath: folder)
        XCTAssertFalse(written.isEmpty, "the groups were written to the offload folder")
    }
}

extension FluxOffloadTests {
    /// Block level on T5 groups its encoder's blocks (blocksPerGroup at a time), as the guide's
    /// text-encoder example means; the shared embedding and final norm are the unmatched groups.
    func testT5BlockGroups() throws {
        let folder = OffloadStrategyTests.root + "/tiny-flux-dev/text_encoder_2"
        let t5 = T5EncoderModel(try T5Config(ModelConfig(path: folder + "/config.json")))
        try t5.load(from: Checkpoint(folder: folder))
        let ids = try Tensor(int64: (0..<24).map { Int64($0 * 7 % 500) }, shape: [1, 24])
        let plain = try t5(ids).lastHiddenState.floats()
        let state = try t5.applyGroupOffloading(device: .accel(6), options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 2)))
        XCTAssertEqual(Set(state.groups.map(\.id)), ["encoder.block_0_1", "encoder.T5Stack_unmatched_group", "T5EncoderModel_unmatched_group"])
        XCTAssertEqual(try t5(ids).lastHiddenState.to(.cpu).floats(), plain)
        XCTAssertEqual(Device.accel(6).allocator.bytesInUse, 0)
    }
}
