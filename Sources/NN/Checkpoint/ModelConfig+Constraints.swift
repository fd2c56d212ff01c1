/// Constrained accessors: every model config reads its sizes, counts, epsilons and factors
/// through these, so that no value reaches a division, an allocation or a module tree before it
/// is known to be usable. A violation is `CheckpointError.configValue` naming the file, the key
/// and the value as the file states it; a relation between keys that does not hold is
/// `CheckpointError.invalidConfig` naming the keys (`require`).
///
/// Defaults are the library's own constants and are not checked again.
extension ModelConfig {
    /// Bounds that no real model reaches, so that a value past one is a broken config rather
    /// than a model to build. They are far above the largest published checkpoints and are only
    /// there so that nothing is allocated or built from an unbounded number.
    public enum Limits {
        /// Channels, widths, head counts, vocabulary and position counts.
        public static let size = 1 << 20
        /// Repeats of a layer: layers per block, transformer layers, hidden layers.
        public static let repeats = 1 << 10
        /// Resolution levels (each halves the image; 2^(levels−1) must stay a usable factor).
        public static let levels = 16
        /// Tensors a config may imply (SD's UNet has under 700, SDXL's under 1,700).
        public static let tensors = 1 << 18
        /// Parameters a config may imply (2^40: about 90 times the largest diffusion models).
        public static let elements = 1 << 40
    }

    /// Whether `key` holds a value (absent and null both take the default).
    private func stated(_ key: String) -> Bool {
        guard let value = self[key] else { return false }
        return !value.isNull
    }

    private func valueError(_ key: String, _ value: String, _ expected: String) -> CheckpointError {
        .configValue(path: path, key: key, value: value, expected: expected)
    }

    /// `json` as an Int in `range`. An integer literal too large for Int is out of range, not
    /// "not an integer" (transformers writes int(1e30) for "no limit").
    private func checkedInt(_ key: String, _ json: JSONValue, in range: ClosedRange<Int>) throws -> Int {
        guard case .number(let text) = json else {
            throw CheckpointError.configKeyType(path: path, key: key, expected: "an integer", found: json.typeName)
        }
        guard let value = json.intValue else {
            if text.allSatisfy({ $0.isNumber || $0 == "-" }) { throw valueError(key, text, range.expectation) }
            throw CheckpointError.configKeyType(path: path, key: key, expected: "an integer", found: "the number \(text)")
        }
        guard range.contains(value) else { throw valueError(key, text, range.expectation) }
        return value
    }

    /// An integer in `range`; a missing or null key gives `defaultValue` when one is passed.
    public func int(_ key: String, in range: ClosedRange<Int>, default defaultValue: Int? = nil) throws -> Int {
        if let defaultValue, !stated(key) { return defaultValue }
        guard let json = self[key] else { throw CheckpointError.missingConfigKey(path: path, key: key) }
        return try checkedInt(key, json, in: range)
    }

    /// A width, channel or head count: 1...`Limits.size`.
    public func size(_ key: String, default defaultValue: Int? = nil) throws -> Int {
        try int(key, in: 1...Limits.size, default: defaultValue)
    }

    /// How many times a layer repeats: 1...`Limits.repeats`.
    public func repeatCount(_ key: String, default defaultValue: Int? = nil) throws -> Int {
        try int(key, in: 1...Limits.repeats, default: defaultValue)
    }

    /// A list of integers, each in `range`, with a length in `count`; entries are named
    /// `key[i]` in errors.
    public func ints(_ key: String, in range: ClosedRange<Int>, count: ClosedRange<Int>) throws -> [Int] {
        guard let json = self[key] else { throw CheckpointError.missingConfigKey(path: path, key: key) }
        guard let elements = json.arrayValue else {
            throw CheckpointError.configKeyType(path: path, key: key, expected: "an array of integers", found: json.typeName)
        }
        guard count.contains(elements.count) else {
            throw valueError(key, "a list of \(elements.count)", "\(count.lowerBound)...\(count.upperBound) entries")
        }
        return try elements.enumerated().map { try checkedInt("\(key)[\($0.offset)]", $0.element, in: range) }
    }

    /// One integer per block: a single integer (repeated) or a list of exactly `count`, each
    /// in `range`, as Diffusers accepts for head counts and layer counts.
    public func perBlock(_ key: String, in range: ClosedRange<Int>, count: Int, default defaultValue: Int) throws -> [Int] {
        guard stated(key), let json = self[key] else { return Array(repeating: defaultValue, count: count) }
        if json.arrayValue == nil { return Array(repeating: try checkedInt(key, json, in: range), count: count) }
        return try ints(key, in: range, count: count...count)
    }

    /// A number meeting `rule`; a missing or null key gives `defaultValue` when one is passed.
    public func double(_ key: String, _ rule: NumberRule, default defaultValue: Double? = nil) throws -> Double {
        if let defaultValue, !stated(key) { return defaultValue }
        guard let value = try optionalDouble(key, rule) else { throw CheckpointError.missingConfigKey(path: path, key: key) }
        return value
    }

    /// A number meeting `rule`, or nil when the key is absent or null.
    public func optionalDouble(_ key: String, _ rule: NumberRule) throws -> Double? {
        try checkedNumber(key, rule, asFloat: false)
    }

    /// A number meeting `rule` once narrowed to float32, the precision the models use it in;
    /// a missing or null key gives `defaultValue` when one is passed.
    public func float(_ key: String, _ rule: NumberRule, default defaultValue: Float? = nil) throws -> Float {
        if let defaultValue, !stated(key) { return defaultValue }
        guard let value = try optionalFloat(key, rule) else { throw CheckpointError.missingConfigKey(path: path, key: key) }
        return value
    }

    /// `float(_:_:default:)`, or nil when the key is absent or null.
    public func optionalFloat(_ key: String, _ rule: NumberRule) throws -> Float? {
        try checkedNumber(key, rule, asFloat: true).map { Float($0) }
    }

    private func checkedNumber(_ key: String, _ rule: NumberRule, asFloat: Bool) throws -> Double? {
        guard stated(key), let json = self[key] else { return nil }
        guard case .number(let text) = json, let value = json.doubleValue else {
            throw CheckpointError.configKeyType(path: path, key: key, expected: "a number", found: json.typeName)
        }
        guard asFloat ? rule.admitsAsFloat(value) : rule.admits(value) else {
            let narrowed = asFloat && rule.admits(value) ? " (\(Float(value)) in float32)" : ""
            throw valueError(key, text + narrowed, rule.expectation)
        }
        return value
    }

    /// Throws `CheckpointError.invalidConfig` with `reason` (which names the keys) unless
    /// `condition` holds: relations between values, checked before anything divides by them.
    public func require(_ condition: Bool, _ reason: @autoclosure () -> String) throws {
        guard condition else { throw CheckpointError.invalidConfig(path: path, reason: reason()) }
    }
}
