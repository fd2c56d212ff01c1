import Foundation

/// How `CLIPTokenizer.encode` and `T5Tokenizer.encode` pad their output.
public enum PaddingStrategy: Sendable, Equatable {
    /// No padding.
    case none
    /// Pad every sequence of a batch to the longest one of the batch (a single text is not padded).
    case longest
    /// Pad to `maxLength` (the tokenizer's `modelMaxLength` unless given).
    case maxLength

    /// The length a batch of `sequences` is padded to (0: none) with `limit` the length to pad
    /// to; one text under `.longest` is its own longest.
    func paddedLength(of sequences: [[Int]], limit: Int?) -> Int {
        switch self {
        case .none: return 0
        case .longest: return sequences.map(\.count).max() ?? 0
        case .maxLength: return limit ?? 0
        }
    }
}

/// transformers' `tokenizer(texts, padding=…, truncation=…, max_length=…)` for any of this
/// module's tokenizers, given its `sequence` (a text's ids with its special tokens, truncated to
/// a limit when asked): the limit is `maxLength`, else the tokenizer's `model_max_length`; every
/// sequence is padded with `padID` to the length `padding` asks for.
func encodedBatch(_ texts: [String], padding: PaddingStrategy, truncation: Bool, maxLength: Int?, modelMaxLength: Int?,
                  padID: Int, sequence: (_ text: String, _ truncation: Bool, _ limit: Int?) -> [Int]) -> [TokenizedText] {
    let limit = maxLength ?? modelMaxLength
    let sequences = texts.map { sequence($0, truncation, limit) }
    let length = padding.paddedLength(of: sequences, limit: limit)
    return sequences.map { TokenizedText(ids: $0, paddedTo: length, with: padID) }
}

/// Token ids of one text, as transformers returns them in `input_ids` and `attention_mask`.
public struct TokenizedText: Equatable, Sendable {
    /// The ids (CLIP: beginning with the start token; T5: ending with `</s>`), followed by padding if any.
    public var ids: [Int]
    /// 1 for each real token, 0 for each padding position.
    public var attentionMask: [Int]

    /// Ids with the given mask (all ones by default).
    public init(ids: [Int], attentionMask: [Int]? = nil) {
        self.ids = ids
        self.attentionMask = attentionMask ?? Array(repeating: 1, count: ids.count)
    }

    /// `ids` right-padded with `padID` (mask 0) up to `length` (no padding when shorter).
    init(ids: [Int], paddedTo length: Int, with padID: Int) {
        let padding = max(0, length - ids.count)
        self.init(ids: ids + Array(repeating: padID, count: padding),
                  attentionMask: Array(repeating: 1, count: ids.count) + Array(repeating: 0, count: padding))
    }
}

/// CLIP's byte-level BPE tokenizer, giving the ids that Diffusers' Stable Diffusion pipelines
/// get from transformers' `CLIPTokenizer`: same clean-up, pre-tokenisation, merges and ids.
///
/// transformers has had two `CLIPTokenizer`s, which differ on unusual text (control and
/// format characters, CJK ideographs, a word-final capital sigma, upper-case special markers):
/// the tokenizers library's pipeline (transformers 5, and `CLIPTokenizerFast` before it) and a
/// pure-Python one (transformers 4, used without `ftfy`). `Compatibility` chooses; the default
/// is the first, the one that current Diffusers and this project's reference fixtures use.
///
/// ```swift
/// let tokenizer = try CLIPTokenizer(folder: "sd-model/tokenizer")
/// let input = tokenizer.encode("a photo of an astronaut", padding: .maxLength, truncation: true)
/// // input.ids: [49406, 320, 1125, 539, 550, 18376, 49407, 49407, …] (77 ids)
/// ```
///
/// Encoding is thread-safe; words already seen are served from a cache.
public final class CLIPTokenizer: Sendable {
    /// Which implementation's ids to reproduce.
    public enum Compatibility: Sendable, Equatable {
        /// transformers 5's `CLIPTokenizer` and every `CLIPTokenizerFast` (the tokenizers
        /// library): NFC, whitespace runs to one space, per-character lower-casing; added
        /// tokens matched by the tokenizers library's rules.
        case tokenizers
        /// transformers 4's pure-Python `CLIPTokenizer` without `ftfy`: BERT's basic clean-up
        /// (control and format characters removed, CJK ideographs split apart, NFC, Python
        /// lower-casing), a case-insensitive pre-tokeniser, transformers 4's added-token rules.
        case transformers4
    }

