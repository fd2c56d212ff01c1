/// Turns unfiltered PNG rows of any colour type and bit depth into 8-bit RGB pixels.
struct PNGPixelConverter {
    private let header: PNGHeader
    private let compositing: Bool
    private let source: String
    /// For palette and 1/2/4/8-bit grayscale: the RGB triplet of each sample value, with
    /// transparency already applied, and how many entries are valid.
    private let table: [UInt8]
    private let tableCount: Int
    /// For 16-bit grayscale and RGB: the tRNS colour whose pixels are fully transparent.
    private let transparentKey: [UInt16]?

    init(header: PNGHeader, palette: [UInt8]?, transparency: [UInt8]?, alpha: PNGDecoder.AlphaHandling,
         source: String) throws {
        self.header = header
        self.compositing = alpha == .compositeOverWhite
        self.source = source
        // tRNS for grayscale and RGB: one 16-bit sample per channel.
        var key: [UInt16]?
        if let transparency, header.colorType == .gray || header.colorType == .rgb {
            key = Swift.stride(from: 0, to: transparency.count - 1, by: 2).map {
                UInt16(transparency[$0]) << 8 | UInt16(transparency[$0 + 1])
            }
        }
        self.transparentKey = key

        switch header.colorType {
        case .palette:
            let entries = (palette?.count ?? 0) / 3
            var table = [UInt8](repeating: 0, count: entries * 3)
            for i in 0..<entries {
                // tRNS entries beyond the palette are ignored; missing ones are opaque.
                let a = transparency.flatMap { i < $0.count ? $0[i] : nil } ?? 255
                for c in 0..<3 { table[i * 3 + c] = PNGPixelConverter.apply(palette?[i * 3 + c] ?? 0, alpha: a, compositing) }
            }
            self.table = table
            self.tableCount = entries
        case .gray where header.bitDepth <= 8:
            let levels = 1 << header.bitDepth
            var table = [UInt8](repeating: 0, count: levels * 3)
            for v in 0..<levels {
                let gray = UInt8(v * 255 / (levels - 1))
                let a: UInt8 = key?.first == UInt16(v) ? 0 : 255
                let shown = PNGPixelConverter.apply(gray, alpha: a, compositing)
                table[v * 3] = shown
                table[v * 3 + 1] = shown
                table[v * 3 + 2] = shown
            }
            self.table = table
            self.tableCount = levels
        default:
            self.table = []
            self.tableCount = 0
        }
    }

    /// `c` blended over white with opacity `alpha`, or `c` itself when not compositing.
    @inline(__always)
    private static func apply(_ c: UInt8, alpha: UInt8, _ compositing: Bool) -> UInt8 {
        guard compositing, alpha != 255 else { return c }
        let a = Int(alpha)
        return UInt8((Int(c) * a + 255 * (255 - a) + 127) / 255)
    }

    @inline(__always)
    private func put(_ out: UnsafeMutablePointer<UInt8>, _ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8) {
        out[0] = PNGPixelConverter.apply(r, alpha: a, compositing)
        out[1] = PNGPixelConverter.apply(g, alpha: a, compositing)
        out[2] = PNGPixelConverter.apply(b, alpha: a, compositing)
    }

    /// Converts `columns` pixels of an unfiltered row, writing the first at `out` and each
    /// next one `step` bytes further.
    ///
    /// - Throws: `ImageError.malformed` for a palette index beyond the palette.
    func convert(row: UnsafePointer<UInt8>, columns: Int, into out: UnsafeMutablePointer<UInt8>, step: Int) throws {
        var o = out
        let wide = header.bitDepth == 16
        switch header.colorType {
        case .palette:
            try convertIndexed(row: row, columns: columns, into: out, step: step)
        case .gray where !wide:
            try convertIndexed(row: row, columns: columns, into: out, step: step)
        case .gray:
            for i in 0..<columns {
                let hi = row[i * 2], lo = row[i * 2 + 1]
                let a: UInt8 = transparentKey?.first == (UInt16(hi) << 8 | UInt16(lo)) ? 0 : 255
                put(o, hi, hi, hi, a)
                o += step
            }
        case .grayAlpha:
            let size = wide ? 2 : 1
            for i in 0..<columns {
                let g = row[i * 2 * size], a = row[(i * 2 + 1) * size]
                put(o, g, g, g, a)
                o += step
            }
        case .rgb:
            let size = wide ? 2 : 1
            for i in 0..<columns {
                let p = row + i * 3 * size
                var a: UInt8 = 255
                if let key = transparentKey, key.count == 3 {
                    let matches = wide
                        ? (0..<3).allSatisfy { key[$0] == UInt16(p[$0 * 2]) << 8 | UInt16(p[$0 * 2 + 1]) }
                        : (0..<3).allSatisfy { key[$0] == UInt16(p[$0]) }
                    if matches { a = 0 }
                }
                put(o, p[0], p[size], p[2 * size], a)
                o += step
            }
        case .rgba:
            let size = wide ? 2 : 1
            for i in 0..<columns {
                let p = row + i * 4 * size
                put(o, p[0], p[size], p[2 * size], p[3 * size])
                o += step
            }
        }
    }

    /// Palette and 1/2/4/8-bit grayscale: look each sample up in `table`.
    private func convertIndexed(row: UnsafePointer<UInt8>, columns: Int, into out: UnsafeMutablePointer<UInt8>,
                                step: Int) throws {
        let bits = header.bitDepth
        let perByte = 8 / bits
        let mask = (1 << bits) - 1
        var o = out
        try table.withUnsafeBufferPointer { table in
            for i in 0..<columns {
                let index: Int
                if bits == 8 {
                    index = Int(row[i])
                } else {
                    let shift = 8 - bits * (i % perByte + 1)
                    index = Int(row[i / perByte] >> UInt8(shift)) & mask
                }
                guard index < tableCount else {
                    throw ImageError.malformed(
                        source: source, detail: "a pixel uses palette index \(index), but the palette has only \(tableCount) entries")
                }
                o[0] = table[index * 3]
                o[1] = table[index * 3 + 1]
                o[2] = table[index * 3 + 2]
                o += step
            }
        }
    }
}
