import Foundation
import Models
import NN
import Offload
import Tensor
import XCTest

/// The package root, found from this file's path (fixtures are not SwiftPM resources).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }  // DeviceMapFixtures.swift, OffloadTests, Tests
    return url.path
}()

/// Tests/Fixtures/device-maps, written by tools/reference/make_device_map_fixtures.py from
/// Accelerate 1.15.0 and Diffusers 0.42.1.
let deviceMapFixtures = packageRoot + "/Tests/Fixtures/device-maps"
let tinySD = packageRoot + "/Tests/Fixtures/tiny-sd"

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func readJSON(_ path: String) throws -> JSONValue {
    guard let data = FileManager.default.contents(atPath: path) else { throw FixtureError("cannot read \(path)") }
    return try JSONParser.parse([UInt8](data))
}

extension JSONValue {
    func member(_ key: String) throws -> JSONValue {
        guard let value = self[key] else { throw FixtureError("missing '\(key)'") }
        return value
    }

    func array() throws -> [JSONValue] {
        guard let value = arrayValue else { throw FixtureError("expected an array, found \(typeName)") }
        return value
    }

    func string() throws -> String {
        guard let value = stringValue else { throw FixtureError("expected a string, found \(typeName)") }
        return value
    }

    func int() throws -> Int {
        guard let value = intValue else { throw FixtureError("expected an integer, found \(typeName)") }
        return value
    }
}

/// A model as PyTorch built it on the meta device (trees/NAME.json): classes, own tensors,
/// children in registration order — parameter-less modules (SiLU, Dropout, Timesteps) included.
func pythonTree(_ name: String) throws -> ModuleTree {
    func spec(_ json: JSONValue) throws -> ModuleTree.Spec {
        func tensors(_ key: String) throws -> [ModuleTree.TensorInfo] {
            try json.member(key).array().map { entry in
                let parts = try entry.array()
                guard parts.count == 3, let dtype = DType(rawValue: try parts[2].string()) else {
                    throw FixtureError("bad tensor entry in \(name)")
                }
                return ModuleTree.TensorInfo(name: try parts[0].string(), elementCount: try parts[1].int(), dtype: dtype)
            }
        }
        let children = try json.member("children").array().map { entry -> ModuleTree.Spec.Child in
            let parts = try entry.array()
            return ModuleTree.Spec.Child(name: try parts[0].string(), spec: try spec(parts[1]))
        }
        let noSplit = try json["no_split"]?.array().map { try $0.string() } ?? []
        return ModuleTree.Spec(className: try json.member("class").string(), parameters: try tensors("parameters"),
                               buffers: try tensors("buffers"), children: children, noSplitModuleClasses: noSplit)
    }
    return ModuleTree(try spec(readJSON(deviceMapFixtures + "/trees/\(name).json")))
}

/// The Swift tiny-sd models (configs only; no weights are needed to plan).
func swiftModel(_ name: String) throws -> Module {
    let config = try ModelConfig(path: tinySD + "/\(name)/config.json")
    switch name {
    case "unet": return UNet2DConditionModel(try UNet2DConditionConfig(config))
    case "vae": return AutoencoderKL(try AutoencoderKLConfig(config))
    case "text_encoder": return CLIPTextModel(try CLIPTextConfig(config))
    default: throw FixtureError("no model \(name)")
    }
}

/// A device-map value as the fixtures write it: an integer or "cpu"/"disk".
func target(_ json: JSONValue) throws -> DeviceTarget {
    if let index = json.intValue { return .accel(index) }
    guard let name = json.stringValue, let target = DeviceTarget(parsing: name) else {
        throw FixtureError("bad device \(json)")
    }
    return target
}

/// `[[key, value], ...]` → pairs in order.
func mapPairs(_ json: JSONValue) throws -> [(String, DeviceTarget)] {
    try json.array().map { entry in
        let parts = try entry.array()
        return (try parts[0].string(), try target(parts[1]))
    }
}

/// `{"0": "1MB", "cpu": 5}` → the Swift API's budgets.
func budgets(_ json: JSONValue) throws -> [String: MemoryBudget]? {
    if json.isNull { return nil }
    guard let members = json.objectMembers else { throw FixtureError("bad max_memory") }
    var result: [String: MemoryBudget] = [:]
    for (key, value) in members {
        if let bytes = value.intValue { result[key] = .bytes(bytes) } else { result[key] = .text(try value.string()) }
    }
    return result
}

/// `[[key, bytes], ...]` (a fixture's inventory or budgets) → a MaxMemory.
func maxMemory(_ json: JSONValue) throws -> MaxMemory {
    MaxMemory(try json.array().map { entry in
        let parts = try entry.array()
        return (try target(.string(try parts[0].string())), try parts[1].int())
    })
}

/// A fixture inventory (`[[key, bytes]]` or null) as a MemoryInventory; without one, a
/// machine with no accelerator (the cases with budgets never consult it).
func inventory(_ json: JSONValue) throws -> MemoryInventory {
    if json.isNull { return MemoryInventory(acceleratorFreeBytes: [], cpuAvailableBytes: 1 << 40) }
    let memory = try maxMemory(json)
    return MemoryInventory(acceleratorFreeBytes: memory.entries.compactMap { entry in
        entry.device.accelIndex.map { (index: $0, bytes: entry.bytes) }
    }, cpuAvailableBytes: memory[.cpu] ?? 0)
}

/// A map as an unordered dictionary, for comparing with Accelerate (whose cleaned key order
/// depends on Python's set order).
func dictionary(_ pairs: [(String, DeviceTarget)]) -> [String: DeviceTarget] {
    Dictionary(pairs, uniquingKeysWith: { _, last in last })
}

func dictionary(_ map: DeviceMap) -> [String: DeviceTarget] {
    dictionary(map.entries.map { ($0.prefix, $0.target) })
}

/// The message of an error, for checking what it names.
func message(_ body: () throws -> Void) -> String? {
    do { try body() } catch { return String(describing: error) }
    return nil
}