    /// The implementation whose ids this tokenizer reproduces.
    public let compatibility: Compatibility
    /// The longest sequence the text model accepts (`model_max_length`, 77 by default); nil
    /// when the configuration says there is no known limit (transformers' int(1e30)). Then, as
    /// in transformers, `encode` without a `maxLength` neither truncates nor pads; a pipeline
    /// takes its length from the text encoder instead.
    public let modelMaxLength: Int?
    /// The id of the start token (`<|startoftext|>`) put before every sequence.
    public let bosTokenID: Int
    /// The id of the end token (`<|endoftext|>`) put after every sequence.
    public let eosTokenID: Int
    /// The id used for padding (`<|endoftext|>` for SD 1.x, `!` for SD 2.x).
    public let padTokenID: Int
    /// The id given to symbols that the vocabulary lacks.
    public let unkTokenID: Int
    /// The ids of every special token (start, end, unknown, padding, and any others configured).
    public let specialTokenIDs: Set<Int>
    /// The number of distinct tokens of `vocab.json`.
    public let vocabularySize: Int

    private let symbols: [String]
    let symbolIndices: [String: Int32]
    let symbolVocabularyIDs: [Int32?]
    /// The id of each BPE symbol: its vocabulary id (with `.transformers4`, its added-token id
    /// first), else `unkTokenID`.
    private let symbolIDs: [Int]
    private let bpe: BytePairEncoder
    let addedTokens: AddedVocabulary
    /// Id → token string (added tokens first, then the vocabulary), for decoding.
    let tokenStrings: [Int: String]
    /// The contents of the special tokens.
    let specialTokens: Set<String>
    /// Added tokens decoded as pieces of their own (transformers' "legacy added tokens").
    let separatelyDecodedTokens: Set<String>
    /// Whether `decode` removes spaces before punctuation (`clean_up_tokenization_spaces`).
    let cleansUpTokenizationSpaces: Bool

    /// Loads a tokenizer folder: `vocab.json` and `merges.txt` (or, where they are absent, the
    /// BPE model of `tokenizer.json`, all that transformers 5 saves), and the optional
    /// `tokenizer_config.json` and `special_tokens_map.json` (`model_max_length`, special tokens,
    /// `added_tokens_decoder`, `clean_up_tokenization_spaces`).
    ///
    /// - Throws: `TokenizerError` naming the file (and line) at fault.
    public convenience init(folder: URL, compatibility: Compatibility = .tokenizers) throws(TokenizerError) {
        try self.init(folder: folder.path, compatibility: compatibility)
    }

