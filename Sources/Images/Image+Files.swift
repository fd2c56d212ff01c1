extension Image {
    /// Reads the PNG file at `path` (alpha dropped, as Diffusers' `load_image` does).
    ///
    /// - Throws: `ImageError` naming `path`: `.notPNG` for any other kind of file, `.io` when it
    ///   cannot be read, and the decoder's errors for a broken PNG.
    public init(contentsOfFile path: String, decoder: PNGDecoder = PNGDecoder()) throws {
        self = try decoder.decode(contentsOfFile: path)
    }

    /// The PNG encoding of this image (8-bit RGB).
    public func pngData(encoder: PNGEncoder = PNGEncoder()) throws -> [UInt8] {
        try encoder.encode(self)
    }

    /// Writes this image to `path` in the format its extension names — `.png`, `.jpg` or
    /// `.jpeg`, `.webp`, in any letter case — with `metadata` (see `ImageMetadata`),
    /// atomically: the bytes go to a temporary file in the same folder, renamed over `path`
    /// once complete, so a failure never leaves a partial file behind.
    ///
    /// - Throws: `ImageError.unsupportedExtension` for any other extension or none (listing
    ///   the supported ones); the encoder's errors; `FileError` naming `path`.
    public func write(to path: String, metadata: ImageMetadata? = nil, writer: ImageWriter = ImageWriter()) throws {
        try writer.write(self, to: path, metadata: metadata)
    }

    /// As `write(to:metadata:writer:)` with `encoder` for PNG files; the format still follows
    /// the extension (this once wrote PNG whatever the name said).
    public func write(to path: String, encoder: PNGEncoder) throws {
        try write(to: path, writer: ImageWriter(png: encoder))
    }

    /// The file names a batch of `count` images written to `path` gets: `path` itself for one
    /// image, otherwise `name-0.png`, `name-1.png`, … (the index goes before the extension of
    /// the last path component; without an extension it is appended).
    public static func batchPaths(for path: String, count: Int) -> [String] {
        guard count != 1 else { return [path] }
        let nameStart = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[nameStart...]
        // A leading dot (".png", ".hidden") is part of the name, not an extension.
        let dot = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : $0 }
        let stem = dot.map { String(path[..<$0]) } ?? path
        let fileExtension = dot.map { String(path[$0...]) } ?? ""
        return (0..<max(0, count)).map { "\(stem)-\($0)\(fileExtension)" }
    }

    /// Writes `images` to the files `batchPaths(for:count:)` names, in the format `path`'s
    /// extension names, each with `metadata`, and returns those paths. All images are encoded
    /// and written to temporary files first and renamed into place only when every one
    /// succeeded: a failure leaves none of them (and no partial file).
    ///
    /// - Throws: `ImageError.invalidArgument` for an empty batch;
    ///   `ImageError.unsupportedExtension` for an extension that names no format (nothing is
    ///   written); the encoder's errors; `FileError` naming the file that could not be written.
    @discardableResult
    public static func write(_ images: [Image], to path: String, metadata: ImageMetadata? = nil,
                             writer: ImageWriter = ImageWriter()) throws -> [String] {
        try writer.write(images, to: path, metadata: [metadata])
    }

    /// As `write(_:to:metadata:writer:)` with one metadata value per image (a batch's images
    /// differ in seed, say); `metadata` holds one value per image, or one for all.
    @discardableResult
    public static func write(_ images: [Image], to path: String, metadata: [ImageMetadata],
                             writer: ImageWriter = ImageWriter()) throws -> [String] {
        try writer.write(images, to: path, metadata: metadata)
    }

    /// As `write(_:to:metadata:writer:)` with `encoder` for PNG files; the format still
    /// follows the extension.
    @discardableResult
    public static func write(_ images: [Image], to path: String, encoder: PNGEncoder) throws -> [String] {
        try write(images, to: path, writer: ImageWriter(png: encoder))
    }
}
