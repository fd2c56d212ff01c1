import Foundation
import Models
import NN
import Offload
import Tensor
import XCTest

/// Strategies on the Swift tiny-sd models: the same placement as Accelerate computed for the
/// PyTorch models, and the properties the strategies promise.
final class SwiftModelDeviceMapTests: XCTestCase {
    /// The Swift model's tree with the root's children in the PyTorch model's registration
    /// order. The Swift UNet registers `mid_block` before `up_blocks`, Diffusers `up_blocks`
    /// first (its state_dict order), and Accelerate walks children in registration order, so
    /// the two maps differ wherever a split falls near those blocks. A no-op for a model
    /// already in Diffusers' order.
    func diffusersOrdered(_ model: Module, like python: ModuleTree) -> ModuleTree {
        var spec = ModuleTree.spec(of: model)
        let order = python.root.children.map(\.name)
        spec.children.sort { (order.firstIndex(of: $0.name) ?? .max) < (order.firstIndex(of: $1.name) ?? .max) }
        return ModuleTree(spec)
    }

    /// Every UNet and VAE case of the fixtures on the Swift models: every parameter lands
    /// where Accelerate put it, and the maps are equal once Accelerate's keys for
    /// parameter-less modules (SiLU, Dropout, Timesteps: absent from the Swift trees) are dropped.
    func testPlacementEqualsAccelerateForEveryCase() throws {
        var checked = 0
        for (number, fixture) in try readJSON(deviceMapFixtures + "/model-cases.json").array().enumerated() {
            let name = try fixture.member("model").string()
            guard name != "text_encoder" else { continue }   // transformers 5's CLIP has no `text_model.` level
            let python = try pythonTree(name)
            let tree = diffusersOrdered(try swiftModel(name), like: python)
            XCTAssertEqual(tree.parameterPaths, python.parameterPaths)
            let strategy = try XCTUnwrap(DeviceMapStrategy(rawValue: try fixture.member("strategy").string()))
            let dtype = try fixture.member("dtype").stringValue.flatMap(DType.init(rawValue:))
            let map = try determineDeviceMap(for: tree, request: .strategy(strategy),
                                             maxMemory: budgets(fixture.member("max_memory")), dtype: dtype,
                                             inventory: inventory(fixture.member("inventory")))
            let expected = DeviceMap(try mapPairs(fixture.member("device_map")))
            let label = "case \(number): \(name) \(strategy)"
            XCTAssertEqual(try map.placement(of: tree).map(\.target), try expected.placement(of: tree).map(\.target), label)
            XCTAssertEqual(dictionary(map), dictionary(expected).filter { tree.contains(path: $0.key) }, label)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 28)
    }

