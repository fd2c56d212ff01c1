import Files

/// Encodes images in the format each file name asks for (`ImageFormat(path:)`: `.png`,
/// `.jpg`/`.jpeg`, `.webp`) with text metadata, and writes them atomically.
///
/// Every file is encoded in memory first and then written under a temporary name in its
/// folder and renamed into place together (`OutputFiles`), whatever the format, so a
/// failure — an encoder error, a full disk — never leaves a partial file, and a batch is
/// renamed into place only when every image of it was written.
public struct ImageWriter: Sendable {
    public var png: PNGEncoder
    public var jpeg: JPEGEncoder
    public var webp: WebPEncoder

    public init(png: PNGEncoder = PNGEncoder(), jpeg: JPEGEncoder = JPEGEncoder(), webp: WebPEncoder = WebPEncoder()) {
        self.png = png
        self.jpeg = jpeg
        self.webp = webp
    }

    /// The bytes of `image` as a `format` file carrying `metadata` (see `ImageMetadata` for
    /// what each format keeps); `destination` names the file in errors.
    public func encode(_ image: Image, as format: ImageFormat, metadata: ImageMetadata? = nil,
                       destination: String? = nil) throws -> [UInt8] {
        switch format {
        case .png:
            return try png.encode(samples: image.pixels, width: image.width, height: image.height, channels: 3,
                                  destination: destination ?? "PNG data", metadata: metadata)
        case .jpeg:
            return try jpeg.encode(image, metadata: metadata, destination: destination ?? "JPEG data")
        case .webp:
            return try webp.encode(image, metadata: metadata, destination: destination ?? "WebP data")
        }
    }

    /// Writes `image` to `path` in the format its extension names.
    ///
    /// - Throws: `ImageError.unsupportedExtension` (before anything is written) for an
    ///   extension that names no format; the encoder's errors; `FileError` naming `path`
    ///   when the file cannot be written.
    public func write(_ image: Image, to path: String, metadata: ImageMetadata? = nil) throws {
        try write([image], to: path, metadata: [metadata])
    }

    /// Writes `images` to the files `Image.batchPaths(for: path, count:)` names (`path` itself
    /// for one image), all in the format of `path`'s extension, image `i` with `metadata[i]`
    /// (one entry for the whole batch also works), and returns the paths.
    ///
    /// - Throws: `ImageError.invalidArgument` for an empty batch or a metadata count that is
    ///   neither 1 nor the number of images; otherwise as `write(_:to:metadata:)`.
    @discardableResult
    public func write(_ images: [Image], to path: String, metadata: [ImageMetadata?]) throws -> [String] {
        guard !images.isEmpty else { throw ImageError.invalidArgument("no images to write to \(path)") }
        guard metadata.count == 1 || metadata.count == images.count else {
            throw ImageError.invalidArgument(
                "\(metadata.count) metadata values for \(images.count) images to write to \(path); give one, or one per image")
        }
        let format = try ImageFormat(path: path)
        let paths = Image.batchPaths(for: path, count: images.count)
        let outputs = OutputFiles()
        for path in paths { try outputs.claim(path, role: "image file") }
        for (index, destination) in paths.enumerated() {
            try outputs.stage(destination, bytes: try encode(images[index], as: format, metadata: metadata[metadata.count == 1 ? 0 : index],
                                                            destination: destination))
        }
        try outputs.commit()
        return paths
    }
}
