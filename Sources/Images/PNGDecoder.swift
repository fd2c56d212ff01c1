import Files

/// Reads PNG files into 8-bit RGB `Image`s.
///
/// Supported: every colour type (grayscale, grayscale+alpha, RGB, RGBA, palette) at every bit
/// depth the specification allows (1, 2, 4, 8, 16; 16-bit samples keep their high byte, and
/// 1/2/4-bit grayscale is scaled to 0…255), non-interlaced and Adam7-interlaced, the five
/// filter types, image data split over any number of IDAT chunks, and transparency from tRNS.
/// Every chunk's CRC is checked. Ancillary chunks (gAMA, iCCP, tEXt, …) are skipped: no colour
/// management, like `PIL.Image.convert("RGB")`.
///
/// Alpha is dropped by default, which is what Diffusers' `load_image` does
/// (`.convert("RGB")`); `.compositeOverWhite` blends each pixel over white instead. Like
/// `load_image` (`exif_transpose`), an EXIF orientation in an eXIf chunk is applied.
public struct PNGDecoder: Sendable {
    /// What happens to transparency (an alpha channel or a tRNS chunk).
    public enum AlphaHandling: Sendable, Equatable {
        /// Keep the colour samples and ignore alpha, as `PIL.Image.convert("RGB")` does.
        case drop
        /// Blend over white: `(c·a + 255·(255 − a)) / 255`, rounded.
        case compositeOverWhite
    }

    /// Bounds checked before anything is allocated, so hostile headers cannot exhaust memory.
    public struct Limits: Sendable, Equatable {
        public var maxWidth: Int
        public var maxHeight: Int
        /// Largest `width * height`.
        public var maxPixels: Int
        /// Largest file `decode(contentsOfFile:)` reads.
        public var maxFileBytes: Int

        /// Defaults: 32768 pixels a side, 2^26 (about 67 million) pixels, 1 GiB files.
        public init(maxWidth: Int = 32_768, maxHeight: Int = 32_768, maxPixels: Int = 1 << 26,
                    maxFileBytes: Int = 1 << 30) {
            self.maxWidth = maxWidth
            self.maxHeight = maxHeight
            self.maxPixels = maxPixels
            self.maxFileBytes = maxFileBytes
        }
    }

    public var alpha: AlphaHandling
    public var limits: Limits
    /// Turn the image upright according to an EXIF orientation (eXIf chunk), as Diffusers'
    /// `load_image` does through `PIL.ImageOps.exif_transpose`.
    public var appliesOrientation: Bool

    public init(alpha: AlphaHandling = .drop, limits: Limits = Limits(), appliesOrientation: Bool = true) {
        self.alpha = alpha
        self.limits = limits
        self.appliesOrientation = appliesOrientation
    }

    /// Decodes the PNG file at `path`.
    ///
    /// - Throws: `ImageError` naming `path` for a missing or unreadable file, one that is not a
    ///   PNG, or any malformed, truncated, corrupt, unsupported or oversized content.
    public func decode(contentsOfFile path: String) throws -> Image {
        try decode(InputFile.read(path, maxBytes: limits.maxFileBytes), source: path)
    }

