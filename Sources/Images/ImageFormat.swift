/// The file formats images can be written in, chosen by the file name's extension.
public enum ImageFormat: String, CaseIterable, Sendable {
    /// PNG (lossless, zlib): `.png`.
    case png
    /// JPEG (lossy, libjpeg-turbo): `.jpg` or `.jpeg`.
    case jpeg
    /// WebP (lossy or lossless, libwebp): `.webp`.
    case webp

    /// The extensions (lower case, without the dot) that select this format; the first is the usual one.
    public var fileExtensions: [String] {
        switch self {
        case .png: return ["png"]
        case .jpeg: return ["jpg", "jpeg"]
        case .webp: return ["webp"]
        }
    }

    /// Every extension that selects a format, with its dot, for error messages.
    public static var supportedExtensions: [String] {
        allCases.flatMap(\.fileExtensions).map { "." + $0 }
    }

    /// The format the extension of `path` names, in any letter case (`.PNG`, `.Jpeg`).
    ///
    /// - Throws: `ImageError.unsupportedExtension` naming `path` and the supported extensions
    ///   when the last path component has no extension or an unknown one.
    public init(path: String) throws {
        let found = ImageFormat.fileExtension(of: path).flatMap { name in
            ImageFormat.allCases.first { $0.fileExtensions.contains(name.lowercased()) }
        }
        guard let found else {
            throw ImageError.unsupportedExtension(path: path, supported: ImageFormat.supportedExtensions)
        }
        self = found
    }

    /// The format whose signature `bytes` start with, or nil.
    init?(signatureOf bytes: [UInt8]) {
        if bytes.starts(with: pngSignature) {
            self = .png
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), bytes[8..<12].elementsEqual("WEBP".utf8) {
            self = .webp
        } else {
            return nil
        }
    }

    /// The extension of the last path component without its dot, or nil when it has none. A
    /// leading dot (".png", ".hidden") is part of the name, as in `Image.batchPaths`.
    static func fileExtension(of path: String) -> String? {
        let nameStart = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[nameStart...]
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        let result = String(name[name.index(after: dot)...])
        return result.isEmpty ? nil : result
    }
}
