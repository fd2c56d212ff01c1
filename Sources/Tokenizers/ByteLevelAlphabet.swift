/// GPT-2/CLIP's reversible mapping of the 256 byte values to printable Unicode characters,
/// so that BPE symbols never contain whitespace or control characters.
///
/// Bytes that are printable Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to the character with
/// the same code point; the other 68 bytes, in increasing order, map to U+0100, U+0101, ….
enum ByteLevelAlphabet {
    /// The character of each byte value.
    static let scalars: [Unicode.Scalar] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        // Every value is below U+0144, a valid scalar.
        return table.map { Unicode.Scalar($0) ?? "\u{FFFD}" }
    }()

    /// The character of each byte value, as a one-character string.
    static let strings: [String] = scalars.map { String(Character($0)) }

    /// The byte of a mapped character, or nil for a character outside the alphabet.
    static func byte(of scalar: Unicode.Scalar) -> UInt8? {
        let value = scalar.value
        guard value < 0x144 else { return nil }
        if value < 256 { return isPrintable(UInt8(value)) ? UInt8(value) : nil }
        return unprintable[Int(value - 256)]
    }

    private static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The unprintable bytes in increasing order: U+0100 + i stands for `unprintable[i]`.
    private static let unprintable: [UInt8] = (0...255).map(UInt8.init).filter { !isPrintable($0) }
}