    /// Decodes PNG bytes held in memory; `source` names them in errors.
    public func decode(_ bytes: [UInt8], source: String = "PNG data") throws -> Image {
        let chunks = try readPNGChunks(bytes, source: source)
        guard let first = chunks.first, first.type == "IHDR" else {
            throw ImageError.malformed(
                source: source, detail: "the first chunk is \(chunks.first?.type ?? "missing"), not IHDR")
        }
        let header = try PNGHeader(bytes[first.data], source: source, limits: limits)
        let parts = try collectParts(chunks.dropFirst(), bytes: bytes, header: header, source: source)
        let converter = try PNGPixelConverter(header: header, palette: parts.palette,
                                              transparency: parts.transparency, alpha: alpha, source: source)
        let passes = PNGPass.passes(for: header)

        // Exact size of the filtered image data, from the header (bounded by `limits`).
        let expected = passes.reduce(0) { $0 + $1.rows * (1 + header.rowBytes(pixels: $1.columns)) }
        var raw = try bytes.withUnsafeBytes { file in
            try Zlib.inflate(pieces: parts.idat.map { UnsafeRawBufferPointer(rebasing: file[$0]) },
                             limit: expected, source: source)
        }
        guard raw.count == expected else {
            throw ImageError.truncated(
                source: source, detail: "the image data holds \(raw.count) bytes once decompressed, but a "
                    + "\(header.width)×\(header.height) \(header.colorType.name) image at \(header.bitDepth) bits needs \(expected)")
        }

        var pixels = [UInt8](repeating: 0, count: header.width * header.height * 3)
        try raw.withUnsafeMutableBufferPointer { rawBuffer in
            try pixels.withUnsafeMutableBufferPointer { out in
                guard let rawBase = rawBuffer.baseAddress, let outBase = out.baseAddress else { return }
                var offset = 0
                for pass in passes {
                    let rowBytes = header.rowBytes(pixels: pass.columns)
                    for row in 0..<pass.rows {
                        let line = rawBase + offset
                        let previous = row == 0 ? nil : UnsafePointer(line - (rowBytes + 1) + 1)
                        try unfilter(line, rowBytes: rowBytes, previous: previous, stride: header.filterStride,
                                     source: source, row: row)
                        let y = pass.y0 + row * pass.dy
                        try converter.convert(row: UnsafePointer(line + 1), columns: pass.columns,
                                              into: outBase + (y * header.width + pass.x0) * 3, step: pass.dx * 3)
                        offset += rowBytes + 1
                    }
                }
            }
        }
        let image = Image(uncheckedWidth: header.width, height: header.height, pixels: pixels)
        if appliesOrientation, let exif = parts.exif, let orientation = ImageOrientation(exif: bytes[exif]) {
            return image.applying(orientation)
        }
        return image
    }

    /// The chunks after IHDR that matter for decoding, checked for order and consistency.
    private struct Parts {
        var palette: [UInt8]?
        var transparency: [UInt8]?
        var exif: Range<Int>?
        var idat: [Range<Int>] = []
    }

    private func collectParts(_ chunks: ArraySlice<PNGChunk>, bytes: [UInt8], header: PNGHeader,
                              source: String) throws -> Parts {
        var parts = Parts()
        var idatEnded = false
        for chunk in chunks {
            if !parts.idat.isEmpty && chunk.type != "IDAT" { idatEnded = true }
            switch chunk.type {
            case "IHDR":
                throw ImageError.malformed(source: source, detail: "the file has a second IHDR chunk")
            case "PLTE":
                guard parts.palette == nil else { throw ImageError.malformed(source: source, detail: "the file has two PLTE chunks") }
                guard parts.idat.isEmpty else { throw ImageError.malformed(source: source, detail: "the PLTE chunk comes after the image data") }
                guard header.colorType != .gray, header.colorType != .grayAlpha else {
                    throw ImageError.malformed(source: source, detail: "a \(header.colorType.name) image must not have a PLTE chunk")
                }
                guard chunk.data.count % 3 == 0, (3...768).contains(chunk.data.count) else {
                    throw ImageError.malformed(
                        source: source, detail: "the PLTE chunk holds \(chunk.data.count) bytes, not 1 to 256 RGB entries")
                }
                parts.palette = Array(bytes[chunk.data])
            case "tRNS":
                guard parts.idat.isEmpty else { throw ImageError.malformed(source: source, detail: "the tRNS chunk comes after the image data") }
                let needed: Int? = header.colorType == .gray ? 2 : header.colorType == .rgb ? 6 : nil
                if let needed, chunk.data.count != needed {
                    throw ImageError.malformed(
                        source: source, detail: "the tRNS chunk of a \(header.colorType.name) image holds \(chunk.data.count) bytes, not \(needed)")
                }
                if header.colorType == .palette && parts.palette == nil {
                    throw ImageError.malformed(source: source, detail: "the tRNS chunk comes before the PLTE chunk")
                }
                parts.transparency = Array(bytes[chunk.data])
            case "IDAT":
                guard !idatEnded else {
                    throw ImageError.malformed(source: source, detail: "the IDAT chunks are not consecutive")
                }
                parts.idat.append(chunk.data)
            case "eXIf":
                parts.exif = parts.exif ?? chunk.data
            case "IEND":
                break
            default:
                if chunk.isCritical {
                    throw ImageError.unsupported(source: source, detail: "unknown critical chunk \(chunk.type)")
                }
            }
        }
        guard !parts.idat.isEmpty else {
            throw ImageError.malformed(source: source, detail: "the file has no IDAT chunk (no image data)")
        }
        if header.colorType == .palette && parts.palette == nil {
            throw ImageError.malformed(source: source, detail: "a palette image has no PLTE chunk")
        }
        return parts
    }

