import Foundation
import NN
import Offload
import Tensor
import XCTest

/// `DeviceTarget`, `DeviceMap` (lookup, rendering, reading a user's JSON map, checking it
/// against a model) and the model-level `device_map` values Diffusers accepts.
final class DeviceMapTests: XCTestCase {
    func testDeviceTargetParsingAndOrder() {
        XCTAssertEqual(DeviceTarget(parsing: "accel:1"), .accel(1))
        XCTAssertEqual(DeviceTarget(parsing: "2"), .accel(2))
        XCTAssertEqual(DeviceTarget(parsing: " CPU "), .cpu)
        XCTAssertEqual(DeviceTarget(parsing: "disk"), .disk)
        for bad in ["", "-1", "accel:", "accel:-1", "cuda:0", "mps", "1.5", "accel:x"] {
            XCTAssertNil(DeviceTarget(parsing: bad), bad)
        }
        XCTAssertEqual([DeviceTarget.disk, .cpu, .accel(3), .accel(0)].sorted(), [.accel(0), .accel(3), .cpu, .disk])
        XCTAssertEqual(DeviceTarget.accel(0).description, "accel:0")
    }

    func testLongestPrefixLookup() throws {
        let map = DeviceMap([("down_blocks", .accel(0)), ("down_blocks.1", .cpu), ("down_blocks.1.resnets.0", .disk),
                             ("conv_in", .accel(1))])
        XCTAssertEqual(map.target(for: "down_blocks.0.resnets.0.conv1.weight"), .accel(0))
        XCTAssertEqual(map.target(for: "down_blocks.1.attentions.0.proj_in.weight"), .cpu)
        XCTAssertEqual(map.target(for: "down_blocks.1.resnets.0.norm1.bias"), .disk)
        XCTAssertEqual(map.target(for: "conv_in.weight"), .accel(1))
        // A prefix is matched by whole components only.
        XCTAssertNil(map.target(for: "conv_in_extra.weight"))
        XCTAssertNil(map.target(for: "down_blocks_x.weight"))
        XCTAssertEqual(message { _ = try map.requireTarget(for: "mid_block.resnets.0.conv1.weight") },
                       "mid_block.resnets.0.conv1.weight doesn't have any device set.")
        // "" covers everything not covered by a longer key.
        var whole = map
        whole[""] = .cpu
        XCTAssertEqual(whole.target(for: "mid_block.resnets.0.conv1.weight"), .cpu)
        XCTAssertEqual(whole.target(for: "conv_in.weight"), .accel(1))
        XCTAssertEqual(DeviceMap.wholeModel(.accel(0)).target(for: "anything.at.all"), .accel(0))
    }

