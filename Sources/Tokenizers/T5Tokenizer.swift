import Foundation

/// T5's SentencePiece Unigram tokenizer, giving the ids that Diffusers' FLUX pipelines get from
/// transformers 5's `T5TokenizerFast` (an alias of `T5Tokenizer` there) for `tokenizer_2`.
///
/// The pipeline, as transformers 5.24 builds it from `tokenizer.json`:
/// 1. the special tokens (`<pad>`, `</s>`, `<unk>`, `<extra_id_N>`, and any others configured)
///    are cut out of the raw text and stand for their ids;
/// 2. each remaining segment is normalised by SentencePiece's precompiled charsmap only;
/// 3. it is split at whitespace, and each word gets a leading `▁` and is cut before each `▁`;
/// 4. each piece is encoded by the Unigram model (unk id 2, no byte fallback);
/// 5. `</s>` is appended, after truncation to `maxLength − 1` ids, then `<pad>` pads on the right.
///
/// transformers 5 takes only the vocabulary, the charsmap and the added tokens from
/// `tokenizer.json` and rebuilds the rest (normaliser, pre-tokeniser, post-processor; unk id 2).
/// transformers 4's `T5TokenizerFast` used the file as written instead (`Compatibility`
/// chooses), which for files converted by transformers 4.37 or later means a normaliser of
/// `Precompiled`, `Strip(right)` and `Replace(/ {2,}/, "▁")` and a lone `Metaspace` pre-tokeniser
/// (`prepend_scheme` "always", or "first" with `legacy: false`). Ordinary prompts give the same
/// ids; they differ on whitespace the charsmap leaves alone (tabs, newlines, U+2028: transformers
/// 5 splits at them, transformers 4 keeps them in pieces), on runs of a literal `▁`, and, under
/// "first", on the text after a literal special token (no `▁` is prepended there). Older
/// conversions (before 4.37) had no `Strip`, so a trailing space gave a trailing `▁` (id 3).
/// (A transformers 4 configuration with `add_prefix_space` set makes transformers 4 convert
/// `spiece.model` again instead of reading `tokenizer.json`; that conversion is 4.37+'s.)
///
/// ```swift
/// let tokenizer = try T5Tokenizer(folder: "flux/tokenizer_2")
/// let input = tokenizer.encode("a photo of a cat", padding: .maxLength, truncation: true, maxLength: 512)
/// // input.ids: the pieces' ids, 1 (</s>), then 0 (<pad>) up to 512 ids
/// ```
///
/// Only `tokenizer.json` is read for the model (not `spiece.model`). Encoding is thread-safe.
public final class T5Tokenizer: Sendable {
    /// Which implementation's ids to reproduce.
    public enum Compatibility: Sendable, Equatable {
        /// transformers 5's `T5Tokenizer` / `T5TokenizerFast`: the pipeline rebuilt around the
        /// file's vocabulary and charsmap (what current Diffusers gets).
        case transformers5
        /// `tokenizer.json` as written: transformers 4's `T5TokenizerFast`, and the tokenizers
        /// library's `Tokenizer.from_file` (its normaliser, pre-tokeniser, post-processor,
        /// `unk_id` and `byte_fallback`). Components other than SentencePiece conversions' are
        /// refused with an error.
        case tokenizerJSON
    }

    /// The id transformers 5's `T5Tokenizer` gives the unknown token, whatever the file says.
    static let unknownID = 2

    /// The implementation whose ids this tokenizer reproduces.
    public let compatibility: Compatibility
    /// The longest sequence the text model accepts (`model_max_length`, 512 for FLUX's T5), or
    /// nil when the configuration gives none (transformers' int(1e30) included). Then `encode`
    /// without a `maxLength` neither truncates nor pads; FluxPipeline passes 512 (its
    /// `max_sequence_length`).
    public let modelMaxLength: Int?
    /// The id of the end token `</s>`, put after every sequence.
    public let eosTokenID: Int
    /// The id used for padding (`<pad>`).
    public let padTokenID: Int
    /// The id given to text that the vocabulary cannot cover (`<unk>`).
    public let unkTokenID: Int
    /// The ids of every special token (end, unknown, padding, the `<extra_id_N>` sentinels and
    /// any others configured).
    public let specialTokenIDs: Set<Int>
    /// The number of pieces of the Unigram model (extra ids included: 32100 for T5).
    public let vocabularySize: Int

