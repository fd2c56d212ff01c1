import Foundation
import JSON

/// A token matched verbatim in the input before any other processing (transformers'
/// `AddedToken`): the special tokens and the `added_tokens_decoder` entries of
/// `tokenizer_config.json`.
public struct AddedToken: Equatable, Hashable, Sendable {
    /// The token's text.
    public var content: String
    /// Whether whitespace before the token is removed.
    public var lstrip: Bool
    /// Whether whitespace after the token is removed.
    public var rstrip: Bool
    /// Whether the token only matches as a whole word. With `.transformers4` a token inside a
    /// word is glued to its neighbour and tokenized with it; with `.tokenizers` such a match is
    /// ignored.
    public var singleWord: Bool
    /// Whether the token is looked for in the normalised (lower-cased…) text rather than in the
    /// raw text. Only `.tokenizers` uses it.
    public var normalized: Bool

    /// A token with the given flags (all off by default).
    public init(_ content: String, lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false,
                normalized: Bool = false) {
        self.content = content
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
        self.normalized = normalized
    }
}

/// What `tokenizer_config.json` and `special_tokens_map.json` say, resolved as transformers'
/// `from_pretrained` does.
struct TokenizerConfiguration {
    /// CLIP's context length, used when no configuration gives `model_max_length`.
    static let defaultModelMaxLength = 77
    /// The longest `model_max_length` taken as a limit: sequences are padded to it, so it must
    /// stay an allocatable size (2^20 tokens is far past any text encoder's context).
    static let largestModelMaxLength = 1 << 20
    /// The most `<extra_id_N>` sentinels accepted (T5 has 100, ByT5 125).
    static let largestExtraIDs = 65_536
    /// transformers' `LARGE_INTEGER` (int(1e20)): a `model_max_length` above it means "no
    /// known limit" (the tokenizer was saved without one and transformers wrote
    /// `VERY_LARGE_INTEGER`, int(1e30)).
    static let noLimitThreshold = 1e20

    /// What a tokenizer class assumes where its configuration says nothing (the defaults of its
    /// `__init__` in transformers).
    struct Defaults {
        /// nil: no known limit.
        var modelMaxLength: Int?
        var bos: AddedToken?
        var eos: AddedToken
        var unk: AddedToken
        var pad: AddedToken

        /// `CLIPTokenizer`'s.
        static let clip = Defaults(modelMaxLength: defaultModelMaxLength, bos: AddedToken("<|startoftext|>"),
                                   eos: AddedToken("<|endoftext|>"), unk: AddedToken("<|endoftext|>"),
                                   pad: AddedToken("<|endoftext|>"))
        /// `T5Tokenizer`'s: no start token, and no length limit unless configured.
        static let t5 = Defaults(modelMaxLength: nil, bos: nil, eos: AddedToken("</s>"), unk: AddedToken("<unk>"),
                                 pad: AddedToken("<pad>"))
    }

    /// nil: no known limit.
    var modelMaxLength: Int?
    var cleanUpTokenizationSpaces = false
    var bos: AddedToken?
    var eos: AddedToken
    var unk: AddedToken
    var pad: AddedToken
    var sep: AddedToken?
    var cls: AddedToken?
    var mask: AddedToken?
    var additional: [AddedToken] = []
    /// Whether `additional_special_tokens` is given.
    var hasAdditionalSpecialTokens = false
    /// transformers 5's `extra_special_tokens` when given as a list (its name for
    /// `additional_special_tokens`), nil when absent; only the T5 tokenizer reads it.
    var extraSpecialTokens: [AddedToken]?
    /// `extra_ids`: how many `<extra_id_N>` sentinels a T5 tokenizer has, when configured.
    var extraIDs: Int?
    /// Whether the configuration has `added_tokens_decoder`.
    var hasAddedTokensDecoder = false
    /// `added_tokens_decoder`: id → token.
    var addedTokens: [(id: Int, token: AddedToken)] = []

