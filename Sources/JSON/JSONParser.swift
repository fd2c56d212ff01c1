/// Why a JSON text was rejected. `offset` counts bytes from the start of the text.
public enum JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    case syntax(message: String, offset: Int)
    /// The same key appears twice in one object (`path` is the dotted path of the object,
    /// empty for the top level). Foundation's parser silently keeps one of the two.
    case duplicateKey(key: String, path: String)
    /// Nesting deeper than `JSONParser.maximumDepth` (the strict dialect; the lenient one
    /// reports its own limit as a `.syntax` error).
    case tooDeep(offset: Int)
    case invalidUTF8

    public var description: String {
        switch self {
        case let .syntax(message, offset): return "\(message) at byte \(offset)"
        case let .duplicateKey(key, path):
            return path.isEmpty ? "duplicate key '\(key)'" : "duplicate key '\(key)' in '\(path)'"
        case let .tooDeep(offset): return "nesting deeper than \(JSONParser.maximumDepth) levels at byte \(offset)"
        case .invalidUTF8: return "text is not valid UTF-8"
        }
    }
}

/// An RFC 8259 parser (no comments, no trailing commas, no leading zeros) that keeps key order
/// and number text. The text must be valid UTF-8.
public struct JSONParser {
    /// The reading rules and the wording of syntax errors.
    public enum Dialect: Sendable, Equatable {
        /// A repeated key (`JSONParseError.duplicateKey`) or an unpaired UTF-16 surrogate is an
        /// error, nesting is limited to `maximumDepth`, and syntax messages are terse (the
        /// error's description adds the byte offset). Safetensors headers, configs, indexes.
        case strict
        /// Tokenizer files: repeated keys are all kept (readers take the last), an unpaired
        /// surrogate becomes U+FFFD, a leading UTF-8 byte order mark is skipped, nesting is
        /// limited to `lenientMaximumDepth`, and each syntax message says what was found
        /// ("expected ':', found '}'"), to be shown with `line(at:in:)`.
        case lenient
    }

    /// Same limit as serde_json's: deeper nesting is an attack, not a checkpoint.
    public static let maximumDepth = 128
    /// The nesting limit of the lenient dialect.
    public static let lenientMaximumDepth = 256

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    private let allowNonFinite: Bool
    private let dialect: Dialect

    /// Parses one JSON value spanning the whole of `bytes` (surrounding whitespace allowed).
    /// - Parameter allowNonFinite: accept `NaN`, `Infinity`, `-Infinity` as Python's `json`
    ///   writes them (configs); safetensors headers are parsed strictly.
    public static func parse(_ bytes: [UInt8], allowNonFinite: Bool = false, dialect: Dialect = .strict) throws -> JSONValue {
        var parser = try JSONParser(bytes: bytes, allowNonFinite: allowNonFinite, dialect: dialect)
        let value = try parser.parseValue(path: "")
        try parser.expectEnd()
        return value
    }

    /// Parses `bytes` as `parse` does, except that a top-level object is not built: each of its
    /// members goes to `body` as it is read, with the byte offset just after its value (errors
    /// that `body` throws end the parse). Returns nil then, or the value of any other document.
    /// The top-level object does not count towards the nesting limit.
    public static func parseMembers(_ bytes: [UInt8], allowNonFinite: Bool = false, dialect: Dialect = .strict,
                                    _ body: (_ key: String, _ value: JSONValue, _ end: Int) throws -> Void) throws -> JSONValue? {
        var parser = try JSONParser(bytes: bytes, allowNonFinite: allowNonFinite, dialect: dialect)
        parser.skipWhitespace()
        guard parser.index < bytes.count, bytes[parser.index] == UInt8(ascii: "{") else {
            let value = try parser.parseValue(path: "")
            try parser.expectEnd()
            return value
        }
        parser.index += 1
        var seen = Set<String>()
        if !(try parser.closesEmpty(UInt8(ascii: "}"))) {
            repeat {
                let key = try parser.parseKey(path: "", seen: &seen)
                let value = try parser.parseValue(path: key)
                try body(key, value, parser.index)
            } while try parser.continueContainer(closing: UInt8(ascii: "}"), kind: "object")
        }
        try parser.expectEnd()
        return nil
    }

