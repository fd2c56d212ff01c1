/// Standard base64 (RFC 4648 alphabet, `=` padding required), decoded as strictly as the
/// tokenizers library's `BASE64_STANDARD` engine: no whitespace, no missing or extra padding, and
/// no set bits after the last encoded byte.
enum Base64 {
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = Int8(index) }
        return table
    }()

    /// The decoded bytes, or nil when `text` is not canonical padded base64.
    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            let isLast = index + 4 == input.count
            let padding = isLast ? (input[index + 3] == 0x3D ? (input[index + 2] == 0x3D ? 2 : 1) : 0) : 0
            var group: UInt32 = 0
            for offset in 0..<4 - padding {
                let value = values[Int(input[index + offset])]
                guard value >= 0 else { return nil }
                group |= UInt32(value) << (18 - 6 * UInt32(offset))
            }
            switch padding {
            case 0:
                output += [UInt8(group >> 16), UInt8(group >> 8 & 0xFF), UInt8(group & 0xFF)]
            case 1:
                guard group & 0xFF == 0 else { return nil }
                output += [UInt8(group >> 16), UInt8(group >> 8 & 0xFF)]
            default:
                guard group & 0xFFFF == 0 else { return nil }
                output.append(UInt8(group >> 16))
            }
            index += 4
        }
        return output
    }
}
