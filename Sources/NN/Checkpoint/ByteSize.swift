/// Size strings for `max_shard_size`, parsed exactly as huggingface_hub's
/// `parse_size_to_int`: the last two characters, upper-cased, must be TB, GB, MB or KB
/// (decimal: KB = 1000 bytes), the rest is a Python float, and the result is truncated to
/// an integer. As a command-line stand-in for passing an `int`, a string of digits alone
/// is a number of bytes.
public enum ByteSize {
    static let units: [String: Double] = ["TB": 1e12, "GB": 1e9, "MB": 1e6, "KB": 1e3]

    /// Bytes for `text` (`"5GB"` → 5_000_000_000, `"0.5 MB"` → 500_000, `"1024"` → 1024).
    /// Throws `CheckpointError.invalidSize` with huggingface_hub's messages.
    public static func parse(_ text: String) throws -> Int {
        let size = text.trimmingPythonWhitespace()
        if !size.isEmpty, size.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            guard let bytes = Int(size) else { throw CheckpointError.invalidSize(message: "Size '\(text)' is too large.") }
            return bytes
        }
        let unit = String(size.suffix(2)).uppercased()
        guard let multiplier = units[unit] else {
            throw CheckpointError.invalidSize(
                message: "Unit '\(unit)' not supported. Supported units are TB, GB, MB, KB. Got '\(size)'.")
        }
        let number = String(size.dropLast(2)).trimmingPythonWhitespace()
        guard let value = pythonFloat(number) else {
            throw CheckpointError.invalidSize(
                message: "Could not parse the size value from '\(size)': could not convert string to float: '\(number)'")
        }
        let product = value * multiplier
        if product.isNaN { throw CheckpointError.invalidSize(message: "cannot convert float NaN to integer (from '\(size)')") }
        if product.isInfinite {
            throw CheckpointError.invalidSize(message: "cannot convert float infinity to integer (from '\(size)')")
        }
        guard abs(product) < 9.2e18 else { throw CheckpointError.invalidSize(message: "Size '\(size)' is too large.") }
        return Int(product.rounded(.towardZero))
    }

    /// Python's `float(str)` grammar: sign, digits with single underscores between them,
    /// optional fraction and exponent, or inf/infinity/nan (any case). No hex.
    static func pythonFloat(_ s: String) -> Double? {
        var chars = Array(s.lowercased())
        var sign = 1.0
        if let first = chars.first, first == "+" || first == "-" {
            if first == "-" { sign = -1 }
            chars.removeFirst()
        }
        let word = String(chars)
        if word == "inf" || word == "infinity" { return sign * .infinity }
        if word == "nan" { return .nan }
        // Underscores are allowed only between two digits.
        var cleaned: [Character] = []
        for (i, c) in chars.enumerated() {
            if c == "_" {
                guard i > 0, i + 1 < chars.count, chars[i - 1].isASCIIDigit, chars[i + 1].isASCIIDigit else { return nil }
                continue
            }
            cleaned.append(c)
        }
        var i = 0
        func digits() -> Int {
            let start = i
            while i < cleaned.count, cleaned[i].isASCIIDigit { i += 1 }
            return i - start
        }
        var mantissaDigits = digits()
        if i < cleaned.count, cleaned[i] == "." { i += 1; mantissaDigits += digits() }
        guard mantissaDigits > 0 else { return nil }
        if i < cleaned.count, cleaned[i] == "e" {
            i += 1
            if i < cleaned.count, cleaned[i] == "+" || cleaned[i] == "-" { i += 1 }
            guard digits() > 0 else { return nil }
        }
        guard i == cleaned.count, let value = Double(String(cleaned)) else { return nil }
        return sign * value
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    /// Python's `str.strip()` (Unicode whitespace).
    func trimmingPythonWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let end = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[start...end])
    }
}