    /// The Swift UNet registers its children in Diffusers' order (`up_blocks` before
    /// `mid_block`), so a split that falls between those blocks lands where Diffusers puts it.
    func testSwiftUNetChildOrderIsDiffusers() throws {
        let unet = ModuleTree(try swiftModel("unet"))
        XCTAssertEqual(unet.root.children.map(\.name),
                       ["conv_in", "time_embedding", "down_blocks", "up_blocks", "mid_block", "conv_norm_out", "conv_out"])
        let budgets: [String: MemoryBudget] = ["0": 3_000_000, "1": 3_000_000, "2": 3_000_000]
        let machine = MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 0)
        let own = try determineDeviceMap(for: unet, request: .strategy(.balanced), maxMemory: budgets, inventory: machine)
        let ordered = try determineDeviceMap(for: diffusersOrdered(try swiftModel("unet"), like: try pythonTree("unet")),
                                             request: .strategy(.balanced), maxMemory: budgets, inventory: machine)
        let expected = #"{"conv_in": 0, "time_embedding": 0, "down_blocks": 0, "up_blocks.0": 0, "up_blocks.1": 1, "mid_block": 1, "conv_norm_out": 1, "conv_out": 1}"#
        XCTAssertEqual(ordered.hfDeviceMap, expected)
        XCTAssertEqual(own.hfDeviceMap, expected)
    }

    /// No strategy and no budget ever splits a no-split module (a ResnetBlock2D, a
    /// BasicTransformerBlock, a UNet up block): no key lies inside one.
    func testNoSplitModulesAreNeverSplit() throws {
        for name in ["unet", "vae", "text_encoder"] {
            let model = try swiftModel(name)
            let tree = ModuleTree(model)
            let noSplit = Set(model.noSplitModuleClasses)
            let total = tree.moduleSizes().total
            var splitMaps = 0
            for step in 1...80 {
                let budget = total * step / 40
                for strategy in DeviceMapStrategy.allCases {
                    let map = try determineDeviceMap(for: tree, request: .strategy(strategy),
                                                     maxMemory: ["0": .bytes(budget / 2), "1": .bytes(budget / 3),
                                                                 "cpu": .bytes(budget / 4)],
                                                     inventory: MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 0))
                    if map.count > 1 { splitMaps += 1 }
                    for key in map.keys {
                        var parts = key.split(separator: ".").map(String.init)
                        while !parts.isEmpty {
                            parts.removeLast()
                            let ancestor = parts.joined(separator: ".")
                            let className = tree.node(at: ancestor)?.className ?? ""
                            XCTAssertFalse(noSplit.contains(className), "\(name) \(strategy) \(budget): \(key) splits \(ancestor) (\(className))")
                        }
                    }
                    XCTAssertNoThrow(try map.validate(against: tree))
                }
            }
            XCTAssertGreaterThan(splitMaps, 20, name)
        }
    }

    /// The first accelerator and `cpu` keep room for the largest layer; the other
    /// accelerators do not.
    func testFirstAcceleratorAndCPUReserveTheLargestLayer() throws {
        let unet = try swiftModel("unet")
        let tree = ModuleTree(unet)
        let total = tree.moduleSizes().total
        let largest = tree.largestLayer(noSplitModuleClasses: unet.noSplitModuleClasses)
        XCTAssertEqual(largest.names, ["up_blocks.0"])   // the CrossAttnUpBlock2D
        XCTAssertEqual(largest.size, tree.moduleSizes()["up_blocks.0"])
        let machine = MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 0)
        func plan(_ budgets: [String: MemoryBudget]) throws -> DeviceMap {
            try determineDeviceMap(for: tree, request: .strategy(.sequential), maxMemory: budgets, inventory: machine)
        }
        let first = tree.moduleSizes()["conv_in"]
        // conv_in, the first module, fits accel:0 or cpu only with the largest layer kept free ...
        XCTAssertEqual(try plan(["0": .bytes(largest.size + first - 1)]), .wholeModel(.disk))
        XCTAssertEqual(try plan(["0": .bytes(largest.size + first)]).target(for: "conv_in.weight"), .accel(0))
        XCTAssertEqual(try plan(["cpu": .bytes(largest.size + first - 1)]), .wholeModel(.disk))
        XCTAssertEqual(try plan(["cpu": .bytes(largest.size + first)]).target(for: "conv_in.weight"), .cpu)
        // ... while accel:1 keeps no reserve (accel:0, with nothing, passes everything on).
        XCTAssertEqual(try plan(["0": 0, "1": .bytes(first)]).target(for: "conv_in.weight"), .accel(1))
        XCTAssertEqual(try plan(["0": 0, "1": .bytes(total)]), .wholeModel(.accel(1)))
        // The reserve is for the largest layer still to place, so it shrinks as the walk
        // passes the big blocks: the model's own size is enough for the whole model.
        XCTAssertEqual(try plan(["0": .bytes(total)]), .wholeModel(.accel(0)))
        XCTAssertEqual(try plan(["0": .bytes(total - 1)]).targets, [.accel(0), .disk])
        // Overflow: accel:0, then cpu, then disk.
        let spread = try plan(["0": "2.7MB", "cpu": "2.5MB"])
        XCTAssertEqual(spread.targets, [.accel(0), .cpu, .disk])
        XCTAssertEqual(spread.entries.first?.target, .accel(0))
        XCTAssertEqual(spread.entries.last?.target, .disk)
        // Without a cpu budget, overflow goes straight to disk.
        XCTAssertEqual(try plan(["0": "2.7MB"]).targets, [.accel(0), .disk])
        // Devices that got nothing are reported with what they would have needed.
        let result = tree.inferAutoDeviceMap(maxMemory: MaxMemory([(.accel(0), 1000), (.cpu, 1000)]),
                                             noSplitModuleClasses: unet.noSplitModuleClasses)
        XCTAssertEqual(result.deviceMap, .wholeModel(.disk))
        XCTAssertEqual(result.unusedDevices.map(\.device), [.accel(0), .cpu])
        XCTAssertEqual(result.unusedDevices.first?.bytes, tree.moduleSizes()["conv_in"] + largest.size)
    }

    /// `balanced`: with one accelerator and no user budget, 90 % of its free memory; the last
    /// accelerator keeps its whole budget, the others get the even share plus the buffer.
    func testBalancedBudgets() throws {
        let unet = try swiftModel("unet")
        let tree = ModuleTree(unet)
        let noSplit = unet.noSplitModuleClasses
        let one = MaxMemory([(.accel(0), 3_000_000), (.cpu, 100_000_000)])
        XCTAssertEqual(try tree.balancedMemory(one, userSetMaxMemory: false, noSplitModuleClasses: noSplit)[.accel(0)], 2_700_000)
        XCTAssertEqual(try tree.balancedMemory(one, userSetMaxMemory: true, noSplitModuleClasses: noSplit)[.accel(0)], 3_000_000)

        let sizes = tree.moduleSizes()
        let three = MaxMemory([(.accel(0), 10_000_000), (.accel(1), 10_000_000), (.accel(2), 10_000_000), (.cpu, 1)])
        let balanced = try tree.balancedMemory(three, userSetMaxMemory: true, noSplitModuleClasses: noSplit)
        // The buffer: 1.25 × the first-met no-split block; with parameter order, ResnetBlock2D
        // (down_blocks.0.resnets.0) and BasicTransformerBlock come before the up blocks, and the
        // largest first-seen instance wins.
        let firstSeen = ["down_blocks.0.resnets.0", "down_blocks.1.attentions.0.transformer_blocks.0", "up_blocks.0",
                         "up_blocks.1"].map { sizes[$0] }.max() ?? 0
        let share = sizes.total / 3 + Int(1.25 * Double(firstSeen))
        XCTAssertEqual(balanced.entries.map(\.bytes), [share, share, 10_000_000, 1])
        // balanced_low_0: accel:0 gets what the others cannot hold.
        let low = try tree.balancedMemory(three, userSetMaxMemory: true, noSplitModuleClasses: noSplit, lowZero: true)
        let lowShare = sizes.total / 2 + Int(1.25 * Double(firstSeen))
        XCTAssertEqual(low.entries.map(\.bytes), [max(0, sizes.total - lowShare - 10_000_000), lowShare, 10_000_000, 1])
        // balanced_low_0 reads accelerators 1..<n by index, as Accelerate does.
        let gap = MaxMemory([(.accel(0), 1_000_000), (.accel(2), 1_000_000)])
        XCTAssertEqual(message { _ = try tree.balancedMemory(gap, userSetMaxMemory: true, noSplitModuleClasses: noSplit, lowZero: true) },
                       "balanced_low_0 needs budgets for accel:0..<accel:2 (Accelerate reads them by index), but accel:1 has none")
        // No accelerator: unchanged.
        let cpuOnly = MaxMemory([(.cpu, 5)])
        XCTAssertEqual(try tree.balancedMemory(cpuOnly, userSetMaxMemory: false, noSplitModuleClasses: noSplit), cpuOnly)
    }

    /// Sizes in the target dtype: floats at `min(target, own)`, integers as they are, and a
    /// special dtype per parameter.
    func testSizesFollowTheTargetDType() throws {
        let spec = ModuleTree.Spec(className: "M", children: [
            .init(name: "a", spec: .init(className: "Linear", parameters: [.init(name: "weight", elementCount: 10, dtype: .f32)])),
            .init(name: "b", spec: .init(className: "Linear", parameters: [.init(name: "weight", elementCount: 10, dtype: .f8e4m3fn)],
                                         buffers: [.init(name: "ids", elementCount: 3, dtype: .i64)])),
        ])
        let tree = ModuleTree(spec)
        XCTAssertEqual(tree.moduleSizes().total, 40 + 10 + 24)
        XCTAssertEqual(tree.moduleSizes(dtype: .f16).total, 20 + 10 + 24)
        XCTAssertEqual(tree.moduleSizes(dtype: .f16, specialDTypes: ["a.weight": .f32]).total, 40 + 10 + 24)
        XCTAssertEqual(tree.moduleSizes(dtype: .f16, buffersOnly: true).total, 24)
        XCTAssertEqual(tree.moduleSizes().order, ["", "a", "a.weight", "b", "b.weight", "b.ids"])
        XCTAssertEqual(ModuleTree(try swiftModel("unet")).moduleSizes(dtype: .bf16).total, 985_444 * 2)
    }
}
