import Foundation
import NN
import Offload
import Tensor
import XCTest

/// The planner against Accelerate and Diffusers themselves: the fixtures in
/// Tests/Fixtures/device-maps hold what they computed for the tiny-sd models (built by
/// PyTorch on the meta device, dumped as trees) under the same budgets.
final class AccelerateFixtureTests: XCTestCase {
    /// `compute_module_sizes`: every key and size, in Accelerate's order, in f32 and f16.
    func testModuleSizesEqualAccelerate() throws {
        let fixture = try readJSON(deviceMapFixtures + "/module-sizes.json")
        for model in ["unet", "vae", "text_encoder"] {
            let tree = try pythonTree(model)
            for dtype in [DType.f32, .f16] {
                let expected = try fixture.member("\(model).\(dtype)").array().map { entry -> (String, Int) in
                    let parts = try entry.array()
                    return (try parts[0].string(), try parts[1].int())
                }
                let sizes = tree.moduleSizes(dtype: dtype)
                XCTAssertEqual(sizes.order, expected.map(\.0), "\(model) \(dtype)")
                XCTAssertEqual(sizes.order.map { sizes[$0] }, expected.map(\.1), "\(model) \(dtype)")
            }
        }
    }

    /// Every model case: the budgets (`get_balanced_memory` / `get_max_memory`), the raw map
    /// (exactly, in order), the cleaned map (as a dictionary) and `determineDeviceMap` as
    /// Diffusers' `_determine_device_map`.
    func testModelCasesEqualAccelerate() throws {
        var trees: [String: ModuleTree] = [:]
        let cases = try readJSON(deviceMapFixtures + "/model-cases.json").array()
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        for (number, fixture) in cases.enumerated() {
            let model = try fixture.member("model").string()
            let tree = try trees[model] ?? pythonTree(model)
            trees[model] = tree
            guard let strategy = DeviceMapStrategy(rawValue: try fixture.member("strategy").string()) else {
                throw FixtureError("bad strategy")
            }
            let dtype = try fixture.member("dtype").stringValue.map { name -> DType in
                guard let dtype = DType(rawValue: name) else { throw FixtureError("bad dtype \(name)") }
                return dtype
            }
            let user = try budgets(fixture.member("max_memory"))
            let machine = try inventory(fixture.member("inventory"))
            let label = "case \(number): \(model) \(strategy) \(String(describing: user)) \(dtype.map(\.rawValue) ?? "-")"

            XCTAssertEqual(tree.moduleSizes(dtype: dtype).total, try fixture.member("total_size").int(), label)
            let noSplit = try noSplitModuleClasses(of: tree, strategy: strategy)
            var memory = try getMaxMemory(user, inventory: machine)
            if strategy != .sequential {
                memory = try tree.balancedMemory(memory, userSetMaxMemory: user != nil, noSplitModuleClasses: noSplit,
                                                 dtype: dtype, lowZero: strategy == .balancedLow0)
            }
            XCTAssertEqual(memory, try maxMemory(fixture.member("budgets")), label)

            let raw = tree.inferAutoDeviceMap(maxMemory: memory, noSplitModuleClasses: noSplit, dtype: dtype, clean: false)
            let expectedRaw = try mapPairs(fixture.member("raw_device_map"))
            XCTAssertEqual(raw.deviceMap.keys, expectedRaw.map(\.0), label)
            XCTAssertEqual(raw.deviceMap.entries.map(\.target), expectedRaw.map(\.1), label)

            let expected = dictionary(try mapPairs(fixture.member("device_map")))
            let cleaned = tree.inferAutoDeviceMap(maxMemory: memory, noSplitModuleClasses: noSplit, dtype: dtype)
            XCTAssertEqual(dictionary(cleaned.deviceMap), expected, label)
            let determined = try determineDeviceMap(for: tree, request: .strategy(strategy), maxMemory: user,
                                                    dtype: dtype, inventory: machine)
            XCTAssertEqual(determined, cleaned.deviceMap, label)
        }
    }

    /// `auto` is `balanced` (Diffusers maps both to `get_balanced_memory` with `low_zero=False`).
    func testAutoEqualsBalanced() throws {
        let tree = try pythonTree("unet")
        let machine = MemoryInventory(acceleratorFreeBytes: [(0, 1_500_000), (1, 2_500_000)], cpuAvailableBytes: 3_000_000)
        for user in [nil, ["0": "1MB", "1": "2MB", "cpu": "1MB"] as [String: MemoryBudget]] {
            XCTAssertEqual(try determineDeviceMap(for: tree, request: .strategy(.auto), maxMemory: user, inventory: machine),
                           try determineDeviceMap(for: tree, request: .strategy(.balanced), maxMemory: user, inventory: machine))
        }
    }