    /// Loads a tokenizer folder given by its path; see `init(folder: URL, compatibility:)`.
    public init(folder: String, compatibility: Compatibility = .tokenizers) throws(TokenizerError) {
        self.compatibility = compatibility
        let configuration = try TokenizerConfiguration(folder: folder)
        let mergeLimit = compatibility == .transformers4 ? VocabularyFiles.transformers4MergeLimit : nil
        let vocabulary: [(token: String, id: Int32)]
        let mergeLines: [VocabularyFiles.MergeLine]
        let mergesPath: String
        let manager = FileManager.default
        if !manager.fileExists(atPath: folder + "/vocab.json") && manager.fileExists(atPath: folder + "/tokenizer.json") {
            // Saved by transformers 5: the BPE model lives in tokenizer.json only.
            mergesPath = folder + "/tokenizer.json"
            (vocabulary, mergeLines) = try VocabularyFiles.readTokenizerJSON(mergesPath, limit: mergeLimit)
        } else {
            mergesPath = folder + "/merges.txt"
            vocabulary = try VocabularyFiles.readVocabulary(folder + "/vocab.json")
            mergeLines = try VocabularyFiles.readMerges(mergesPath, limit: mergeLimit)
        }

        var table = SymbolTable(vocabulary: vocabulary)
        var merges: [(Int32, Int32, Int32)] = []
        merges.reserveCapacity(mergeLines.count)
        for merge in mergeLines {
            func symbol(_ string: String) throws(TokenizerError) -> Int32 {
                guard let index = table.indices[string] else {
                    throw .unknownMergeSymbol(path: mergesPath, line: merge.line, symbol: string)
                }
                return index
            }
            merges.append((try symbol(merge.left), try symbol(merge.right), try symbol(merge.left + merge.right)))
        }
        bpe = BytePairEncoder(merges: merges, symbols: &table)

        func vocabularyID(_ token: String) -> Int? {
            table.indices[token].flatMap { table.vocabularyIDs[Int($0)] }.map(Int.init)
        }
        let added = AddedVocabulary(configured: configuration.addedTokens, specials: configuration.specialTokens,
                                    vocabularyID: vocabularyID, vocabularyCount: vocabulary.count,
                                    compatibility: compatibility)
        addedTokens = added
        // transformers looks the unknown token up in the vocabulary only; its added id stands in
        // where the vocabulary lacks it (transformers would fail there).
        let unk = vocabularyID(configuration.unk.content) ?? added.id(of: configuration.unk.content) ?? 0
        func id(_ token: String) -> Int { added.id(of: token) ?? vocabularyID(token) ?? unk }

        unkTokenID = unk
        // CLIP's defaults always give a start token.
        bosTokenID = configuration.bos.map { id($0.content) } ?? unk
        eosTokenID = id(configuration.eos.content)
        padTokenID = id(configuration.pad.content)
        specialTokenIDs = Set(configuration.specialTokens.map { id($0.content) })
        modelMaxLength = configuration.modelMaxLength
        vocabularySize = vocabulary.count
        symbols = table.strings
        symbolIndices = table.indices
        symbolVocabularyIDs = table.vocabularyIDs
        // transformers 4 looks every token up among the added tokens first; the tokenizers
        // library gives BPE symbols their vocabulary id.
        symbolIDs = zip(table.strings, table.vocabularyIDs).map { string, vocabularyID in
            (compatibility == .transformers4 ? added.id(of: string) : nil) ?? vocabularyID.map(Int.init) ?? unk
        }

        var strings: [Int: String] = [:]
        strings.reserveCapacity(vocabulary.count + added.decoder.count)
        for (token, id) in vocabulary { strings[Int(id)] = token }
        for (id, token) in added.decoder { strings[id] = token.content }
        tokenStrings = strings
        specialTokens = Set(configuration.specialTokens.map(\.content))
        separatelyDecodedTokens = compatibility == .tokenizers ? [] : Set(added.encoder.keys).subtracting(specialTokens)
            .union(configuration.additional.map(\.content).filter { id($0) >= vocabulary.count })
        // transformers 5 ignores `clean_up_tokenization_spaces` for BPE tokenizers.
        cleansUpTokenizationSpaces = compatibility == .transformers4 && configuration.cleanUpTokenizationSpaces
    }

    // MARK: Tokenising