    /// The 1-based line that byte `offset` of `bytes` is on, for error messages.
    public static func line(at offset: Int, in bytes: [UInt8]) -> Int {
        var line = 1
        for byte in bytes[..<min(max(offset, 0), bytes.count)] where byte == 0x0A { line += 1 }
        return line
    }

    private init(bytes: [UInt8], allowNonFinite: Bool, dialect: Dialect) throws {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw JSONParseError.invalidUTF8 }
        self.bytes = bytes
        self.allowNonFinite = allowNonFinite
        self.dialect = dialect
        if dialect == .lenient, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    /// A syntax error at the current byte, worded for the dialect.
    private func error(_ strict: @autoclosure () -> String, lenient: @autoclosure () -> String) -> JSONParseError {
        .syntax(message: dialect == .strict ? strict() : lenient(), offset: index)
    }

    /// A syntax error worded the same in both dialects.
    private func error(_ message: String) -> JSONParseError { .syntax(message: message, offset: index) }

    /// The current byte as the lenient dialect's messages name it.
    private var found: String {
        guard index < bytes.count else { return "the end of the file" }
        let byte = bytes[index]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x" + (hex.count < 2 ? "0" + hex : hex)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func expectEnd() throws {
        skipWhitespace()
        guard index == bytes.count else {
            throw error("unexpected text after the JSON value", lenient: "unexpected \(found) after the value")
        }
    }