    /// The special tokens in transformers' order (bos, eos, unk, sep, pad, cls, mask, additional).
    var specialTokens: [AddedToken] {
        [bos].compactMap { $0 } + [eos, unk] + [sep].compactMap { $0 } + [pad] + [cls, mask].compactMap { $0 } + additional
    }

    /// Reads the optional configuration files of `folder`.
    ///
    /// Keys of `special_tokens_map.json` override those of `tokenizer_config.json`, unless the
    /// latter has `added_tokens_decoder` (then, as in transformers, the map is not read). A
    /// special token named in `added_tokens_decoder` takes its flags from there.
    init(folder: String, defaults: Defaults = .clip) throws(TokenizerError) {
        modelMaxLength = defaults.modelMaxLength
        bos = defaults.bos
        eos = defaults.eos
        unk = defaults.unk
        pad = defaults.pad
        let configPath = folder + "/tokenizer_config.json"
        let mapPath = folder + "/special_tokens_map.json"
        var sources: [(path: String, members: [(key: String, value: JSONValue)])] = []
        if let config = try Self.readObject(configPath) { sources.append((configPath, config)) }
        let hasAddedTokens = sources.first?.members.contains { $0.key == "added_tokens_decoder" } ?? false
        if !hasAddedTokens, let map = try Self.readObject(mapPath) { sources.append((mapPath, map)) }

        var specials: [String: AddedToken?] = [:]
        var additional: [AddedToken] = []
        for (path, members) in sources {
            for (key, value) in members {
                switch key {
                case "model_max_length" where path == configPath:
                    modelMaxLength = try Self.length(value, path: path, key: key)
                case "bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token":
                    specials[key] = try Self.token(value, path: path, key: key)
                case "additional_special_tokens":
                    guard case .array(let elements) = value else {
                        throw .invalidConfiguration(path: path, key: key, reason: "must be an array, found \(value.typeName)")
                    }
                    additional = []
                    hasAdditionalSpecialTokens = true
                    for element in elements {
                        if let token = try Self.token(element, path: path, key: key) { additional.append(token) }
                    }
                case "extra_special_tokens":
                    // A list is transformers 5's additional special tokens; an object names
                    // model-specific tokens, which no tokenizer here uses.
                    guard case .array(let elements) = value else { continue }
                    var tokens: [AddedToken] = []
                    for element in elements {
                        if let token = try Self.token(element, path: path, key: key) { tokens.append(token) }
                    }
                    extraSpecialTokens = tokens
                case "extra_ids" where path == configPath:
                    // Each is a special token to match: a bound keeps a bad value from exhausting memory.
                    guard let count = value.intValue, (0...Self.largestExtraIDs).contains(count) else {
                        throw .invalidConfiguration(path: path, key: key, reason: "must be an integer in 0...\(Self.largestExtraIDs)")
                    }
                    extraIDs = count
                case "clean_up_tokenization_spaces" where path == configPath:
                    guard case .bool(let flag) = value else {
                        throw .invalidConfiguration(path: path, key: key, reason: "must be true or false")
                    }
                    cleanUpTokenizationSpaces = flag
                case "added_tokens_decoder" where path == configPath:
                    addedTokens = try Self.addedTokens(value, path: path)
                    hasAddedTokensDecoder = true
                default:
                    continue
                }
            }
        }
        let byContent = Dictionary(addedTokens.map { ($0.token.content, $0.token) }, uniquingKeysWith: { $1 })
        func resolve(_ key: String) -> AddedToken? {
            guard let token = specials[key] ?? nil else { return nil }
            return byContent[token.content] ?? token
        }
        // Defaults too take their flags from `added_tokens_decoder` (transformers 5 does so).
        bos = resolve("bos_token") ?? bos.map { byContent[$0.content] ?? $0 }
        eos = resolve("eos_token") ?? byContent[eos.content] ?? eos
        unk = resolve("unk_token") ?? byContent[unk.content] ?? unk
        pad = resolve("pad_token") ?? byContent[pad.content] ?? pad
        sep = resolve("sep_token")
        cls = resolve("cls_token")
        mask = resolve("mask_token")
        self.additional = additional.map { byContent[$0.content] ?? $0 }
        extraSpecialTokens = extraSpecialTokens?.map { byContent[$0.content] ?? $0 }
    }