    private let model: UnigramModel
    /// transformers 5's normaliser (`.tokenizerJSON`: the file's, in `pipeline`).
    private let charsmap: PrecompiledCharsmap?
    private let pipeline: TokenizerJSONPipeline?
    private let preTokenizer: MetaspacePreTokenizer
    /// The ids the post-processor puts around the sequence.
    private let prefixIDs: [Int]
    private let suffixIDs: [Int]
    private let addedTokens: AddedVocabulary
    /// Id → token for ids past the model's pieces (added tokens new to the vocabulary).
    private let addedTokenStrings: [Int: String]

    /// Loads a tokenizer folder: `tokenizer.json` (required) and the optional
    /// `tokenizer_config.json` and `special_tokens_map.json` (`model_max_length`, special tokens,
    /// `extra_ids`, `added_tokens_decoder`).
    ///
    /// - Throws: `TokenizerError` naming the file at fault.
    public convenience init(folder: URL, compatibility: Compatibility = .transformers5) throws(TokenizerError) {
        try self.init(folder: folder.path, compatibility: compatibility)
    }

    /// Loads a tokenizer folder given by its path; see `init(folder: URL, compatibility:)`.
    public init(folder: String, compatibility: Compatibility = .transformers5) throws(TokenizerError) {
        self.compatibility = compatibility
        let path = folder + "/tokenizer.json"
        let file = try UnigramTokenizerFile(path: path, readsPipeline: compatibility == .tokenizerJSON)
        let configuration = try TokenizerConfiguration(folder: folder, defaults: .t5)
        let model: UnigramModel
        switch compatibility {
        case .transformers5:
            guard Self.unknownID < file.vocabulary.count else {
                throw .unknownTokenIDOutOfRange(path: path, id: Self.unknownID, vocabularySize: file.vocabulary.count)
            }
            model = UnigramModel(vocabulary: file.vocabulary, unknownID: Self.unknownID, byteFallback: false)
            charsmap = file.charsmap
            pipeline = nil
            preTokenizer = .transformers5
        case .tokenizerJSON:
            // The reference fails on the first unknown character without one.
            guard let unknownID = file.unknownID else {
                throw .invalidConfiguration(path: path, key: "model.unk_id", reason: "is null, but this tokenizer needs an unknown-token id")
            }
            model = UnigramModel(vocabulary: file.vocabulary, unknownID: unknownID, byteFallback: file.byteFallback)
            charsmap = nil
            pipeline = file.pipeline
            preTokenizer = file.pipeline?.preTokenizer ?? .transformers5
        }
        self.model = model

        let sentinels = (0..<(configuration.extraIDs ?? 100)).map { AddedToken("<extra_id_\($0)>") }
        let extra: [AddedToken]
        switch compatibility {
        case .transformers5:
            // The list in `extra_special_tokens`, else `additional_special_tokens`, else T5's
            // `<extra_id_0>` … `<extra_id_{extra_ids − 1}>`.
            extra = configuration.extraSpecialTokens
                ?? (configuration.hasAdditionalSpecialTokens ? configuration.additional : sentinels)
        case .tokenizerJSON:
            // transformers 4: `additional_special_tokens`, with the sentinels added when it has
            // none of them (it knows no `extra_special_tokens`).
            let listed = configuration.hasAdditionalSpecialTokens ? configuration.additional : []
            extra = listed.contains { $0.content.contains("<extra_id_") } ? listed : listed + sentinels
        }
        var specials = configuration
        specials.additional = extra
        // Without `added_tokens_decoder` in the configuration, transformers takes the added
        // tokens of tokenizer.json.
        let configured = configuration.hasAddedTokensDecoder ? configuration.addedTokens : file.addedTokens
        let normalize: @Sendable ([Unicode.Scalar]) -> [Unicode.Scalar]
        if let pipeline = file.pipeline {
            normalize = { pipeline.normalize($0) }
        } else {
            let charsmap = file.charsmap
            normalize = { charsmap?.normalize($0) ?? $0 }
        }
        let added = AddedVocabulary(configured: configured, specials: specials.specialTokens,
                                    vocabularyID: { model.id(of: $0) }, vocabularyCount: model.pieces.count,
                                    compatibility: .tokenizers, normalizer: normalize)
        addedTokens = added
        let unk = model.unknownID
        func id(_ token: String) -> Int { added.id(of: token) ?? model.id(of: token) ?? unk }
        unkTokenID = unk
        eosTokenID = id(configuration.eos.content)
        padTokenID = id(configuration.pad.content)
        specialTokenIDs = Set(specials.specialTokens.map { id($0.content) })
        prefixIDs = pipeline?.prefixIDs ?? []
        suffixIDs = pipeline?.suffixIDs ?? [eosTokenID]
        modelMaxLength = configuration.modelMaxLength
        vocabularySize = model.pieces.count
        addedTokenStrings = added.decoder.filter { $0.key >= model.pieces.count }.mapValues(\.content)
    }