    private mutating func parseValue(path: String) throws -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of text", lenient: "expected a value, found \(found)") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(path: path)
        case UInt8(ascii: "["): return try parseArray(path: path)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "N") where allowNonFinite: try expectLiteral("NaN"); return .number("NaN")
        case UInt8(ascii: "I") where allowNonFinite: try expectLiteral("Infinity"); return .number("Infinity")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'",
                        lenient: "expected a value, found \(found)")
        }
    }

    private mutating func expectLiteral(_ literal: String) throws {
        let utf8 = Array(literal.utf8)
        guard index + utf8.count <= bytes.count, Array(bytes[index..<index + utf8.count]) == utf8 else {
            throw error("invalid literal (expected '\(literal)')", lenient: "expected a value, found \(found)")
        }
        index += utf8.count
    }

    private mutating func enter() throws {
        depth += 1
        switch dialect {
        case .strict:
            if depth > JSONParser.maximumDepth { throw JSONParseError.tooDeep(offset: index) }
        case .lenient:
            if depth > JSONParser.lenientMaximumDepth { throw error("nested more than \(JSONParser.lenientMaximumDepth) levels deep") }
        }
    }

    /// After an opening bracket: consumes `closing` if it comes next (an empty container).
    private mutating func closesEmpty(_ closing: UInt8) throws -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == closing else { return false }
        index += 1
        return true
    }

    /// A member's key and the colon after it; a repeated key is an error in the strict dialect.
    private mutating func parseKey(path: String, seen: inout Set<String>) throws -> String {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw error("expected a string key", lenient: "expected a string key, found \(found)")
        }
        let key = try parseString()
        if dialect == .strict, !seen.insert(key).inserted { throw JSONParseError.duplicateKey(key: key, path: path) }
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
            throw error("expected ':' after key '\(key)'", lenient: "expected ':', found \(found)")
        }
        index += 1
        return key
    }

    /// After an element: true at a comma (another element follows), false at `closing`.
    private mutating func continueContainer(closing: UInt8, kind: String) throws -> Bool {
        skipWhitespace()
        let close = Character(Unicode.Scalar(closing))
        guard index < bytes.count else {
            throw error("unterminated \(kind)", lenient: "expected ',' or '\(close)', found \(found)")
        }
        if bytes[index] == UInt8(ascii: ",") { index += 1; return true }
        if bytes[index] == closing { index += 1; return false }
        throw error("expected ',' or '\(close)' in \(kind)", lenient: "expected ',' or '\(close)', found \(found)")
    }

    private mutating func parseObject(path: String) throws -> JSONValue {
        try enter(); defer { depth -= 1 }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        if try closesEmpty(UInt8(ascii: "}")) { return .object([]) }
        repeat {
            let key = try parseKey(path: path, seen: &seen)
            members.append((key, try parseValue(path: path.isEmpty ? key : path + "." + key)))
        } while try continueContainer(closing: UInt8(ascii: "}"), kind: "object")
        return .object(members)
    }

    private mutating func parseArray(path: String) throws -> JSONValue {
        try enter(); defer { depth -= 1 }
        index += 1
        var elements: [JSONValue] = []
        if try closesEmpty(UInt8(ascii: "]")) { return .array([]) }
        repeat {
            elements.append(try parseValue(path: path))
        } while try continueContainer(closing: UInt8(ascii: "]"), kind: "array")
        return .array(elements)
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = index
        if bytes[index] == UInt8(ascii: "-") {
            index += 1
            if allowNonFinite, index < bytes.count, bytes[index] == UInt8(ascii: "I") {
                try expectLiteral("Infinity")
                return .number("-Infinity")
            }
        }
        func digits() -> Int {
            let s = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index - s
        }
        let intStart = index
        let intDigits = digits()
        guard intDigits > 0 else { throw error("invalid number") }
        if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") {
            throw error("number with a leading zero", lenient: "invalid number (leading zero)")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw error("invalid number: no digits after '.'", lenient: "invalid number") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw error("invalid number: no digits in exponent", lenient: "invalid number") }
        }
        return .number(String(decoding: bytes[start..<index], as: UTF8.self))
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private func controlCharacterError(_ byte: UInt8) -> JSONParseError {
        error("control character in string",
              lenient: byte == 0x0A ? "unterminated string" : "control character in a string")
    }

    private mutating func parseString() throws -> String {
        index += 1  // opening quote
        let start = index
        // Without escapes the string is a slice of the text (valid UTF-8, checked up front).
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: bytes[start..<index - 1], as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw controlCharacterError(c) }
            index += 1
        }
        var out = Array(bytes[start..<index])
        while true {
            guard index < bytes.count else { throw error("unterminated string") }
            let c = bytes[index]
            if c == UInt8(ascii: "\"") { index += 1; break }
            if c < 0x20 { throw controlCharacterError(c) }
            if c != UInt8(ascii: "\\") { out.append(c); index += 1; continue }
            index += 1
            try parseEscape(into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The escape after a backslash, appended to `out` as UTF-8.
    private mutating func parseEscape(into out: inout [UInt8]) throws {
        guard index < bytes.count else { throw error("unterminated escape", lenient: "unterminated string") }
        let e = bytes[index]
        index += 1
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            let scalar = try dialect == .strict ? strictUnicodeEscape() : lenientUnicodeEscape()
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            if dialect == .lenient { index -= 1 }  // the lenient dialect names the byte at fault
            throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'", lenient: "invalid escape \\\(found)")
        }
    }

    /// `\uXXXX` (after the `u`): a high surrogate must be followed by an escaped low one.
    private mutating func strictUnicodeEscape() throws -> Unicode.Scalar {
        var scalar = try hex4()
        if (0xD800..<0xDC00).contains(scalar) {
            guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw error("unpaired surrogate in \\u escape") }
            index += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00..<0xE000).contains(scalar) {
            throw error("unpaired surrogate in \\u escape")
        }
        guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
        return u
    }

    /// `\uXXXX` (after the `u`): a high surrogate pairs with an escaped low one that follows;
    /// otherwise the next escape is read on its own.
    private mutating func lenientUnicodeEscape() throws -> Unicode.Scalar {
        var scalar = try hex4()
        if (0xD800..<0xDC00).contains(scalar), bytes[index...].starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "u")]) {
            let save = index
            index += 2
            let low = try hex4()
            if (0xDC00..<0xE000).contains(low) {
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else {
                index = save
            }
        }
        // A lone surrogate cannot be stored in a Swift string (Python keeps it and fails later
        // when encoding); U+FFFD stands in for it.
        return Unicode.Scalar(scalar) ?? "\u{FFFD}"
    }
}
