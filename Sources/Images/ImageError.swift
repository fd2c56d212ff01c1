/// Errors from reading, writing and converting images. Every case names the file (or the
/// in-memory source) and says what is wrong in one sentence; malformed input never traps.
public enum ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The bytes do not start with the PNG signature.
    case notPNG(source: String)
    /// The file ends before a structure it started (a chunk, the image data, IEND).
    case truncated(source: String, detail: String)
    /// A chunk's CRC-32 does not match its type and data.
    case badCRC(source: String, chunk: String, stored: UInt32, computed: UInt32)
    /// The structure breaks the PNG specification (chunk order, header fields, filter bytes…).
    case malformed(source: String, detail: String)
    /// Valid PNG that this decoder does not handle (unknown critical chunk, interlace method).
    case unsupported(source: String, detail: String)
    /// The image exceeds the decoder's limits (dimensions, pixel count, file size).
    case tooLarge(source: String, detail: String)
    /// zlib rejected the compressed image data, or failed to compress.
    case compression(source: String, detail: String)
    /// Width or height is not a multiple of what the model needs (the VAE scale factor).
    case sizeNotMultiple(width: Int, height: Int, multiple: Int)
    /// A tensor, pixel buffer or argument that cannot become an image (or vice versa).
    case invalidArgument(String)
    /// The file name's extension names no format that can be written (`supported` lists
    /// those that can, with their dots).
    case unsupportedExtension(path: String, supported: [String])
    /// libjpeg or libwebp could not encode the image (`detail` is the library's reason).
    case encoding(destination: String, detail: String)
    /// Text metadata that cannot be stored in the file, or a file whose metadata cannot be read.
    case metadata(path: String, detail: String)

    public var description: String {
        switch self {
        case .notPNG(let source):
            return "\(source) is not a PNG file: it does not start with the PNG signature"
        case .truncated(let source, let detail):
            return "\(source) is truncated: \(detail)"
        case .badCRC(let source, let chunk, let stored, let computed):
            return "\(source) is corrupt: the CRC of chunk \(chunk) is 0x\(hex(stored)), "
                + "but its contents give 0x\(hex(computed))"
        case .malformed(let source, let detail):
            return "\(source) is not a valid PNG file: \(detail)"
        case .unsupported(let source, let detail):
            return "\(source) uses a PNG feature that is not supported: \(detail)"
        case .tooLarge(let source, let detail):
            return "\(source) is too large: \(detail)"
        case .compression(let source, let detail):
            return "\(source): zlib error: \(detail)"
        case .sizeNotMultiple(let width, let height, let multiple):
            return "image size \(width)×\(height) is not a multiple of \(multiple) in both dimensions; "
                + "resize it or enable resizing"
        case .invalidArgument(let message):
            return message
        case .unsupportedExtension(let path, let supported):
            let name = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
            let found = ImageFormat.fileExtension(of: path).map { "the extension .\($0) names no image format that can be written" }
                ?? (name.isEmpty ? "the path names a folder, not an image file"
                    : "the file name has no extension to choose an image format from")
            return "\(path): \(found); use one of \(supported.joined(separator: ", "))"
        case .encoding(let destination, let detail):
            return "\(destination): cannot encode the image: \(detail)"
        case .metadata(let path, let detail):
            return "\(path): \(detail)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
