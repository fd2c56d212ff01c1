import JSON

/// What a SentencePiece-converted `tokenizer.json` (T5's) holds that transformers 5 reads: the
/// Unigram model, the `precompiled_charsmap` of its normaliser, and its added tokens.
struct UnigramTokenizerFile {
    /// `model.vocab`: the pieces with their scores, in id order.
    var vocabulary: [(piece: String, score: Double)]
    /// `model.unk_id` (nil when null or absent).
    var unknownID: Int?
    /// `model.byte_fallback`.
    var byteFallback: Bool
    /// The first `Precompiled` normaliser's table (the normaliser itself or a member of its
    /// `Sequence`), as transformers 5 looks for it; nil when there is none.
    var charsmap: PrecompiledCharsmap?
    /// `added_tokens`: id → token, in file order.
    var addedTokens: [(id: Int, token: AddedToken)]
    /// The normaliser, pre-tokeniser and post-processor as written, when asked for.
    var pipeline: TokenizerJSONPipeline?

    /// Reads and checks the file at `path`; with `readsPipeline`, its pipeline too.
    init(path: String, readsPipeline: Bool = false) throws(TokenizerError) {
        let root = try VocabularyFiles.readJSON(path)
        guard root.objectMembers != nil else {
            throw .invalidConfiguration(path: path, key: "(top level)", reason: "must be a JSON object, found \(root.typeName)")
        }
        guard let model = root.lastMember("model"), model.objectMembers != nil else {
            throw .invalidConfiguration(path: path, key: "model", reason: "is missing: a tokenizer.json needs a \"model\" object")
        }
        // Old files may leave out the type; the tokenizers library then goes by the shape.
        if let type = model.lastMember("type"), type.stringValue != "Unigram" {
            throw .unsupportedModel(path: path, type: type.stringValue ?? type.typeName, expected: "Unigram")
        }
        vocabulary = try Self.vocabulary(model, path: path)

        switch model.lastMember("unk_id") {
        case nil, .null?:
            unknownID = nil
        case let value?:
            guard let id = value.intValue else {
                throw .invalidConfiguration(path: path, key: "model.unk_id", reason: "must be an integer or null")
            }
            guard (0..<vocabulary.count).contains(id) else {
                throw .unknownTokenIDOutOfRange(path: path, id: id, vocabularySize: vocabulary.count)
            }
            unknownID = id
        }
        switch model.lastMember("byte_fallback") {
        case nil, .null?: byteFallback = false
        case .bool(let flag)?: byteFallback = flag
        default: throw .invalidConfiguration(path: path, key: "model.byte_fallback", reason: "must be true or false")
        }
        charsmap = try Self.charsmap(root.lastMember("normalizer"), path: path)
        addedTokens = try Self.addedTokens(root.lastMember("added_tokens"), path: path)
        pipeline = readsPipeline ? try TokenizerJSONPipeline(root: root, path: path) : nil
    }

    private static func vocabulary(_ model: JSONValue, path: String) throws(TokenizerError) -> [(piece: String, score: Double)] {
        guard let vocab = model.lastMember("vocab") else {
            throw .invalidConfiguration(path: path, key: "model.vocab",
                                        reason: "is missing: a Unigram model needs its list of [piece, score] pairs")
        }
        guard let entries = vocab.arrayValue else {
            throw .invalidConfiguration(path: path, key: "model.vocab",
                                        reason: "must be a list of [piece, score] pairs, found \(vocab.typeName)")
        }
        guard !entries.isEmpty else {
            throw .invalidConfiguration(path: path, key: "model.vocab", reason: "is empty: a Unigram model needs at least its unknown token")
        }
        var pieces: [(piece: String, score: Double)] = []
        pieces.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            guard let pair = entry.arrayValue, pair.count == 2 else {
                throw .invalidUnigramPiece(path: path, index: index, reason: "is not a [piece, score] pair")
            }
            guard let piece = pair[0].stringValue else {
                throw .invalidUnigramPiece(path: path, index: index, reason: "has a piece that is not a string")
            }
            // The tokenizers library reads scores as float64 and rejects NaN and infinities (not JSON).
            guard let score = pair[1].doubleValue, score.isFinite else {
                throw .invalidUnigramPiece(path: path, index: index, reason: "has a score that is not a finite number")
            }
            pieces.append((piece, score))
        }
        return pieces
    }

    private static func charsmap(_ normalizer: JSONValue?, path: String) throws(TokenizerError) -> PrecompiledCharsmap? {
        guard let normalizer, !normalizer.isNull else { return nil }
        guard normalizer.objectMembers != nil else {
            throw .invalidConfiguration(path: path, key: "normalizer", reason: "must be an object or null, found \(normalizer.typeName)")
        }
        var members = [normalizer]
        if normalizer.lastMember("type")?.stringValue == "Sequence" {
            members = normalizer.lastMember("normalizers")?.arrayValue ?? []
        }
        guard let precompiled = members.first(where: { $0.lastMember("type")?.stringValue == "Precompiled" }) else {
            return nil
        }
        return try charsmap(of: precompiled, path: path)
    }

    /// The table of a `Precompiled` normaliser object.
    static func charsmap(of precompiled: JSONValue, path: String) throws(TokenizerError) -> PrecompiledCharsmap {
        guard let encoded = precompiled.lastMember("precompiled_charsmap") else {
            throw .invalidCharsmap(path: path, reason: "is missing from the Precompiled normalizer")
        }
        guard let text = encoded.stringValue else { throw .invalidCharsmap(path: path, reason: "is not a string") }
        guard let data = Base64.decode(text) else { throw .invalidCharsmap(path: path, reason: "is not valid base64") }
        return try PrecompiledCharsmap(data: data, path: path)
    }

    private static func addedTokens(_ value: JSONValue?, path: String) throws(TokenizerError) -> [(id: Int, token: AddedToken)] {
        guard let value, !value.isNull else { return [] }
        guard let entries = value.arrayValue else {
            throw .invalidConfiguration(path: path, key: "added_tokens", reason: "must be an array, found \(value.typeName)")
        }
        var tokens: [(id: Int, token: AddedToken)] = []
        for entry in entries {
            guard let id = entry.lastMember("id")?.intValue, (0...Int(Int32.max)).contains(id) else {
                throw .invalidConfiguration(path: path, key: "added_tokens", reason: "has an entry without an integer \"id\"")
            }
            guard let token = try TokenizerConfiguration.token(entry, path: path, key: "added_tokens", special: false) else {
                throw .invalidConfiguration(path: path, key: "added_tokens", reason: "has a null token for id \(id)")
            }
            tokens.append((id, token))
        }
        return tokens
    }
}
