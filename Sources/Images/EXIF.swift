/// The one EXIF field this library writes: `UserComment` (tag 0x9286 in the Exif IFD), where
/// AUTOMATIC1111 keeps the generation parameters of JPEG and WebP files.
///
/// Written as piexif writes it for A1111 (`piexif.helper.UserComment.dump(text,
/// encoding="unicode")`): a big-endian ("MM") TIFF structure whose comment starts with the
/// character code `UNICODE\0` followed by UTF-16 big-endian text, so A1111's reader — which
/// decodes UNICODE comments as big-endian whatever the TIFF byte order — gets the text back.
enum EXIF {
    /// The TIFF structure (without JPEG's `Exif\0\0` prefix) holding `text` as UserComment:
    /// IFD0 with only the Exif IFD pointer, and an Exif IFD with ExifVersion (mandatory in
    /// that IFD) and UserComment.
    static func userCommentTIFF(_ text: String) -> [UInt8] {
        var tiff: [UInt8] = Array("MM".utf8)
        appendUInt16(42, to: &tiff)
        appendUInt32(8, to: &tiff)                               // IFD0 right after the header
        let exifIFD: UInt32 = 8 + 2 + 12 + 4
        appendUInt16(1, to: &tiff)
        appendEntry(tag: 0x8769, type: 4, count: 1, value: exifIFD, to: &tiff)   // ExifIFDPointer, LONG
        appendUInt32(0, to: &tiff)                               // no IFD1
        let commentOffset = exifIFD + 2 + 2 * 12 + 4
        let comment = Array("UNICODE".utf8) + [0] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        appendUInt16(2, to: &tiff)
        // ExifVersion "0232", UNDEFINED, held in the entry itself.
        appendEntry(tag: 0x9000, type: 7, count: 4, value: UInt32(0x30_32_33_32), to: &tiff)
        appendEntry(tag: 0x9286, type: 7, count: UInt32(comment.count), value: commentOffset, to: &tiff)
        appendUInt32(0, to: &tiff)
        tiff += comment
        return tiff
    }

    /// The UserComment text in `exif` (a TIFF structure, optionally after `Exif\0\0`, in either
    /// byte order), or nil when `exif` is nil or holds none. Trailing NULs are dropped.
    ///
    /// - Throws: `ImageError.metadata` naming `source` when the structure is malformed.
    static func userComment(in exif: ArraySlice<UInt8>?, source: String) throws -> String? {
        guard var tiff = exif else { return nil }
        if tiff.starts(with: Array("Exif".utf8) + [0, 0]) { tiff = tiff.dropFirst(6) }
        let data = Array(tiff)
        func malformed(_ detail: String) -> ImageError {
            ImageError.metadata(path: source, detail: "its EXIF data is malformed: \(detail)")
        }
        guard data.count >= 8 else { throw malformed("\(data.count) bytes are too few for a TIFF header") }
        let little: Bool
        switch (data[0], data[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: throw malformed("the TIFF header starts with neither II nor MM")
        }
        func read(_ offset: Int, _ size: Int) throws -> Int {
            guard offset >= 0, offset <= data.count - size else {
                throw malformed("a field at byte \(offset) lies beyond the \(data.count) bytes of EXIF data")
            }
            var value = 0
            for i in 0..<size { value = value << 8 | Int(data[offset + (little ? size - 1 - i : i)]) }
            return value
        }
        /// The (type, count, value-or-offset field position) of `tag` in the IFD at `ifd`.
        func entry(_ tag: Int, inIFDAt ifd: Int) throws -> (type: Int, count: Int, field: Int)? {
            let count = try read(ifd, 2)
            for index in 0..<count {
                let at = ifd + 2 + index * 12
                if try read(at, 2) == tag { return (try read(at + 2, 2), try read(at + 4, 4), at + 8) }
            }
            return nil
        }
        guard try read(2, 2) == 42 else { throw malformed("the TIFF header lacks the number 42") }
        guard let pointer = try entry(0x8769, inIFDAt: try read(4, 4)) else { return nil }
        guard let comment = try entry(0x9286, inIFDAt: try read(pointer.field, 4)) else { return nil }
        guard comment.type == 7 || comment.type == 2 else { throw malformed("UserComment has TIFF type \(comment.type), not UNDEFINED") }
        let start = comment.count <= 4 ? comment.field : try read(comment.field, 4)
        guard comment.count >= 8, start <= data.count - comment.count else {
            throw malformed("UserComment (\(comment.count) bytes at byte \(start)) is shorter than its character code or lies beyond the data")
        }
        let code = data[start..<(start + 8)], body = data[(start + 8)..<(start + comment.count)]
        var text: String
        if code.elementsEqual(Array("UNICODE".utf8) + [0]) {
            let units = stride(from: body.startIndex, to: body.endIndex - 1, by: 2).map { i -> UInt16 in
                little ? UInt16(body[i + 1]) << 8 | UInt16(body[i]) : UInt16(body[i]) << 8 | UInt16(body[i + 1])
            }
            text = String(decoding: units, as: UTF16.self)
        } else {
            // ASCII, undefined (zeros) or JIS: taken as UTF-8, as A1111 falls back to.
            text = String(decoding: body, as: UTF8.self)
        }
        while text.unicodeScalars.last == "\0" { text.unicodeScalars.removeLast() }
        return text
    }

    private static func appendEntry(tag: UInt16, type: UInt16, count: UInt32, value: UInt32, to bytes: inout [UInt8]) {
        appendUInt16(tag, to: &bytes)
        appendUInt16(type, to: &bytes)
        appendUInt32(count, to: &bytes)
        appendUInt32(value, to: &bytes)
    }

    private static func appendUInt16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }
}