    /// The members of a JSON object file, or nil when there is no such file.
    private static func readObject(_ path: String) throws(TokenizerError) -> [(key: String, value: JSONValue)]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let value = try VocabularyFiles.readJSON(path)
        guard case .object(let members) = value else {
            throw .invalidConfiguration(path: path, key: "(top level)", reason: "must be a JSON object, found \(value.typeName)")
        }
        return members
    }

    /// A length limit (1...`largestModelMaxLength`), or nil for transformers' "no known limit"
    /// (null, or any number above `noLimitThreshold`, as transformers reads them). Lengths in
    /// between are refused: taken as a limit they would size the padding of every sequence.
    private static func length(_ value: JSONValue, path: String, key: String) throws(TokenizerError) -> Int? {
        let limits = 1...largestModelMaxLength
        if value.isNull { return nil }
        if let length = value.intValue, limits.contains(length) { return length }
        guard let length = value.doubleValue, NumberRule.positive.admits(length), length == length.rounded() else {
            throw .invalidConfiguration(path: path, key: key, reason: "must be a positive integer")
        }
        if length > noLimitThreshold { return nil }
        if length <= Double(limits.upperBound) { return Int(length) }
        // Past any context a text encoder has, yet not transformers' marker: refused rather
        // than taken as a length that every padded sequence would be sized by.
        throw .invalidConfiguration(path: path, key: key,
                                    reason: "must be at most \(limits.upperBound), or above 1e20 for no known limit, not \(text(of: value))")
    }

    /// A value as the file states it (numbers by their literal text).
    private static func text(of value: JSONValue) -> String {
        if case .number(let literal) = value { return literal }
        return value.typeName
    }

    /// A special token given as a string or as a serialised `AddedToken` object; nil for null.
    /// `normalized` is false unless the object says otherwise (or, for a token that is not
    /// special, true unless it says otherwise), as for tokenizers' `AddedToken`.
    static func token(_ value: JSONValue, path: String, key: String,
                              special: Bool = true) throws(TokenizerError) -> AddedToken? {
        switch value {
        case .null:
            return nil
        case .string(let content):
            return AddedToken(content)
        case .object:
            guard case .string(let content)? = value.lastMember("content") else {
                throw .invalidConfiguration(path: path, key: key, reason: "must have a string \"content\"")
            }
            func flag(_ name: String, default: Bool = false) throws(TokenizerError) -> Bool {
                switch value.lastMember(name) {
                case nil: return `default`
                case .bool(let flag)?: return flag
                default: throw .invalidConfiguration(path: path, key: key, reason: "has a non-boolean \"\(name)\"")
                }
            }
            let isSpecial = try flag("special", default: special)
            return AddedToken(content, lstrip: try flag("lstrip"), rstrip: try flag("rstrip"),
                              singleWord: try flag("single_word"), normalized: try flag("normalized", default: !isSpecial))
        default:
            throw .invalidConfiguration(path: path, key: key, reason: "must be a string or a token object, found \(value.typeName)")
        }
    }

    private static func addedTokens(_ value: JSONValue, path: String) throws(TokenizerError) -> [(id: Int, token: AddedToken)] {
        let key = "added_tokens_decoder"
        guard case .object(let members) = value else {
            throw .invalidConfiguration(path: path, key: key, reason: "must be an object, found \(value.typeName)")
        }
        var tokens: [(id: Int, token: AddedToken)] = []
        for member in members {
            guard let id = Int(member.key), id >= 0, id <= Int(Int32.max) else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a key \"\(member.key)\" that is not a token id")
            }
            guard let token = try token(member.value, path: path, key: key, special: false) else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a null token for id \(id)")
            }
            tokens.append((id, token))
        }
        return tokens
    }
}
