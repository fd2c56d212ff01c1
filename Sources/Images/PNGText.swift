/// PNG text chunks (`tEXt`, `zTXt`, `iTXt`, PNG specification §11.3.4): written the way
/// Pillow's `PngInfo.add_text` writes them — which is how AUTOMATIC1111 stores `parameters` —
/// and read back.

/// Most bytes a compressed text chunk may inflate to; text beyond this is refused rather than
/// letting a crafted file claim unbounded memory.
private let maxInflatedText = 16 << 20

/// The chunk for `entry`: `tEXt` when keyword and text are Latin-1, otherwise `iTXt` with an
/// uncompressed UTF-8 text and empty language tag and translated keyword (Pillow switches the
/// same way, so files read the same in A1111).
///
/// - Throws: `ImageError.metadata` naming `destination` for a keyword PNG does not allow or a
///   text containing NUL (which would end it early for every reader).
func pngTextChunk(_ entry: ImageMetadata.Entry, destination: String) throws -> (type: String, data: [UInt8]) {
    let keyword = try keywordBytes(entry.keyword, destination: destination)
    guard !entry.text.unicodeScalars.contains("\0") else {
        throw ImageError.metadata(path: destination, detail: "the text of metadata entry \"\(entry.keyword)\" contains a NUL character")
    }
    let chunk: (type: String, data: [UInt8])
    if let latin1 = latin1Bytes(entry.text) {
        chunk = ("tEXt", keyword + [0] + latin1)
    } else {
        // Compression flag 0, method 0, empty language tag, empty translated keyword.
        chunk = ("iTXt", keyword + [0, 0, 0, 0, 0] + Array(entry.text.utf8))
    }
    guard chunk.data.count <= Int(Int32.max) else {
        throw ImageError.metadata(path: destination, detail: "metadata entry \"\(entry.keyword)\" is larger than a PNG chunk holds (2 GiB)")
    }
    return chunk
}

/// The keyword's Latin-1 bytes, checked against PNG's rule: 1 to 79 printable Latin-1
/// characters (32–126, 161–255), no leading, trailing or consecutive spaces.
private func keywordBytes(_ keyword: String, destination: String) throws -> [UInt8] {
    let bytes = latin1Bytes(keyword) ?? []
    let printable = bytes.allSatisfy { (32...126).contains($0) || (161...255).contains($0) }
    let spacing = bytes.first != 32 && bytes.last != 32 && !zip(bytes, bytes.dropFirst()).contains { $0 == 32 && $1 == 32 }
    guard (1...79).contains(bytes.count), bytes.count == keyword.unicodeScalars.count, printable, spacing else {
        throw ImageError.metadata(
            path: destination,
            detail: "\"\(keyword)\" cannot be a PNG text keyword: it must be 1 to 79 printable Latin-1 characters "
                + "without leading, trailing or double spaces")
    }
    return bytes
}

/// `text` as Latin-1 bytes, or nil when it has a character beyond U+00FF.
private func latin1Bytes(_ text: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        guard scalar.value <= 0xFF else { return nil }
        bytes.append(UInt8(scalar.value))
    }
    return bytes
}

/// Latin-1 bytes as a string (every byte is a code point, so this cannot fail).
private func latin1String<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var text = String.UnicodeScalarView()
    for byte in bytes { text.append(Unicode.Scalar(byte)) }
    return String(text)
}

/// The text entries of the PNG in `bytes`, in file order (after checking its chunk structure
/// and CRCs).
func readPNGText(_ bytes: [UInt8], source: String) throws -> [ImageMetadata.Entry] {
    var entries: [ImageMetadata.Entry] = []
    for chunk in try readPNGChunks(bytes, source: source) where ["tEXt", "zTXt", "iTXt"].contains(chunk.type) {
        let data = bytes[chunk.data]
        func malformed(_ detail: String) -> ImageError {
            ImageError.metadata(path: source, detail: "its \(chunk.type) chunk at byte \(chunk.data.lowerBound - 8) \(detail)")
        }
        guard let keywordEnd = data.firstIndex(of: 0), keywordEnd > data.startIndex else {
            throw malformed("has no keyword ended by NUL")
        }
        let keyword = latin1String(data[..<keywordEnd])
        var rest = data[(keywordEnd + 1)...]
        switch chunk.type {
        case "tEXt":
            entries.append(.init(keyword: keyword, text: latin1String(rest)))
        case "zTXt":
            guard rest.first == 0 else { throw malformed("uses compression method \(rest.first.map(String.init) ?? "(none)"), not 0") }
            let text = try inflateText(rest.dropFirst(), source: source, malformed: malformed)
            entries.append(.init(keyword: keyword, text: latin1String(text)))
        default:   // iTXt: flag, method, language tag NUL, translated keyword NUL, text
            guard rest.count >= 2 else { throw malformed("ends before its compression flag and method") }
            let compressed = rest[rest.startIndex], method = rest[rest.startIndex + 1]
            guard compressed <= 1, method == 0 else { throw malformed("has compression flag \(compressed) and method \(method)") }
            rest = rest.dropFirst(2)
            for field in ["language tag", "translated keyword"] {
                guard let end = rest.firstIndex(of: 0) else { throw malformed("has no NUL after its \(field)") }
                rest = rest[(end + 1)...]
            }
            let utf8 = compressed == 1 ? try inflateText(rest, source: source, malformed: malformed) : Array(rest)
            guard let text = String(validating: utf8, as: UTF8.self) else { throw malformed("holds text that is not UTF-8") }
            entries.append(.init(keyword: keyword, text: text))
        }
    }
    return entries
}

private func inflateText(_ data: ArraySlice<UInt8>, source: String, malformed: (String) -> ImageError) throws -> [UInt8] {
    let text = try data.withUnsafeBytes { try Zlib.inflate(pieces: [$0], limit: maxInflatedText, source: source) }
    guard text.count < maxInflatedText else { throw malformed("inflates to more than \(maxInflatedText) bytes") }
    return text
}