/// The data of the first APP1 segment of a JPEG that holds EXIF (starting `Exif\0\0`), or nil.
/// Only the segments before the image data are looked at, as EXIF must precede it.
func jpegEXIF(_ bytes: [UInt8], source: String) throws -> ArraySlice<UInt8>? {
    var at = 2   // after SOI
    while at + 1 < bytes.count {
        guard bytes[at] == 0xFF else {
            throw ImageError.metadata(path: source, detail: "its JPEG structure is broken: no marker at byte \(at)")
        }
        let marker = bytes[at + 1]
        if marker == 0xFF { at += 1; continue }                          // fill byte
        if marker == 0xDA || marker == 0xD9 { return nil }              // start of scan, end of image
        if marker == 0x01 || (0xD0...0xD7).contains(marker) { at += 2; continue }   // no length field
        guard at + 4 <= bytes.count else { break }
        let length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        guard length >= 2, at + 2 + length <= bytes.count else {
            throw ImageError.metadata(path: source, detail: "its JPEG segment at byte \(at) runs past the end of the file")
        }
        let data = bytes[(at + 4)..<(at + 2 + length)]
        if marker == 0xE1, data.starts(with: Array("Exif".utf8) + [0, 0]) { return data }
        at += 2 + length
    }
    throw ImageError.metadata(path: source, detail: "its JPEG structure ends before the image data")
}

/// The payload of a WebP file's `EXIF` chunk, or nil.
func webpEXIF(_ bytes: [UInt8], source: String) throws -> ArraySlice<UInt8>? {
    var at = 12   // after "RIFF", the size and "WEBP"
    while at + 8 <= bytes.count {
        let size = Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24
        guard size <= bytes.count - at - 8 else {
            throw ImageError.metadata(path: source, detail: "its WebP chunk at byte \(at) runs past the end of the file")
        }
        if bytes[at..<(at + 4)].elementsEqual("EXIF".utf8) { return bytes[(at + 8)..<(at + 8 + size)] }
        at += 8 + size + (size & 1)   // chunks are padded to an even size
    }
    return nil
}
