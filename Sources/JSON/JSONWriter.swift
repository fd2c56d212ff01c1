/// Renders `JSONValue`s byte-for-byte as the two writers this project must match:
/// - `.compact`: serde_json's `to_string` (safetensors headers): no whitespace, non-ASCII
///   kept as UTF-8, control characters escaped.
/// - `.python(indent:)`: Python's `json.dumps(indent=n, sort_keys=True)` (index and config
///   files): `", "`/`": "` separators, keys sorted by code point, non-ASCII as `\uXXXX`.
public enum JSONStyle: Sendable, Equatable {
    case compact
    case python(indent: Int)
}

/// Renders `JSONValue`s as text in a `JSONStyle`.
public enum JSONWriter {
    /// The text of `value` in `style` (no trailing newline).
    public static func render(_ value: JSONValue, style: JSONStyle) -> String {
        var out = ""
        write(value, style: style, level: 0, into: &out)
        return out
    }

    private static func write(_ value: JSONValue, style: JSONStyle, level: Int, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text): out += text
        case .string(let s): writeString(s, asciiOnly: style != .compact, into: &out)
        case .array(let elements):
            writeContainer(open: "[", close: "]", count: elements.count, style: style, level: level, into: &out) { i, out in
                write(elements[i], style: style, level: level + 1, into: &out)
            }
        case .object(var members):
            if case .python = style {
                members.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
            }
            let separator = style == .compact ? ":" : ": "
            writeContainer(open: "{", close: "}", count: members.count, style: style, level: level, into: &out) { i, out in
                writeString(members[i].key, asciiOnly: style != .compact, into: &out)
                out += separator
                write(members[i].value, style: style, level: level + 1, into: &out)
            }
        }
    }

    private static func writeContainer(open: String, close: String, count: Int, style: JSONStyle, level: Int,
                                       into out: inout String, element: (Int, inout String) -> Void) {
        out += open
        guard count > 0 else { out += close; return }
        switch style {
        case .compact:
            for i in 0..<count {
                if i > 0 { out += "," }
                element(i, &out)
            }
        case .python(let indent):
            let inner = String(repeating: " ", count: indent * (level + 1))
            for i in 0..<count {
                out += i > 0 ? ",\n" + inner : "\n" + inner
                element(i, &out)
            }
            out += "\n" + String(repeating: " ", count: indent * level)
        }
        out += close
    }

    /// `text` as a JSON string literal, escaped as `render` escapes strings.
    public static func quoted(_ text: String, asciiOnly: Bool = false) -> String {
        var out = ""
        writeString(text, asciiOnly: asciiOnly, into: &out)
        return out
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func writeString(_ s: String, asciiOnly: Bool, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                let v = scalar.value
                if v < 0x20 || (asciiOnly && v == 0x7F) {
                    out += "\\u" + hex4(v)
                } else if asciiOnly && v > 0x7F {
                    if v > 0xFFFF {
                        let u = v - 0x10000
                        out += "\\u" + hex4(0xD800 + (u >> 10)) + "\\u" + hex4(0xDC00 + (u & 0x3FF))
                    } else {
                        out += "\\u" + hex4(v)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
