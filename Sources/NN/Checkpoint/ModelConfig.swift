/// A model's `config.json`: the constructor arguments of the Diffusers class plus
/// `_class_name` and `_diffusers_version`. Other keys starting with `_` (`_name_or_path`,
/// `_use_default_values`, ...) are bookkeeping and ignored. Accessors throw
/// `CheckpointError` naming the file and key when a value is missing or of the wrong type.
public struct ModelConfig: Sendable {
    /// The file the config came from (for messages).
    public let path: String
    /// The argument entries in file order, `_` keys excluded.
    public let entries: [(key: String, value: JSONValue)]
    public let className: String?
    public let diffusersVersion: String?
    private let lookup: [String: JSONValue]

    /// Reads `path` (a `config.json`).
    public init(path: String) throws {
        try self.init(json: JSONFile.read(path), path: path)
    }

    /// Wraps an already parsed config object.
    public init(json: JSONValue, path: String) throws {
        guard let members = json.objectMembers else {
            throw CheckpointError.invalidConfig(path: path, reason: "the config is \(json.typeName), not a JSON object")
        }
        self.path = path
        func underscored(_ key: String) throws -> String? {
            guard let value = members.first(where: { $0.key == key })?.value, !value.isNull else { return nil }
            guard let s = value.stringValue else {
                throw CheckpointError.configKeyType(path: path, key: key, expected: "a string", found: value.typeName)
            }
            return s
        }
        className = try underscored("_class_name")
        diffusersVersion = try underscored("_diffusers_version")
        entries = members.filter { !$0.key.hasPrefix("_") }
        var lookup: [String: JSONValue] = [:]
        for (key, value) in entries { lookup[key] = value }
        self.lookup = lookup
    }

    /// The raw value of `key` (nil when absent).
    public subscript(key: String) -> JSONValue? { lookup[key] }

    public func contains(_ key: String) -> Bool { lookup[key] != nil }

    private func required(_ key: String) throws -> JSONValue {
        guard let value = lookup[key] else { throw CheckpointError.missingConfigKey(path: path, key: key) }
        return value
    }

    private func typeError(_ key: String, _ expected: String, _ value: JSONValue) -> CheckpointError {
        .configKeyType(path: path, key: key, expected: expected, found: value.typeName)
    }

    private func convert<T>(_ key: String, _ value: JSONValue, _ expected: String, _ f: (JSONValue) -> T?) throws -> T {
        guard let v = f(value) else { throw typeError(key, expected, value) }
        return v
    }

    private func array<T>(_ key: String, _ expected: String, _ f: (JSONValue) -> T?) throws -> [T] {
        let value = try required(key)
        guard let elements = value.arrayValue else { throw typeError(key, "an array of \(expected)", value) }
        return try elements.map { try convert(key, $0, "an array of \(expected)", f) }
    }

    /// Integer value; a missing or null key gives `defaultValue` when one is passed.
    public func int(_ key: String, default defaultValue: Int? = nil) throws -> Int {
        if let d = defaultValue, lookup[key] == nil || lookup[key] == .null { return d }
        return try convert(key, required(key), "an integer", \.intValue)
    }

    /// Number value (integers included).
    public func double(_ key: String, default defaultValue: Double? = nil) throws -> Double {
        if let d = defaultValue, lookup[key] == nil || lookup[key] == .null { return d }
        return try convert(key, required(key), "a number", \.doubleValue)
    }

    public func string(_ key: String, default defaultValue: String? = nil) throws -> String {
        if let d = defaultValue, lookup[key] == nil || lookup[key] == .null { return d }
        return try convert(key, required(key), "a string", \.stringValue)
    }

    public func bool(_ key: String, default defaultValue: Bool? = nil) throws -> Bool {
        if let d = defaultValue, lookup[key] == nil || lookup[key] == .null { return d }
        return try convert(key, required(key), "a boolean", \.boolValue)
    }

    /// nil when the key is absent or null; throws when present with another type.
    public func optionalInt(_ key: String) throws -> Int? {
        guard let value = lookup[key], !value.isNull else { return nil }
        return try convert(key, value, "an integer", \.intValue)
    }

    public func optionalString(_ key: String) throws -> String? {
        guard let value = lookup[key], !value.isNull else { return nil }
        return try convert(key, value, "a string", \.stringValue)
    }

    public func optionalDouble(_ key: String) throws -> Double? {
        guard let value = lookup[key], !value.isNull else { return nil }
        return try convert(key, value, "a number", \.doubleValue)
    }

    public func ints(_ key: String) throws -> [Int] { try array(key, "integers", \.intValue) }
    public func doubles(_ key: String) throws -> [Double] { try array(key, "numbers", \.doubleValue) }
    public func strings(_ key: String) throws -> [String] { try array(key, "strings", \.stringValue) }
    public func bools(_ key: String) throws -> [Bool] { try array(key, "booleans", \.boolValue) }
}
