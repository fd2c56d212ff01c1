/// Writes 8-bit RGB (or RGBA) PNG files, non-interlaced, zlib-compressed.
///
/// Each row gets the filter that minimises the sum of its bytes taken as signed values — the
/// heuristic the PNG specification suggests and libpng uses — which suits photographs and
/// generated images.
public struct PNGEncoder: Sendable {
    /// zlib level, 0 (store) to 9 (smallest); 6 is zlib's default.
    public var compressionLevel: Int
    /// Most bytes of compressed data per IDAT chunk.
    public var maxIDATSize: Int

    public init(compressionLevel: Int = 6, maxIDATSize: Int = 1 << 20) {
        self.compressionLevel = compressionLevel
        self.maxIDATSize = maxIDATSize
    }

    /// The PNG bytes of `image` (colour type RGB, 8 bits).
    public func encode(_ image: Image) throws -> [UInt8] {
        try encode(samples: image.pixels, width: image.width, height: image.height, channels: 3, destination: "PNG data")
    }

    /// The PNG bytes of `image` with each entry of `metadata` as a text chunk (`tEXt`, or
    /// `iTXt` for text beyond Latin-1; see `ImageMetadata`), placed before the image data.
    ///
    /// - Throws: `ImageError.metadata` naming `destination` for a keyword PNG does not allow or
    ///   a text containing NUL.
    public func encode(_ image: Image, metadata: ImageMetadata, destination: String = "PNG data") throws -> [UInt8] {
        try encode(samples: image.pixels, width: image.width, height: image.height, channels: 3, destination: destination,
                   metadata: metadata)
    }

    /// The PNG bytes of an RGBA image: `rgba` holds `width * height * 4` bytes, R, G, B, A per
    /// pixel, row by row from the top (colour type RGBA, 8 bits, alpha not premultiplied).
    public func encodeRGBA(_ rgba: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !overflow, pixels <= Int.max / 4, rgba.count == pixels * 4 else {
            throw ImageError.invalidArgument("a \(width)×\(height) RGBA image needs width × height × 4 bytes, but \(rgba.count) were given")
        }
        return try encode(samples: rgba, width: width, height: height, channels: 4, destination: "PNG data")
    }

    func encode(samples: [UInt8], width: Int, height: Int, channels: Int, destination: String,
                metadata: ImageMetadata? = nil) throws -> [UInt8] {
        guard width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageError.invalidArgument("PNG cannot hold a \(width)×\(height) image (at most 2^31 − 1 a side)")
        }
        // Checked before the slow part, so a bad keyword fails at once.
        let textChunks = try (metadata?.entries ?? []).map { try pngTextChunk($0, destination: destination) }
        let filtered = filterRows(samples, width: width, height: height, channels: channels)
        let compressed = try filtered.withUnsafeBytes {
            try Zlib.deflate($0, level: compressionLevel, destination: destination)
        }

        var header = [UInt8]()
        appendUInt32(UInt32(width), to: &header)
        appendUInt32(UInt32(height), to: &header)
        header += [8, channels == 4 ? PNGColorType.rgba.rawValue : PNGColorType.rgb.rawValue, 0, 0, 0]

        var file = pngSignature
        let textBytes = textChunks.reduce(0) { $0 + $1.data.count + 12 }
        file.reserveCapacity(compressed.count + 64 + textBytes + compressed.count / max(1, maxIDATSize) * 12)
        appendChunk("IHDR", header[...], to: &file)
        // Before IDAT, as Pillow writes them, so that readers that stop at the image data see them.
        for chunk in textChunks { appendChunk(chunk.type, chunk.data[...], to: &file) }
        let pieceSize = max(1, min(maxIDATSize, Int(Int32.max)))
        var start = 0
        repeat {
            let end = min(start + pieceSize, compressed.count)
            appendChunk("IDAT", compressed[start..<end], to: &file)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [][...], to: &file)
        return file
    }

    /// Each row prefixed with its filter type and filtered.
    private func filterRows(_ samples: [UInt8], width: Int, height: Int, channels: Int) -> [UInt8] {
        let rowBytes = width * channels
        var out = [UInt8](repeating: 0, count: height * (rowBytes + 1))
        var candidate = [UInt8](repeating: 0, count: rowBytes)
        var best = [UInt8](repeating: 0, count: rowBytes)
        let zeros = [UInt8](repeating: 0, count: rowBytes)
        samples.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { return }
            for y in 0..<height {
                let row = base + y * rowBytes
                let up = y == 0 ? nil : base + (y - 1) * rowBytes
                var bestFilter: UInt8 = 0
                var bestCost = Int.max
                for filter in UInt8(0)...4 {
                    let cost = zeros.withUnsafeBufferPointer { zero in
                        candidate.withUnsafeMutableBufferPointer { c in
                            apply(filter: filter, row: row, up: up ?? zero.baseAddress, count: rowBytes, bpp: channels, into: c)
                        }
                    }
                    if cost < bestCost {
                        bestCost = cost
                        bestFilter = filter
                        swap(&best, &candidate)
                    }
                }
                let start = y * (rowBytes + 1)
                out[start] = bestFilter
                out.replaceSubrange((start + 1)..<(start + 1 + rowBytes), with: best)
            }
        }
        return out
    }

    /// Filters one row with `filter` into `out`; returns the sum of |byte as Int8|.
    private func apply(filter: UInt8, row: UnsafePointer<UInt8>, up: UnsafePointer<UInt8>?, count: Int, bpp: Int,
                       into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        guard let up, let o = out.baseAddress else { return Int.max }
        var cost = 0
        for i in 0..<count {
            let a = i >= bpp ? row[i - bpp] : 0
            let b = up[i]
            let c = i >= bpp ? up[i - bpp] : 0
            let predicted: UInt8
            switch filter {
            case 1: predicted = a
            case 2: predicted = b
            case 3: predicted = UInt8((Int(a) + Int(b)) >> 1)
            case 4: predicted = paeth(a, b, c)
            default: predicted = 0
            }
            let value = row[i] &- predicted
            o[i] = value
            cost += abs(Int(Int8(bitPattern: value)))
        }
        return cost
    }

    private func appendChunk(_ type: String, _ data: ArraySlice<UInt8>, to file: inout [UInt8]) {
        appendUInt32(UInt32(data.count), to: &file)
        let typeBytes = Array(type.utf8)
        file += typeBytes
        file += data
        let crc = data.withUnsafeBytes { Zlib.crc32($0, continuing: Zlib.crc32(typeBytes)) }
        appendUInt32(crc, to: &file)
    }
}
