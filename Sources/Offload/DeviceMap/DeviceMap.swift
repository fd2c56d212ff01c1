import Foundation
import NN

/// Module path prefixes → devices, in order (Accelerate's and Diffusers' `device_map`).
///
/// A parameter goes where its longest matching prefix says (`down_blocks.0` covers
/// `down_blocks.0.resnets.0.conv1.weight`); the key `""` covers the whole model. A pipeline's
/// map uses the same type with component names as keys (`{"unet": 1, "vae": 1}`).
public struct DeviceMap: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        /// A module or parameter path ("" for the whole model), or a pipeline component name.
        public var prefix: String
        public var target: DeviceTarget
        public init(prefix: String, target: DeviceTarget) {
            self.prefix = prefix
            self.target = target
        }
    }

    /// The entries in order; keys are unique.
    public private(set) var entries: [Entry]

    /// A map of `pairs`, in their order. A key given twice keeps its first place and its last
    /// device, as a Python dictionary does.
    public init(_ pairs: [(String, DeviceTarget)] = []) {
        entries = []
        for (prefix, target) in pairs { self[prefix] = target }
    }

    /// `{"": target}`: the whole model on one device.
    public static func wholeModel(_ target: DeviceTarget) -> DeviceMap { DeviceMap([("", target)]) }

    /// The device of exactly `prefix`, or nil. Setting keeps an existing key's place and
    /// appends a new one; setting nil removes the key.
    public subscript(prefix: String) -> DeviceTarget? {
        get { entries.first { $0.prefix == prefix }?.target }
        set {
            if let index = entries.firstIndex(where: { $0.prefix == prefix }) {
                if let newValue { entries[index].target = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(Entry(prefix: prefix, target: newValue))
            }
        }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    public var keys: [String] { entries.map(\.prefix) }

    /// The devices used, each once, in Accelerate's order (accelerators, `cpu`, `disk`).
    public var targets: [DeviceTarget] { Set(entries.map(\.target)).sorted() }

    /// Whether any weights go to the disk tier (then the loader needs an offload folder).
    public var usesDisk: Bool { entries.contains { $0.target == .disk } }

    /// Diffusers' test for a device-mapped pipeline: a map with more than one entry.
    public var isMultiEntry: Bool { entries.count > 1 }

    /// The device of the parameter (or module) at `path`: its longest key that is `path`
    /// itself or a dotted prefix of it, else `""`, else nil (Diffusers' `_determine_param_device`).
    public func target(for path: String) -> DeviceTarget? {
        var name = Substring(path)
        while !name.isEmpty {
            if let target = self[String(name)] { return target }
            guard let dot = name.lastIndex(of: ".") else { break }
            name = name[..<dot]
        }
        return self[""]
    }

    /// `target(for:)`, or Diffusers' "{p} doesn't have any device set." error.
    public func requireTarget(for path: String) throws -> DeviceTarget {
        guard let target = target(for: path) else { throw OffloadError.parameterWithoutDevice(path) }
        return target
    }

    /// The map as Diffusers prints `hf_device_map`, as JSON:
    /// `{"conv_in": 0, "down_blocks.0": 0, "mid_block": "cpu", "up_blocks": "disk"}`.
    public var hfDeviceMap: String {
        "{" + entries.map { "\(JSONWriter.quoted($0.prefix)): \($0.target.hfValue)" }.joined(separator: ", ") + "}"
    }

    public var description: String { hfDeviceMap }

    // MARK: Reading a user's map

    /// Reads a JSON object of paths to devices: `{"down_blocks": 0, "mid_block": "cpu",
    /// "up_blocks": "disk", "conv_out": "accel:1"}`. Values are non-negative integers
    /// (accelerator indices), `"accel:N"`, `"cpu"` or `"disk"`; anything else throws an error
    /// naming the key and the value. Key order is kept.
    public init(json bytes: [UInt8]) throws {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw OffloadError.invalidDeviceMap("the device map is not valid JSON: \(error)")
        }
        guard let members = value.objectMembers else {
            throw OffloadError.invalidDeviceMap(
                "a device map must be a JSON object of module paths to devices, not \(value.typeName)")
        }
        var pairs: [(String, DeviceTarget)] = []
        for (key, member) in members {
            let context = "for '\(key)' in the device map"
            switch member {
            case .number(let text):
                guard let index = member.intValue, index >= 0 else { throw OffloadError.unknownDevice(text, context: context) }
                pairs.append((key, .accel(index)))
            case .string(let name):
                // A bare number in quotes is not an index (Accelerate reads ints, not digit strings).
                guard !name.isEmpty, !name.allSatisfy(\.isASCIIDigit), let target = DeviceTarget(parsing: name) else {
                    throw OffloadError.unknownDevice(name, context: context)
                }
                pairs.append((key, target))
            default:
                throw OffloadError.unknownDevice(member.typeName, context: context)
            }
        }
        self.init(pairs)
    }

    /// `init(json:)` from text.
    public init(json text: String) throws { try self.init(json: Array(text.utf8)) }

    /// `init(json:)` from a file; errors name the file.
    public init(contentsOfFile path: String) throws {
        let data = try InputFile.read(path, maxBytes: 64 << 20)
        do { try self.init(json: [UInt8](data)) } catch let error as OffloadError {
            throw OffloadError.invalidDeviceMap("\(path): \(error)")
        }
    }

    // MARK: Checking a map against a model

    /// Checks that this map fits `tree`: every key names a module, parameter or buffer
    /// (Accelerate only warns about unknown keys; here they are an error naming the key, since
    /// a typo would otherwise leave weights unplaced or placed by a broader entry), and every
    /// parameter and buffer has a device (Accelerate's `check_device_map` error, listing them).
    public func validate(against tree: ModuleTree) throws {
        if let unknown = keys.first(where: { !tree.contains(path: $0) }) {
            throw OffloadError.unknownModule(unknown, model: tree.root.className)
        }
        if self[""] != nil { return }
        let uncovered = (tree.parameterPaths + tree.bufferPaths).filter { target(for: $0) == nil }
        if !uncovered.isEmpty { throw OffloadError.uncoveredParameters(uncovered) }
    }

    /// `validate(against:)` for a module.
    public func validate(against model: Module) throws { try validate(against: ModuleTree(model)) }

    /// Every parameter of `tree` with its device, in parameter order (validate first).
    public func placement(of tree: ModuleTree) throws -> [(path: String, target: DeviceTarget)] {
        try tree.parameterPaths.map { ($0, try requireTarget(for: $0)) }
    }
}

