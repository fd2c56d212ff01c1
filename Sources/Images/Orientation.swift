/// The EXIF orientation of an image (TIFF tag 274), as `PIL.ImageOps.exif_transpose` applies
/// it — which Diffusers' `load_image` does before converting to RGB.
public enum ImageOrientation: Int, Sendable, CaseIterable {
    case up = 1, mirrored = 2, down = 3, downMirrored = 4
    case leftMirrored = 5, right = 6, rightMirrored = 7, left = 8

    /// The orientation stored in EXIF data (a TIFF structure, optionally after `Exif\0\0`),
    /// or nil when there is none or the data is malformed (never a trap).
    init?(exif data: ArraySlice<UInt8>) {
        var tiff = Array(data)
        if tiff.starts(with: Array("Exif".utf8) + [0, 0]) { tiff.removeFirst(6) }
        guard tiff.count >= 8 else { return nil }
        let little: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func read(_ offset: Int, _ size: Int) -> Int? {
            guard offset >= 0, size <= 8, offset <= tiff.count - size else { return nil }
            var value = 0
            for i in 0..<size {
                let byte = Int(tiff[offset + (little ? size - 1 - i : i)])
                value = value << 8 | byte
            }
            return value
        }
        guard read(2, 2) == 42, let ifd = read(4, 4), let count = read(ifd, 2) else { return nil }
        for entry in 0..<count {
            let at = ifd + 2 + entry * 12
            guard let tag = read(at, 2) else { return nil }
            if tag == 0x0112, read(at + 2, 2) == 3, let value = read(at + 8, 2) {
                self.init(rawValue: value)
                return
            }
        }
        return nil
    }
}

extension Image {
    /// This image transformed so that it displays upright, given how it is stored
    /// (`PIL.ImageOps.exif_transpose`).
    public func applying(_ orientation: ImageOrientation) -> Image {
        // For each output pixel (x, y) of an output w×h, the source pixel it copies.
        let transposed: Bool
        let source: (Int, Int, Int, Int) -> (Int, Int)   // (x, y, outWidth, outHeight) → (sx, sy)
        switch orientation {
        case .up: return self
        case .mirrored: transposed = false; source = { x, y, w, _ in (w - 1 - x, y) }
        case .down: transposed = false; source = { x, y, w, h in (w - 1 - x, h - 1 - y) }
        case .downMirrored: transposed = false; source = { x, y, _, h in (x, h - 1 - y) }
        case .leftMirrored: transposed = true; source = { x, y, _, _ in (y, x) }
        case .right: transposed = true; source = { x, y, w, _ in (y, w - 1 - x) }
        case .rightMirrored: transposed = true; source = { x, y, w, h in (h - 1 - y, w - 1 - x) }
        case .left: transposed = true; source = { x, y, _, h in (h - 1 - y, x) }
        }
        let (outWidth, outHeight) = transposed ? (height, width) : (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let (sx, sy) = source(x, y, outWidth, outHeight)
                let from = (sy * width + sx) * 3, to = (y * outWidth + x) * 3
                out[to] = pixels[from]
                out[to + 1] = pixels[from + 1]
                out[to + 2] = pixels[from + 2]
            }
        }
        return Image(uncheckedWidth: outWidth, height: outHeight, pixels: out)
    }
}
