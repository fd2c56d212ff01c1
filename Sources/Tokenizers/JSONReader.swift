import Foundation

/// A parsed JSON value, as the tokenizer's configuration files use them.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer literal that fits in `Int` (no fraction, no exponent).
    case integer(Int)
    /// Any other number (fractions, exponents, integers too large for `Int`).
    case number(Double)
    case string(String)
    case array([JSONValue])
    /// Members in file order; a repeated key appears twice (readers keep the last, as Python does).
    case object([(key: String, value: JSONValue)])

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The value of the last member named `key`, if this is an object that has one.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    /// A short name of the value's kind, for error messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A strict JSON (RFC 8259) reader over UTF-8 bytes that knows the line it is on, so that
/// errors can name it. Its primitives are public to the module so that `vocab.json` can be
/// read member by member without building a tree of 49 408 values.
struct JSONReader {
    /// Why a document was rejected, and on which line (1-based).
    struct Failure: Error, Equatable {
        let line: Int
        let reason: String
    }

    private let bytes: [UInt8]
    private var position = 0
    /// The 1-based line of `position`.
    private(set) var line = 1
    /// Containers currently open; bounded so that a hostile file cannot exhaust the stack.
    private var depth = 0
    private static let maximumDepth = 256

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // A UTF-8 byte order mark is skipped (Python's json.load rejects one; editors add it
        // and it carries no meaning).
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
    }

    /// Parses one complete document: a value and nothing but whitespace after it.
    static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        let value = try reader.readValue()
        try reader.expectEnd()
        return value
    }

    private func fail(_ reason: String) -> Failure { Failure(line: line, reason: reason) }

    private var describedByte: String {
        guard position < bytes.count else { return "the end of the file" }
        let byte = bytes[position]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return String(format: "byte 0x%02X", byte)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x0A: line += 1; position += 1
            case 0x20, 0x09, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Skips whitespace, then consumes `byte` if it is next. Returns whether it did.
    mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
        guard consume(byte) else { throw fail("expected \(what), found \(describedByte)") }
    }

    mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        guard position == bytes.count else { throw fail("unexpected \(describedByte) after the value") }
    }

    mutating func readValue() throws(Failure) -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw fail("expected a value, found the end of the file") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try readObject()
        case UInt8(ascii: "["): return try readArray()
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try readLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try readLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try readLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try readNumber()
        default: throw fail("expected a value, found \(describedByte)")
        }
    }

    private mutating func readLiteral(_ word: String) throws(Failure) {
        let expected = Array(word.utf8)
        guard bytes.count - position >= expected.count,
              bytes[position..<position + expected.count].elementsEqual(expected) else {
            throw fail("expected a value, found \(describedByte)")
        }
        position += expected.count
    }

    private mutating func enter() throws(Failure) {
        depth += 1
        if depth > Self.maximumDepth { throw fail("nested more than \(Self.maximumDepth) levels deep") }
    }

    private mutating func readObject() throws(Failure) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        try enter()
        defer { depth -= 1 }
        try expect(UInt8(ascii: "{"), "'{'")
        if consume(UInt8(ascii: "}")) { return .object(members) }
        repeat {
            let key = try readKey()
            members.append((key, try readValue()))
        } while try continueContainer(closing: UInt8(ascii: "}"))
        return .object(members)
    }

    private mutating func readArray() throws(Failure) -> JSONValue {
        var elements: [JSONValue] = []
        try enter()
        defer { depth -= 1 }
        try expect(UInt8(ascii: "["), "'['")
        if consume(UInt8(ascii: "]")) { return .array(elements) }
        repeat {
            elements.append(try readValue())
        } while try continueContainer(closing: UInt8(ascii: "]"))
        return .array(elements)
    }

    /// Reads a member's key and the colon after it.
    mutating func readKey() throws(Failure) -> String {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
            throw fail("expected a string key, found \(describedByte)")
        }
        let key = try readString()
        try expect(UInt8(ascii: ":"), "':'")
        return key
    }

    /// After an element: true at a comma (another element follows), false at `closing`.
    mutating func continueContainer(closing: UInt8) throws(Failure) -> Bool {
        if consume(UInt8(ascii: ",")) { return true }
        if consume(closing) { return false }
        throw fail("expected ',' or '\(Character(Unicode.Scalar(closing)))', found \(describedByte)")
    }

    /// Reads a string literal starting at its opening quote.
    mutating func readString() throws(Failure) -> String {
        position += 1  // the opening quote
        let start = position
        // Fast path: no escapes, so the string is a slice of the input.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                guard let text = validUTF8String(bytes[start..<position]) else {
                    throw fail("the string is not valid UTF-8")
                }
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail(byte == 0x0A ? "unterminated string" : "control character in a string") }
            position += 1
        }
        var decoded = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = validUTF8String(decoded[...]) else {
                    throw fail("the string is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                position += 1
                try readEscape(into: &decoded)
            case 0..<0x20:
                throw fail(byte == 0x0A ? "unterminated string" : "control character in a string")
            default:
                decoded.append(byte)
                position += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func readEscape(into decoded: inout [UInt8]) throws(Failure) {
        guard position < bytes.count else { throw fail("unterminated string") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(byte)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var value = try readHex4()
            if (0xD800..<0xDC00).contains(value), bytes[position...].starts(with: Array("\\u".utf8)) {
                let save = position
                position += 2
                let low = try readHex4()
                if (0xDC00..<0xE000).contains(low) {
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    position = save
                }
            }
            // A lone surrogate cannot be stored in a Swift string; Python would keep it and
            // fail later when encoding. U+FFFD stands in for it.
            let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
            decoded.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            position -= 1
            throw fail("invalid escape \\\(describedByte)")
        }
    }

    private mutating func readHex4() throws(Failure) -> UInt32 {
        guard bytes.count - position >= 4 else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func readNumber() throws(Failure) -> JSONValue {
        let start = position
        var isInteger = true
        func digits(_ reader: inout JSONReader) -> Int {
            let from = reader.position
            while reader.position < reader.bytes.count,
                  (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(reader.bytes[reader.position]) {
                reader.position += 1
            }
            return reader.position - from
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerDigits = digits(&self)
        guard integerDigits > 0 else { throw fail("invalid number") }
        if integerDigits > 1 && bytes[position - integerDigits] == UInt8(ascii: "0") {
            throw fail("invalid number (leading zero)")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let value = Int(text) { return .integer(value) }
        guard let value = Double(text) else { throw fail("invalid number") }
        return .number(value)
    }
}

/// The string of `bytes` if they are valid UTF-8 (decoding is lossless exactly then).
func validUTF8String(_ bytes: ArraySlice<UInt8>) -> String? {
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil
}
