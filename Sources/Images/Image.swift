/// An 8-bit RGB image: `height` rows of `width` pixels, each three bytes (red, green, blue),
/// stored row-major without padding. This is what Diffusers works with after
/// `PIL.Image.convert("RGB")`.
public struct Image: Equatable, Hashable, Sendable {
    /// Width in pixels (at least 1).
    public let width: Int
    /// Height in pixels (at least 1).
    public let height: Int
    /// `width * height * 3` bytes: R, G, B of each pixel, row by row from the top.
    public private(set) var pixels: [UInt8]

    /// An image over existing RGB bytes.
    ///
    /// - Throws: `ImageError.invalidArgument` when a dimension is not positive or `pixels`
    ///   does not hold exactly `width * height * 3` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        let count = try Image.byteCount(width: width, height: height)
        guard pixels.count == count else {
            throw ImageError.invalidArgument(
                "a \(width)×\(height) RGB image needs \(count) bytes, but \(pixels.count) were given")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image of one colour.
    public init(width: Int, height: Int, red: UInt8, green: UInt8, blue: UInt8) throws {
        let count = try Image.byteCount(width: width, height: height)
        var pixels = [UInt8](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 3) {
            pixels[i] = red
            pixels[i + 1] = green
            pixels[i + 2] = blue
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Internal initialiser for buffers whose size the caller has already checked.
    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The colour at column `x`, row `y` (both from 0), or nil outside the image.
    public subscript(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8)? {
        guard x >= 0, x < width, y >= 0, y < height else { return nil }
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets the colour at column `x`, row `y`.
    ///
    /// - Throws: `ImageError.invalidArgument` when the position is outside the image.
    public mutating func setPixel(x: Int, y: Int, red: UInt8, green: UInt8, blue: UInt8) throws {
        guard x >= 0, x < width, y >= 0, y < height else {
            throw ImageError.invalidArgument("pixel (\(x), \(y)) is outside the \(width)×\(height) image")
        }
        let i = (y * width + x) * 3
        pixels[i] = red
        pixels[i + 1] = green
        pixels[i + 2] = blue
    }

    /// `width * height * 3`, checked for positive dimensions and overflow.
    static func byteCount(width: Int, height: Int) throws -> Int {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument("image dimensions must be positive, got \(width)×\(height)")
        }
        let (pixelCount, overflow1) = width.multipliedReportingOverflow(by: height)
        let (bytes, overflow2) = pixelCount.multipliedReportingOverflow(by: 3)
        guard !overflow1, !overflow2 else {
            throw ImageError.invalidArgument("image dimensions \(width)×\(height) are too large")
        }
        return bytes
    }
}