    /// Diffusers' `_get_final_device_map("balanced")` for the tiny pipeline: component sizes in
    /// the target dtype, and the map; the one case with two overflowing components differs by
    /// design (see `assignComponentsToDevices`).
    func testPipelineCasesEqualDiffusers() throws {
        let components = try ["unet", "vae", "text_encoder"].map { (name: $0, tree: try pythonTree($0)) }
        var sawDoubleOverflow = false
        for (number, fixture) in try readJSON(deviceMapFixtures + "/pipeline-cases.json").array().enumerated() {
            guard let dtype = DType(rawValue: try fixture.member("dtype").string()) else { throw FixtureError("dtype") }
            let label = "pipeline case \(number)"
            for entry in try fixture.member("component_sizes").array() {
                let parts = try entry.array()
                let tree = try XCTUnwrap(components.first { $0.name == (try? parts[0].string()) }?.tree)
                XCTAssertEqual(tree.moduleSizes(dtype: dtype).total, try parts[1].int(), label)
            }
            let map = try balancedPipelineDeviceMap(components: components, dtype: dtype,
                                                    maxMemory: budgets(fixture.member("max_memory")),
                                                    inventory: inventory(fixture.member("inventory")))
            let expectedJSON = try fixture.member("device_map")
            if expectedJSON.isNull {
                XCTAssertNil(map, label)
                continue
            }
            let expected = try mapPairs(expectedJSON)
            let ours = try XCTUnwrap(map, label)
            let cpuComponents = ours.entries.filter { $0.target == .cpu }.map(\.prefix)
            if cpuComponents.count > 1 {
                // Diffusers keeps only the last overflowing component; the others vanish from its map.
                sawDoubleOverflow = true
                let dropped = Set(cpuComponents.dropLast())
                XCTAssertEqual(ours.entries.filter { !dropped.contains($0.prefix) }.map(\.prefix), expected.map(\.0), label)
                XCTAssertEqual(dictionary(ours).filter { !dropped.contains($0.key) }, dictionary(expected), label)
            } else {
                XCTAssertEqual(ours.keys, expected.map(\.0), label)   // Diffusers' order is deterministic here
                XCTAssertEqual(ours.entries.map(\.target), expected.map(\.1), label)
            }
        }
        XCTAssertTrue(sawDoubleOverflow)
    }

    /// `convert_file_size_to_int` on every string of the fixture, and `get_max_memory`'s
    /// ordering and errors.
    func testMemorySizesAndMaxMemoryEqualAccelerate() throws {
        let fixture = try readJSON(deviceMapFixtures + "/memory-cases.json")
        for entry in try fixture.member("sizes").array() {
            let input = try entry.member("input")
            let budget: MemoryBudget = try input.intValue.map { .bytes($0) } ?? .text(input.string())
            if let bytes = entry["bytes"]?.intValue {
                XCTAssertEqual(try budget.resolved(), bytes, "\(budget)")
            } else {
                let expected = try entry.member("error").string()
                XCTAssertThrowsError(try budget.resolved(), "\(budget)") { error in
                    XCTAssertEqual(String(describing: error), expected)
                }
            }
        }
        let machine = MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 0)
        for entry in try fixture.member("max_memory").array() {
            let user = try budgets(entry.member("input"))
            if let result = entry["result"] {
                XCTAssertEqual(try getMaxMemory(user, inventory: machine), try maxMemory(result))
            } else {
                let expected = try entry.member("error").string()
                XCTAssertThrowsError(try getMaxMemory(user, inventory: machine)) { error in
                    // Accelerate's wording, with "integers(for GPU/XPU)" become "integers (for accel devices)".
                    if expected.hasPrefix("Device ") {
                        let key = String(expected.dropFirst(7).prefix { $0 != " " })
                        XCTAssertEqual(error as? OffloadError, .unrecognizedMemoryKey(key))
                        XCTAssertTrue(String(describing: error).hasPrefix("Device \(key) is not recognized, available devices are integers"))
                    } else {
                        XCTAssertEqual(String(describing: error), expected)
                    }
                }
            }
        }
    }
}
