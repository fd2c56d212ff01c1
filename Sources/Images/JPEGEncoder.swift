import CJPEG

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes baseline JPEG files (JFIF, 8-bit YCbCr) with libjpeg-turbo.
public struct JPEGEncoder: Sendable {
    /// How the two colour-difference channels are sampled.
    public enum ChromaSubsampling: Sendable {
        /// Half resolution both ways (4:2:0): libjpeg's and Pillow's default, smallest files.
        case halfResolution
        /// Full resolution (4:4:4): sharper coloured edges, larger files.
        case none
    }

    /// libjpeg's quality scale, 1 to 100; 95 is the usual "high quality" choice (Pillow
    /// defaults to 75, AUTOMATIC1111 to 80).
    public var quality: Int
    public var chromaSubsampling: ChromaSubsampling

    public init(quality: Int = 95, chromaSubsampling: ChromaSubsampling = .halfResolution) {
        self.quality = quality
        self.chromaSubsampling = chromaSubsampling
    }

    /// The JPEG bytes of `image`, with `metadata`'s `parameters` entry (if any) as the EXIF
    /// UserComment in an APP1 segment.
    ///
    /// - Throws: `ImageError.invalidArgument` for a quality outside 1–100; `.metadata` when the
    ///   comment does not fit one APP1 segment (64 KiB, about 32,000 characters);
    ///   `.encoding` naming `destination` with libjpeg's message (e.g. a side over 65,500 pixels).
    public func encode(_ image: Image, metadata: ImageMetadata? = nil, destination: String = "JPEG data") throws -> [UInt8] {
        guard (1...100).contains(quality) else {
            throw ImageError.invalidArgument("JPEG quality must be 1 to 100, not \(quality) (writing \(destination))")
        }
        guard image.width <= Int(UInt32.max), image.height <= Int(UInt32.max) else {
            throw ImageError.encoding(destination: destination, detail: "\(image.width)×\(image.height) is too large for JPEG")
        }
        var app1: [UInt8] = []
        if let text = metadata?.parameters {
            app1 = Array("Exif".utf8) + [0, 0] + EXIF.userCommentTIFF(text)
            // A segment's length field counts itself: 65,535 − 2 bytes of data at most.
            guard app1.count <= 65_533 else {
                throw ImageError.metadata(
                    path: destination,
                    detail: "the generation parameters take \(app1.count) bytes as EXIF, more than one JPEG APP1 segment holds (65,533)")
            }
        }
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: Int(JMSG_LENGTH_MAX))
        let succeeded = image.pixels.withUnsafeBufferPointer { rgb in
            app1.withUnsafeBufferPointer { exif in
                cjpeg_compress_rgb(rgb.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality),
                                   chromaSubsampling == .halfResolution ? 1 : 0, exif.baseAddress, UInt32(exif.count),
                                   &out, &length, &message)
            }
        }
        guard succeeded == 1, let out else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImageError.encoding(destination: destination, detail: "libjpeg: " + (reason.isEmpty ? "unknown error" : reason))
        }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: length))
    }
}