    /// Reverses the filter of one row in place. `line[0]` is the filter type, the row's bytes
    /// follow; `previous` is the previous row of the same pass, already unfiltered (nil: zeros).
    private func unfilter(_ line: UnsafeMutablePointer<UInt8>, rowBytes: Int, previous: UnsafePointer<UInt8>?,
                          stride bpp: Int, source: String, row: Int) throws {
        let filter = line[0]
        let x = line + 1
        switch filter {
        case 0:
            return
        case 1:   // Sub
            for i in Swift.stride(from: bpp, to: rowBytes, by: 1) { x[i] &+= x[i - bpp] }
        case 2:   // Up
            guard let up = previous else { return }
            for i in 0..<rowBytes { x[i] &+= up[i] }
        case 3:   // Average
            if let up = previous {
                for i in 0..<min(bpp, rowBytes) { x[i] &+= up[i] >> 1 }
                for i in Swift.stride(from: bpp, to: rowBytes, by: 1) {
                    x[i] &+= UInt8((Int(x[i - bpp]) + Int(up[i])) >> 1)
                }
            } else {
                for i in Swift.stride(from: bpp, to: rowBytes, by: 1) { x[i] &+= x[i - bpp] >> 1 }
            }
        case 4:   // Paeth
            if let up = previous {
                for i in 0..<min(bpp, rowBytes) { x[i] &+= up[i] }   // Paeth(0, b, 0) = b
                for i in Swift.stride(from: bpp, to: rowBytes, by: 1) {
                    x[i] &+= paeth(x[i - bpp], up[i], up[i - bpp])
                }
            } else {
                for i in Swift.stride(from: bpp, to: rowBytes, by: 1) { x[i] &+= x[i - bpp] }   // Paeth(a, 0, 0) = a
            }
        default:
            throw ImageError.malformed(source: source, detail: "row \(row) of the image data has filter type \(filter) (only 0 to 4 exist)")
        }
    }
}

/// The Paeth predictor of the PNG specification.
@inline(__always)
func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
    let p = Int(a) + Int(b) - Int(c)
    let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
    if pa <= pb && pa <= pc { return a }
    return pb <= pc ? b : c
}

/// One pass of the image data: the whole image, or one of Adam7's seven sub-images.
struct PNGPass {
    let x0: Int, y0: Int, dx: Int, dy: Int
    let columns: Int, rows: Int

    static func passes(for header: PNGHeader) -> [PNGPass] {
        guard header.interlaced else {
            return [PNGPass(x0: 0, y0: 0, dx: 1, dy: 1, columns: header.width, rows: header.height)]
        }
        let adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        // A pass without columns or rows has no bytes at all, not even filter bytes.
        return adam7.compactMap { x0, y0, dx, dy in
            guard header.width > x0, header.height > y0 else { return nil }
            return PNGPass(x0: x0, y0: y0, dx: dx, dy: dy,
                           columns: (header.width - x0 + dx - 1) / dx, rows: (header.height - y0 + dy - 1) / dy)
        }
    }
}
