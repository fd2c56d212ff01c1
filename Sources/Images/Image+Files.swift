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

    /// Writes this image as an 8-bit RGB PNG file at `path`, atomically: the bytes go to a
    /// temporary file in the same folder, renamed over `path` once complete, so a failure
    /// never leaves a partial file behind.
    public func write(to path: String, encoder: PNGEncoder = PNGEncoder()) throws {
        let bytes = try encoder.encode(samples: pixels, width: width, height: height, channels: 3, destination: path)
        try FileIO.writeAtomically([(path, bytes)])
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

    /// Writes `images` as PNG files named by `batchPaths(for:count:)` and returns those paths.
    /// All images are encoded and written to temporary files first and renamed into place
    /// only when every one succeeded: a failure leaves none of them (and no partial file).
    ///
    /// - Throws: `ImageError.invalidArgument` for an empty batch; `ImageError.io` naming the
    ///   file that could not be written.
    @discardableResult
    public static func write(_ images: [Image], to path: String, encoder: PNGEncoder = PNGEncoder()) throws -> [String] {
        guard !images.isEmpty else { throw ImageError.invalidArgument("no images to write to \(path)") }
        let paths = batchPaths(for: path, count: images.count)
        let files = try zip(images, paths).map { image, destination in
            (destination, try encoder.encode(samples: image.pixels, width: image.width, height: image.height,
                                              channels: 3, destination: destination))
        }
        try FileIO.writeAtomically(files)
        return paths
    }
}