    /// The tokens of `text` without start and end tokens, as transformers' `tokenize` gives them:
    /// added tokens verbatim, BPE symbols in their byte-level form (`</w>` ends a word).
    public func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        forEachSymbol(of: text, added: { tokens.append($1) }, symbols: { tokens.append(contentsOf: $0.map { symbols[Int($0)] }) })
        return tokens
    }

    /// The ids of `text` without start and end tokens, untruncated.
    public func tokenIDs(_ text: String) -> [Int] {
        var ids: [Int] = []
        forEachSymbol(of: text, added: { content, _ in ids.append(addedTokens.id(of: content) ?? unkTokenID) },
                      symbols: { ids.append(contentsOf: $0.map { symbolIDs[Int($0)] }) })
        return ids
    }

    /// Calls `added` with the content and matched text of each added token of `text`, and
    /// `symbols` with the BPE symbols of each word between them.
    private func forEachSymbol(of text: String, added: (String, String) -> Void, symbols: ([Int32]) -> Void) {
        func encodeWords(_ normalized: [Unicode.Scalar]) {
            var bytes: [UInt8] = []
            for word in PreTokenizer.words(normalized, compatibility: compatibility) {
                bytes.removeAll(keepingCapacity: true)
                for scalar in normalized[word] { appendUTF8(scalar, to: &bytes) }
                symbols(bpe.symbols(ofWord: bytes))
            }
        }
        switch compatibility {
        case .transformers4:
            for segment in addedTokens.pythonSplit(text) {
                switch segment {
                case .token(let content, let matched): added(content, matched)
                case .text(let raw): encodeWords(TextNormalizer.normalizeForTransformers4(raw))
                }
            }
        case .tokenizers:
            for segment in addedTokens.tokenizersSplit(Array(text.unicodeScalars), normalized: false) {
                guard case .text(let raw) = segment else {
                    if case .token(let content, let matched) = segment { added(content, matched) }
                    continue
                }
                let normalized = TextNormalizer.normalizeForTokenizers(raw)
                for piece in addedTokens.tokenizersSplit(normalized, normalized: true) {
                    switch piece {
                    case .token(let content, let matched): added(content, matched)
                    case .text(let text): encodeWords(text)
                    }
                }
            }
        }
    }

    // MARK: Encoding

    /// The ids of `text` between the start and end tokens, truncated and padded as asked —
    /// transformers' `tokenizer(text, padding=…, truncation=…, max_length=…)`.
    ///
    /// Diffusers encodes prompts with `padding: .maxLength, truncation: true`.
    ///
    /// - Parameters:
    ///   - padding: `.maxLength` pads with `padTokenID` (mask 0) up to `maxLength`.
    ///   - truncation: keep the start token, the first `maxLength − 2` tokens and the end token.
    ///     As in transformers, a `maxLength` of 2 or less truncates nothing.
    ///   - maxLength: the length to truncate and pad to; `modelMaxLength` when nil (and
    ///     neither truncation nor `.maxLength` padding when that is nil too). Padding allocates
    ///     `maxLength` ids: pass a length the model accepts.
    public func encode(_ text: String, padding: PaddingStrategy = .none, truncation: Bool = false,
                       maxLength: Int? = nil) -> TokenizedText {
        encode([text], padding: padding, truncation: truncation, maxLength: maxLength)[0]
    }

    /// Encodes each text as `encode(_:padding:truncation:maxLength:)` does; with `.longest`,
    /// every sequence is padded to the longest of the batch.
    public func encode(_ texts: [String], padding: PaddingStrategy = .none, truncation: Bool = false,
                       maxLength: Int? = nil) -> [TokenizedText] {
        encodedBatch(texts, padding: padding, truncation: truncation, maxLength: maxLength, modelMaxLength: modelMaxLength,
                     padID: padTokenID) { sequence($0, truncation: $1, maxLength: $2) }
    }

    /// The ids between the start and end tokens; `maxLength` nil means no limit to truncate to.
    private func sequence(_ text: String, truncation: Bool, maxLength: Int?) -> [Int] {
        var ids = tokenIDs(text)
        // transformers removes `len + 2 − maxLength` tokens only when fewer than `len` must go.
        if truncation, let maxLength, ids.count + 2 > maxLength, maxLength > 2 {
            ids.removeLast(ids.count + 2 - maxLength)
        }
        return [bosTokenID] + ids + [eosTokenID]
    }
}

/// Appends the UTF-8 encoding of `scalar`.
@inline(__always)
func appendUTF8(_ scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
    let value = scalar.value
    switch value {
    case 0..<0x80:
        bytes.append(UInt8(value))
    case 0x80..<0x800:
        bytes.append(UInt8(0xC0 | value >> 6))
        bytes.append(UInt8(0x80 | value & 0x3F))
    case 0x800..<0x10000:
        bytes.append(UInt8(0xE0 | value >> 12))
        bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
        bytes.append(UInt8(0x80 | value & 0x3F))
    default:
        bytes.append(UInt8(0xF0 | value >> 18))
        bytes.append(UInt8(0x80 | value >> 12 & 0x3F))
        bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
        bytes.append(UInt8(0x80 | value & 0x3F))
    }
}
