import Files

/// Text stored in an image file beside its pixels: keyword/text pairs, in order.
///
/// The entry that matters in practice is `parameters`, the generation parameters in
/// AUTOMATIC1111's text format (see `GenerationParameters`), which image viewers and web UIs
/// (A1111's "PNG Info", ComfyUI, Civitai) read back. Where each format keeps it:
///
/// - PNG: every entry becomes a text chunk, as Pillow's `PngInfo.add_text` (which A1111 uses)
///   writes it: `tEXt` when keyword and text are Latin-1, otherwise `iTXt`, uncompressed UTF-8
///   with empty language tag and translated keyword. The chunks go before the image data.
/// - JPEG and WebP: only `parameters` is kept, as the EXIF `UserComment` (character code
///   `UNICODE`, UTF-16 big-endian, in a big-endian TIFF structure), which is exactly what A1111
///   writes there through piexif and reads back; other entries have no place in those files and
///   are not written (A1111 keeps none either).
public struct ImageMetadata: Equatable, Hashable, Sendable, ExpressibleByDictionaryLiteral {
    /// One keyword and its text.
    public struct Entry: Equatable, Hashable, Sendable {
        /// 1 to 79 Latin-1 letters, digits, punctuation or spaces (PNG's rule for keywords),
        /// without leading or trailing spaces.
        public var keyword: String
        /// Any text without NUL characters.
        public var text: String

        public init(keyword: String, text: String) {
            self.keyword = keyword
            self.text = text
        }
    }

    /// The keyword A1111 (and the tools that read its files) store generation parameters under.
    public static let parametersKeyword = "parameters"

    /// The entries, in the order they are written.
    public var entries: [Entry]

    public init(entries: [Entry] = []) {
        self.entries = entries
    }

    /// Entries in the order written: `["parameters": text, "Software": "swift-diffusers"]`.
    public init(dictionaryLiteral elements: (String, String)...) {
        entries = elements.map { Entry(keyword: $0.0, text: $0.1) }
    }

    /// The entries of `dictionary`, sorted by keyword so that files come out the same each time.
    public init(_ dictionary: [String: String]) {
        entries = dictionary.sorted { $0.key < $1.key }.map { Entry(keyword: $0.key, text: $0.value) }
    }

    /// Just the `parameters` entry.
    public init(parameters: String) {
        entries = [Entry(keyword: ImageMetadata.parametersKeyword, text: parameters)]
    }

    /// Just the `parameters` entry, in A1111's format.
    public init(parameters: GenerationParameters) {
        self.init(parameters: parameters.infotext)
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The text of the first entry with `keyword`; setting replaces it (or appends an entry),
    /// setting nil removes every entry with that keyword.
    public subscript(keyword: String) -> String? {
        get { entries.first { $0.keyword == keyword }?.text }
        set {
            guard let newValue else {
                entries.removeAll { $0.keyword == keyword }
                return
            }
            if let index = entries.firstIndex(where: { $0.keyword == keyword }) {
                entries[index].text = newValue
            } else {
                entries.append(Entry(keyword: keyword, text: newValue))
            }
        }
    }

    /// The generation parameters text (the `parameters` entry).
    public var parameters: String? {
        get { self[ImageMetadata.parametersKeyword] }
        set { self[ImageMetadata.parametersKeyword] = newValue }
    }
}

extension ImageMetadata {
    /// The text metadata of the PNG, JPEG or WebP file at `path` (the format is recognised by
    /// its signature, not its name): for PNG every `tEXt`, `zTXt` and `iTXt` chunk in file
    /// order; for JPEG and WebP the EXIF `UserComment`, as `parameters`, when there is one.
    ///
    /// - Throws: `FileError` when the file cannot be read or holds more than `maxBytes`,
    ///   `.metadata` for a file of another kind or a malformed text chunk or EXIF block, and the
    ///   PNG chunk errors (`.badCRC`, `.truncated`, …) for a broken PNG.
    public init(contentsOfFile path: String, maxBytes: Int = 1 << 30) throws {
        try self.init(imageData: InputFile.read(path, maxBytes: maxBytes), source: path)
    }

    /// The text metadata of a PNG, JPEG or WebP file held in `bytes`; `source` names it in errors.
    public init(imageData bytes: [UInt8], source: String = "image data") throws {
        switch ImageFormat(signatureOf: bytes) {
        case .png:
            self.init(entries: try readPNGText(bytes, source: source))
        case .jpeg:
            self.init(userComment: try EXIF.userComment(in: try jpegEXIF(bytes, source: source), source: source))
        case .webp:
            self.init(userComment: try EXIF.userComment(in: try webpEXIF(bytes, source: source), source: source))
        case nil:
            throw ImageError.metadata(
                path: source, detail: "not a PNG, JPEG or WebP file: it starts with none of their signatures")
        }
    }

    private init(userComment: String?) {
        self.init(entries: userComment.map { [Entry(keyword: ImageMetadata.parametersKeyword, text: $0)] } ?? [])
    }
}