    func testHFDeviceMapRendering() {
        let map = DeviceMap([("conv_in", .accel(0)), ("down_blocks.0", .accel(0)), ("mid_block", .cpu), ("up_blocks", .disk)])
        XCTAssertEqual(map.hfDeviceMap, #"{"conv_in": 0, "down_blocks.0": 0, "mid_block": "cpu", "up_blocks": "disk"}"#)
        XCTAssertEqual(DeviceMap.wholeModel(.accel(1)).hfDeviceMap, #"{"": 1}"#)
        XCTAssertEqual(DeviceMap().hfDeviceMap, "{}")
        XCTAssertEqual(map.targets, [.accel(0), .cpu, .disk])
        XCTAssertTrue(map.usesDisk)
        // The rendering reads back as the same map.
        XCTAssertEqual(try DeviceMap(json: map.hfDeviceMap), map)
    }

    func testSettingKeepsPlaceAsADictionary() {
        var map = DeviceMap([("a", .accel(0)), ("b", .cpu), ("a", .disk)])
        XCTAssertEqual(map.keys, ["a", "b"])
        XCTAssertEqual(map["a"], .disk)
        map["c"] = .accel(1)
        map["a"] = nil
        XCTAssertEqual(map.keys, ["b", "c"])
    }

    func testReadingUserJSONMap() throws {
        let map = try DeviceMap(json: #"{"down_blocks": 0, "mid_block": "cpu", "up_blocks": "disk", "conv_out": "accel:1", "conv_in": "CPU"}"#)
        XCTAssertEqual(map.keys, ["down_blocks", "mid_block", "up_blocks", "conv_out", "conv_in"])
        XCTAssertEqual(map.entries.map(\.target), [.accel(0), .cpu, .disk, .accel(1), .cpu])

        let cases: [(String, String)] = [
            (#"{"mid_block": "cuda:0"}"#, "unknown device 'cuda:0' for 'mid_block' in the device map"),
            (#"{"mid_block": -1}"#, "unknown device '-1' for 'mid_block' in the device map"),
            (#"{"mid_block": 1.5}"#, "unknown device '1.5' for 'mid_block'"),
            (#"{"mid_block": "0"}"#, "unknown device '0' for 'mid_block'"),
            (#"{"mid_block": null}"#, "unknown device 'null' for 'mid_block'"),
            (#"{"mid_block": [0]}"#, "unknown device 'an array' for 'mid_block'"),
            (#"["mid_block", 0]"#, "a device map must be a JSON object of module paths to devices, not an array"),
            (#"{"mid_block": 0"#, "the device map is not valid JSON"),
            (#"{"a": 0, "a": 1}"#, "duplicate key 'a'"),
        ]
        for (text, expected) in cases {
            let error = message { _ = try DeviceMap(json: text) }
            XCTAssertTrue(error?.contains(expected) ?? false, "\(text): \(error ?? "no error")")
        }
    }

    func testReadingAMapFile() throws {
        let folder = NSTemporaryDirectory() + "devmap-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/map.json"
        try Data(#"{"": "cpu", "mid_block": 0}"#.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try DeviceMap(contentsOfFile: path), DeviceMap([("", .cpu), ("mid_block", .accel(0))]))
        try Data(#"{"mid_block": "gpu"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let error = message { _ = try DeviceMap(contentsOfFile: path) }
        XCTAssertTrue(error?.hasPrefix(path + ": unknown device 'gpu' for 'mid_block'") ?? false, error ?? "")
        XCTAssertTrue(message { _ = try DeviceMap(contentsOfFile: folder + "/missing.json") }?.contains("missing.json") ?? false)
    }

    /// A user map checked against the Swift UNet: unknown paths, parameters left without a
    /// device (Accelerate's `check_device_map` error), and maps that are fine.
    func testValidationAgainstTheUNet() throws {
        let unet = try swiftModel("unet")
        let tree = ModuleTree(unet)
        let complete = try DeviceMap(json: #"{"conv_in": 0, "time_embedding": 0, "down_blocks": 0, "mid_block": "cpu", "up_blocks": "disk", "conv_norm_out": 1, "conv_out.weight": 1, "conv_out.bias": "cpu"}"#)
        XCTAssertNoThrow(try complete.validate(against: unet))
        let placement = try complete.placement(of: tree)
        XCTAssertEqual(placement.count, tree.parameterPaths.count)
        XCTAssertEqual(placement.first { $0.path == "up_blocks.0.resnets.0.conv1.weight" }?.target, .disk)
        XCTAssertEqual(placement.first { $0.path == "conv_out.bias" }?.target, .cpu)
        XCTAssertNoThrow(try DeviceMap.wholeModel(.cpu).validate(against: tree))
        XCTAssertNoThrow(try DeviceMap([("", .cpu), ("mid_block", .accel(0))]).validate(against: tree))

        var unknown = complete
        unknown["mid_blocks"] = .cpu
        XCTAssertEqual(message { try unknown.validate(against: tree) },
                       "the device map names 'mid_blocks', which is neither a module nor a parameter of UNet2DConditionModel")
        // A partial component name is not a prefix.
        XCTAssertEqual(message { try DeviceMap([("", .cpu), ("down_block", .accel(0))]).validate(against: tree) },
                       "the device map names 'down_block', which is neither a module nor a parameter of UNet2DConditionModel")

        var partial = complete
        partial["conv_out.bias"] = nil
        partial["mid_block"] = nil
        let error = try XCTUnwrap(message { try partial.validate(against: tree) })
        XCTAssertTrue(error.hasPrefix("The device_map provided does not give any device for the following parameters: "
                                          + "mid_block.attentions.0.norm.weight, mid_block.attentions.0.norm.bias"), error)
        XCTAssertTrue(error.hasSuffix("mid_block.resnets.1.conv2.bias, conv_out.bias"), error)
        let expectedMissing = tree.parameterPaths.filter { $0.hasPrefix("mid_block.") || $0 == "conv_out.bias" }
        XCTAssertEqual(error, OffloadError.uncoveredParameters(expectedMissing).description)
    }

    /// The string and integer values Diffusers' `ModelMixin.from_pretrained` accepts.
    func testModelLevelRequestParsing() throws {
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "auto"), .strategy(.auto))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "balanced"), .strategy(.balanced))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "balanced_low_0"), .strategy(.balancedLow0))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "sequential"), .strategy(.sequential))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "cpu"), .map(.wholeModel(.cpu)))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "accel"), .map(.wholeModel(.accel(0))))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "accel:1"), .map(.wholeModel(.accel(1))))
        XCTAssertEqual(try ModelDeviceMapRequest(parsing: "1"), .map(.wholeModel(.accel(1))))
        XCTAssertEqual(try ModelDeviceMapRequest(index: 0), .map(.wholeModel(.accel(0))))
        for bad in ["Auto", "balanced_low_1", "gpu", "disk", "cuda", ""] {
            XCTAssertEqual(message { _ = try ModelDeviceMapRequest(parsing: bad) },
                           "When passing device_map as a string, the value needs to be a device name (e.g. cpu, accel:0) or "
                               + "'auto', 'balanced', 'balanced_low_0', 'sequential' but found \(bad).")
        }
        XCTAssertEqual(message { _ = try ModelDeviceMapRequest(index: -1) },
                       "You can't pass device_map as a negative int (-1). If you want to put the model on the cpu, pass device_map = 'cpu'")
        XCTAssertEqual(try? ModelDeviceMapRequest(parsing: "-2"), nil)
    }

    /// A strategy on a model that declares no no-split classes fails as in Diffusers; a
    /// given map does not need them.
    func testStrategyNeedsNoSplitClasses() throws {
        let plain = Module()
        plain.child("proj", Module()).registerParameter("weight", Parameter(shape: [4, 4]))
        let machine = MemoryInventory(acceleratorFreeBytes: [(0, 1000)], cpuAvailableBytes: 1000)
        for strategy in DeviceMapStrategy.allCases {
            XCTAssertEqual(message { _ = try determineDeviceMap(for: plain, request: .strategy(strategy), inventory: machine) },
                           "Module does not support `device_map='\(strategy.rawValue)'`. To implement support, the model "
                               + "class needs to implement the `_no_split_modules` attribute (`noSplitModuleClasses` in this port).")
        }
        XCTAssertEqual(try determineDeviceMap(for: plain, request: .map(.wholeModel(.accel(0))), inventory: machine),
                       .wholeModel(.accel(0)))
        XCTAssertEqual(message { _ = try determineDeviceMap(for: plain, request: .map(DeviceMap([("proj.bias", .cpu)])),
                                                            inventory: machine) },
                       "the device map names 'proj.bias', which is neither a module nor a parameter of Module")
    }

    /// The union of the no-split classes of the model and the models nested in it.
    func testNoSplitClassesOfNestedModels() throws {
        let inner = ModuleTree.Spec(className: "Inner", parameters: [.init(name: "w", elementCount: 4, dtype: .f32)],
                                    noSplitModuleClasses: ["InnerBlock"])
        let skipped = ModuleTree.Spec(className: "OuterBlock", children: [.init(name: "m", spec: ModuleTree.Spec(
            className: "Hidden", noSplitModuleClasses: ["NeverSeen"]))])
        let tree = ModuleTree(ModuleTree.Spec(className: "Outer", children: [.init(name: "inner", spec: inner),
                                                                              .init(name: "block", spec: skipped)],
                                              noSplitModuleClasses: ["OuterBlock"]))
        XCTAssertEqual(Set(try noSplitModuleClasses(of: tree, strategy: .auto)), ["OuterBlock", "InnerBlock"])
        let models = try ["unet", "vae", "text_encoder"].map(swiftModel)
        XCTAssertEqual(try noSplitModuleClasses(of: ModuleTree(models[0]), strategy: .auto),
                       ["BasicTransformerBlock", "ResnetBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"])
        XCTAssertEqual(try noSplitModuleClasses(of: ModuleTree(models[1]), strategy: .sequential),
                       ["BasicTransformerBlock", "ResnetBlock2D"])
        XCTAssertEqual(try noSplitModuleClasses(of: ModuleTree(models[2]), strategy: .balanced),
                       ["CLIPTextEmbeddings", "CLIPEncoderLayer"])
    }
}
