/// The eight bytes every PNG file starts with.
let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// One chunk of a PNG file: its four-letter type and where its data lies in the file.
struct PNGChunk {
    let type: String
    let data: Range<Int>
    /// Critical chunks (type starting with an upper-case letter) must be understood.
    var isCritical: Bool { type.utf8.first.map { $0 & 0x20 == 0 } ?? false }
}

/// Colour types of the IHDR chunk.
enum PNGColorType: UInt8 {
    case gray = 0, rgb = 2, palette = 3, grayAlpha = 4, rgba = 6

    /// Samples per pixel.
    var channels: Int {
        switch self {
        case .gray, .palette: return 1
        case .grayAlpha: return 2
        case .rgb: return 3
        case .rgba: return 4
        }
    }

    /// Bit depths the PNG specification allows for this colour type.
    var allowedBitDepths: [Int] {
        switch self {
        case .gray: return [1, 2, 4, 8, 16]
        case .palette: return [1, 2, 4, 8]
        case .rgb, .grayAlpha, .rgba: return [8, 16]
        }
    }

    var name: String {
        switch self {
        case .gray: return "grayscale"
        case .rgb: return "RGB"
        case .palette: return "palette"
        case .grayAlpha: return "grayscale+alpha"
        case .rgba: return "RGBA"
        }
    }
}

/// The fields of the IHDR chunk, validated.
struct PNGHeader {
    let width: Int
    let height: Int
    let bitDepth: Int
    let colorType: PNGColorType
    let interlaced: Bool

    var bitsPerPixel: Int { bitDepth * colorType.channels }
    /// Bytes between a byte and the one it is predicted from ("bpp" in the filters), at least 1.
    var filterStride: Int { max(1, bitsPerPixel / 8) }

    /// Bytes in a row of `pixels` pixels, without the filter-type byte.
    func rowBytes(pixels: Int) -> Int { (pixels * bitsPerPixel + 7) / 8 }

    /// Parses and validates IHDR's 13 bytes, then checks the dimensions against `limits`.
    init(_ bytes: ArraySlice<UInt8>, source: String, limits: PNGDecoder.Limits) throws {
        guard bytes.count == 13 else {
            throw ImageError.malformed(source: source, detail: "the IHDR chunk holds \(bytes.count) bytes instead of 13")
        }
        let b = Array(bytes)
        let width = Int(readUInt32(b, at: 0)), height = Int(readUInt32(b, at: 4))
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageError.malformed(source: source, detail: "the image size \(width)×\(height) is invalid")
        }
        guard let colorType = PNGColorType(rawValue: b[9]) else {
            throw ImageError.malformed(source: source, detail: "colour type \(b[9]) does not exist")
        }
        let bitDepth = Int(b[8])
        guard colorType.allowedBitDepths.contains(bitDepth) else {
            throw ImageError.malformed(
                source: source,
                detail: "bit depth \(bitDepth) is not allowed for \(colorType.name) images "
                    + "(allowed: \(colorType.allowedBitDepths.map(String.init).joined(separator: ", ")))")
        }
        guard b[10] == 0 else {
            throw ImageError.unsupported(source: source, detail: "compression method \(b[10]) (only 0, deflate, exists)")
        }
        guard b[11] == 0 else {
            throw ImageError.unsupported(source: source, detail: "filter method \(b[11]) (only 0 exists)")
        }
        guard b[12] <= 1 else {
            throw ImageError.unsupported(source: source, detail: "interlace method \(b[12]) (only 0, none, and 1, Adam7, exist)")
        }
        guard width <= limits.maxWidth, height <= limits.maxHeight else {
            throw ImageError.tooLarge(
                source: source,
                detail: "\(width)×\(height) pixels exceeds the limit of \(limits.maxWidth)×\(limits.maxHeight)")
        }
        guard width * height <= limits.maxPixels else {
            throw ImageError.tooLarge(
                source: source, detail: "\(width)×\(height) is \(width * height) pixels, more than the limit of \(limits.maxPixels)")
        }
        self.width = width
        self.height = height
        self.bitDepth = bitDepth
        self.colorType = colorType
        self.interlaced = b[12] == 1
    }
}

/// Big-endian 32-bit value at `offset` (the caller checks the bounds).
func readUInt32<C: RandomAccessCollection>(_ bytes: C, at offset: Int) -> UInt32 where C.Element == UInt8, C.Index == Int {
    let i = bytes.startIndex + offset
    return UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
}

/// Appends `value` big-endian.
func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
    bytes.append(UInt8(truncatingIfNeeded: value >> 24))
    bytes.append(UInt8(truncatingIfNeeded: value >> 16))
    bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    bytes.append(UInt8(truncatingIfNeeded: value))
}

/// Splits a PNG file into its chunks up to and including IEND, checking the signature, the
/// chunk framing and every CRC. Bytes after IEND are ignored.
func readPNGChunks(_ bytes: [UInt8], source: String) throws -> [PNGChunk] {
    guard bytes.count >= pngSignature.count, bytes.prefix(pngSignature.count).elementsEqual(pngSignature) else {
        throw ImageError.notPNG(source: source)
    }
    var chunks: [PNGChunk] = []
    var offset = pngSignature.count
    while true {
        let remaining = bytes.count - offset
        guard remaining >= 8 else {
            let after = chunks.last.map { "after chunk \($0.type)" } ?? "after the signature"
            throw ImageError.truncated(
                source: source, detail: "the file ends \(after) (at byte \(bytes.count)) without an IEND chunk")
        }
        let length = Int(readUInt32(bytes, at: offset))
        let typeBytes = bytes[(offset + 4)..<(offset + 8)]
        guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw ImageError.malformed(
                source: source,
                detail: "the chunk at byte \(offset) has type bytes \(typeBytes.map { String($0) }.joined(separator: " ")), "
                    + "which are not four letters")
        }
        let type = String(decoding: typeBytes, as: UTF8.self)
        guard length <= Int(Int32.max) else {
            throw ImageError.malformed(source: source, detail: "chunk \(type) at byte \(offset) declares \(length) bytes, more than PNG allows")
        }
        guard remaining - 12 >= length else {
            throw ImageError.truncated(
                source: source,
                detail: "chunk \(type) at byte \(offset) declares \(length) bytes of data, "
                    + "but the file ends \(max(0, remaining - 8)) bytes later")
        }
        let data = (offset + 8)..<(offset + 8 + length)
        let stored = readUInt32(bytes, at: data.upperBound)
        let computed = bytes.withUnsafeBytes { all in
            Zlib.crc32(UnsafeRawBufferPointer(rebasing: all[(offset + 4)..<data.upperBound]))
        }
        guard stored == computed else {
            throw ImageError.badCRC(source: source, chunk: type, stored: stored, computed: computed)
        }
        chunks.append(PNGChunk(type: type, data: data))
        offset = data.upperBound + 4
        if type == "IEND" { return chunks }
    }
}
