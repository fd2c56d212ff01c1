import CWebP

/// Writes WebP files with libwebp: lossy (VP8) by default, or lossless (VP8L).
public struct WebPEncoder: Sendable {
    /// 0 to 100. Lossy: the quality, as `cwebp -q` (libwebp's default is 75; 90 keeps
    /// generated images close to the original). Lossless: the effort spent making the file
    /// small, which never changes the pixels.
    public var quality: Float
    /// Lossless (every pixel kept exactly, files often larger than PNG's for photos but
    /// smaller for flat images) instead of lossy.
    public var lossless: Bool

    public init(quality: Float = 90, lossless: Bool = false) {
        self.quality = quality
        self.lossless = lossless
    }

    /// The WebP bytes of `image`. When `metadata` has a `parameters` entry it becomes the EXIF
    /// UserComment in an `EXIF` chunk of the extended (VP8X) format, assembled by libwebpmux.
    ///
    /// - Throws: `ImageError.invalidArgument` for a quality outside 0–100; `.encoding` naming
    ///   `destination` with libwebp's reason (a side over 16,383 pixels, out of memory…).
    public func encode(_ image: Image, metadata: ImageMetadata? = nil, destination: String = "WebP data") throws -> [UInt8] {
        guard (0...100).contains(quality) else {
            throw ImageError.invalidArgument("WebP quality must be 0 to 100, not \(quality) (writing \(destination))")
        }
        func failure(_ detail: String) -> ImageError { .encoding(destination: destination, detail: "libwebp: " + detail) }
        // Checked before the pixels are copied into libwebp's picture, which would otherwise
        // allocate the whole oversized image first.
        let maxSide = Int(WEBP_MAX_DIMENSION)
        guard image.width <= maxSide, image.height <= maxSide else {
            throw failure("\(image.width)×\(image.height) pixels is larger than WebP allows (at most \(maxSide) a side)")
        }

        var config = WebPConfig()
        guard WebPConfigInit(&config) != 0 else { throw failure("the library does not match the headers it was built with") }
        config.lossless = lossless ? 1 : 0
        config.quality = quality
        guard WebPValidateConfig(&config) != 0 else { throw failure("invalid configuration") }

        var picture = WebPPicture()
        guard WebPPictureInit(&picture) != 0 else { throw failure("the library does not match the headers it was built with") }
        defer { WebPPictureFree(&picture) }
        picture.use_argb = lossless ? 1 : 0   // lossless codes ARGB; lossy converts to YUV on import
        picture.width = Int32(image.width)
        picture.height = Int32(image.height)
        let imported = image.pixels.withUnsafeBufferPointer {
            WebPPictureImportRGB(&picture, $0.baseAddress, Int32(image.width * 3))
        }
        guard imported != 0 else { throw failure(describe(picture.error_code)) }

        var writer = WebPMemoryWriter()
        WebPMemoryWriterInit(&writer)
        defer { WebPMemoryWriterClear(&writer) }
        let encoded = withUnsafeMutablePointer(to: &writer) { memory in
            picture.writer = WebPMemoryWrite
            picture.custom_ptr = UnsafeMutableRawPointer(memory)
            return WebPEncode(&config, &picture)
        }
        guard encoded != 0, let bitstream = writer.mem else { throw failure(describe(picture.error_code)) }

        guard let text = metadata?.parameters else {
            return Array(UnsafeBufferPointer(start: bitstream, count: writer.size))
        }
        return try addEXIF(EXIF.userCommentTIFF(text), to: WebPData(bytes: bitstream, size: writer.size), failure: failure)
    }

    /// The file of `bitstream` with an `EXIF` chunk holding `exif`.
    private func addEXIF(_ exif: [UInt8], to bitstream: WebPData, failure: (String) -> ImageError) throws -> [UInt8] {
        guard let mux = WebPMuxNew() else { throw failure("cannot create a WebPMux (out of memory)") }
        defer { WebPMuxDelete(mux) }
        var image = bitstream
        var status = WebPMuxSetImage(mux, &image, 1)
        guard status == WEBP_MUX_OK else { throw failure("WebPMuxSetImage failed (\(status.rawValue))") }
        status = exif.withUnsafeBufferPointer { buffer in
            var chunk = WebPData(bytes: buffer.baseAddress, size: buffer.count)
            return WebPMuxSetChunk(mux, "EXIF", &chunk, 1)
        }
        guard status == WEBP_MUX_OK else { throw failure("WebPMuxSetChunk(EXIF) failed (\(status.rawValue))") }
        var assembled = WebPData()
        WebPDataInit(&assembled)
        defer { WebPDataClear(&assembled) }
        status = WebPMuxAssemble(mux, &assembled)
        guard status == WEBP_MUX_OK, let bytes = assembled.bytes else { throw failure("WebPMuxAssemble failed (\(status.rawValue))") }
        return Array(UnsafeBufferPointer(start: bytes, count: assembled.size))
    }

    private func describe(_ error: WebPEncodingError) -> String {
        switch error {
        case VP8_ENC_ERROR_OUT_OF_MEMORY, VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY: return "out of memory"
        case VP8_ENC_ERROR_BAD_DIMENSION: return "invalid image dimensions"
        case VP8_ENC_ERROR_INVALID_CONFIGURATION: return "invalid configuration"
        case VP8_ENC_ERROR_PARTITION0_OVERFLOW, VP8_ENC_ERROR_PARTITION_OVERFLOW:
            return "a coded partition overflowed (try a lower quality)"
        case VP8_ENC_ERROR_FILE_TOO_BIG: return "the file would exceed 4 GiB"
        default: return "encoding failed (error \(error.rawValue))"
        }
    }
}