    // MARK: Tokenising

    /// The tokens of `text` without the end token, as transformers' `tokenize` gives them: added
    /// tokens verbatim, pieces with `▁` for word starts, and an unknown run as the text it covers.
    public func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        forEachToken(of: text) { token, _ in tokens.append(token) }
        return tokens
    }

    /// The ids of `text` without the end token, untruncated.
    public func tokenIDs(_ text: String) -> [Int] {
        var ids: [Int] = []
        forEachToken(of: text) { _, id in ids.append(id) }
        return ids
    }

    /// The token (piece or added token) of `id`, as transformers' `convert_ids_to_tokens` gives it.
    public func token(forID id: Int) -> String? {
        if let added = addedTokens.decoder[id] { return added.content }
        return model.pieces.indices.contains(id) ? model.pieces[id] : addedTokenStrings[id]
    }

    private func forEachToken(of text: String, _ body: (String, Int) -> Void) {
        for (index, segment) in addedTokens.tokenizersSplit(Array(text.unicodeScalars), normalized: false).enumerated() {
            switch segment {
            case .token(let content, _):
                body(content, addedTokens.id(of: content) ?? unkTokenID)
            case .text(let raw):
                let normalized = pipeline?.normalize(raw) ?? charsmap?.normalize(raw) ?? raw
                for (position, piece) in addedTokens.tokenizersSplit(normalized, normalized: true).enumerated() {
                    switch piece {
                    case .token(let content, _):
                        body(content, addedTokens.id(of: content) ?? unkTokenID)
                    case .text(let text):
                        // Only text at offset 0 of the input counts as its start ("first").
                        for word in preTokenizer.pieces(text, startsText: index == 0 && position == 0) {
                            for token in model.encode(word) { body(token.text, token.id) }
                        }
                    }
                }
            }
        }
    }

    // MARK: Encoding

    /// The ids of `text` followed by `</s>` (`.tokenizerJSON`: between the post-processor's special
    /// tokens), truncated and padded as asked — transformers'
    /// `tokenizer(text, padding=…, truncation=…, max_length=…)`.
    ///
    /// FluxPipeline encodes prompts with `padding: .maxLength, truncation: true, maxLength: 512`.
    ///
    /// - Parameters:
    ///   - padding: `.maxLength` pads with `padTokenID` (mask 0) on the right up to `maxLength`.
    ///   - truncation: keep the first `maxLength − 1` tokens, then `</s>`. As in transformers, a
    ///     `maxLength` of 0 (or less) truncates nothing.
    ///   - maxLength: the length to truncate and pad to; `modelMaxLength` when nil (and neither
    ///     truncation nor `.maxLength` padding when that is nil too). Padding allocates
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

    /// The ids between the post-processor's (`</s>` after them); `maxLength` nil means no limit
    /// to truncate to. The special tokens are always kept, even past a `maxLength` smaller than
    /// their count (where the reference fails).
    private func sequence(_ text: String, truncation: Bool, maxLength: Int?) -> [Int] {
        var ids = tokenIDs(text)
        let added = prefixIDs.count + suffixIDs.count
        if truncation, let maxLength, maxLength > 0, ids.count + added > maxLength {
            ids.removeLast(min(ids.count, ids.count + added - maxLength))
        }
        return prefixIDs + ids + suffixIDs
    }
}
