import Foundation
import JSON
import Models
import NN
import Offload
import Tensor
import XCTest

/// `device_map` with `max_memory` on the FLUX transformer against Accelerate 1.15 / Diffusers
/// 0.42.1 for the same sizes (Fixtures/device-maps/flux-transformer-cases.json, made by
/// tools/reference/make_flux_device_map_fixtures.py on FLUX.1-dev's real config in bf16): the
/// module sizes, the largest layer and every map equal theirs.
final class FluxDeviceMapTests: XCTestCase {
    func transformer(_ config: String) throws -> FluxTransformer2DModel {
        var c = FluxTransformer2DConfig()
        c.guidanceEmbeds = true
        if config.contains("num_layers 4") { (c.numLayers, c.numSingleLayers) = (4, 8) }
        return FluxTransformer2DModel(c)
    }

    func testMapsEqualAccelerates() throws {
        var checked = 0
        for (number, fixture) in try readJSON(deviceMapFixtures + "/flux-transformer-cases.json").array().enumerated() {
            let config = try fixture.member("config").string()
            let strategy = try XCTUnwrap(DeviceMapStrategy(rawValue: try fixture.member("strategy").string()))
            let label = "case \(number): \(config), \(strategy), \(fixture["max_memory"].map { "\($0)" } ?? "")"
            let model = try transformer(config)
            let tree = ModuleTree(model)
            let sizes = tree.moduleSizes(dtype: .bf16)
            for entry in try fixture.member("module_sizes").array() {
                let parts = try entry.array()
                let path = try parts[0].string()
                XCTAssertEqual(sizes[path], try parts[1].int(), "\(label): size of '\(path)'")
            }
            XCTAssertEqual(Set(model.noSplitModuleClasses), Set(try fixture.member("no_split").array().map { try $0.string() }))
            let request = { try determineDeviceMap(for: tree, request: .strategy(strategy), maxMemory: budgets(fixture.member("max_memory")),
                                                   dtype: .bf16, inventory: inventory(fixture.member("inventory"))) }
            if try fixture.member("verified").string() == "error" {
                // Accelerate crashes on a "disk" budget under "auto" (torch.device("disk")); here it is a
                // clear error or a map, never a crash: the budget is read as "sequential" reads it.
                if let map = try? request() { XCTAssertFalse(map.entries.isEmpty, label) }
                continue
            }
            let map = try request()
            let expected = DeviceMap(try mapPairs(fixture.member("device_map")))
            XCTAssertEqual(dictionary(map), dictionary(expected), label)
            checked += 1
        }
        XCTAssertEqual(checked, 16)
    }
}
