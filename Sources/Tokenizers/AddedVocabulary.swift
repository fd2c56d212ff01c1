/// The added tokens of a tokenizer — the `added_tokens_decoder` of `tokenizer_config.json`, then
/// the special tokens —, each with its id, and the splitting of text at them.
///
/// `.transformers4` reproduces transformers 4's `PreTrainedTokenizer.tokenize`: the raw text is
/// cut at the leftmost, longest occurrence of any added token, and so on; then each token's
/// `rstrip`/`lstrip` removes whitespace from its neighbours, and a `singleWord` token not
/// separated by a space is glued to its neighbour.
///
/// `.tokenizers` reproduces the tokenizers library's `AddedVocabulary`: tokens that are not
/// `normalized` are cut out of the raw text, the rest of the text is normalised, and then the
/// `normalized` tokens are cut out of it. A match takes in the whitespace before it (`lstrip`)
/// or after it (`rstrip`); a `singleWord` match with a word character beside it is ignored.
struct AddedVocabulary: Sendable {
    /// A piece of text: an added token (its content, and the text it matched, which can differ
    /// by case or surrounding whitespace with `.tokenizers`), or text between them.
    enum Segment {
        case token(content: String, matched: String)
        case text([Unicode.Scalar])
    }

    /// Id → token.
    private(set) var decoder: [Int: AddedToken] = [:]
    /// Content → id. It can keep a content whose id another token took over, as transformers 4 does.
    private(set) var encoder: [String: Int] = [:]
    private let compatibility: CLIPTokenizer.Compatibility
    /// Tokens looked for in the raw text (all of them with `.transformers4`).
    private let rawMatcher: TokenMatcher
    /// Tokens looked for in the normalised text (`.tokenizers` only), by their normalised form.
    private let normalizedMatcher: TokenMatcher
    /// The content of each normalised form.
    private let normalizedContents: [String: String]

    /// - Parameters:
    ///   - configured: `added_tokens_decoder` entries in file order.
    ///   - specials: the special tokens in transformers' order (bos, eos, unk, sep, pad, cls, mask,
    ///     additional). With `.transformers4` the first of several with the same content sets its
    ///     flags, with `.tokenizers` the last.
    ///   - vocabularyID: the id of a string in `vocab.json`.
    ///   - vocabularyCount: the number of distinct strings of `vocab.json`.
    ///   - normalizer: with `.tokenizers`, the tokenizer's normaliser, which gives the form a
    ///     `normalized` token is looked for in (CLIP's when nil).
    init(configured: [(id: Int, token: AddedToken)], specials: [AddedToken],
         vocabularyID: (String) -> Int?, vocabularyCount: Int, compatibility: CLIPTokenizer.Compatibility,
         normalizer: (([Unicode.Scalar]) -> [Unicode.Scalar])? = nil) {
        self.compatibility = compatibility
        var order: [Int] = []
        for (id, token) in configured {
            if decoder.updateValue(token, forKey: id) == nil { order.append(id) }
        }
        for id in order { if let token = decoder[id] { encoder[token.content] = id } }

        // A special token keeps the id it has among the added tokens or in the vocabulary; a new
        // one takes the next id after both (transformers' `_add_tokens`).
        var nextID = vocabularyCount + encoder.keys.filter { vocabularyID($0) == nil }.count
        var seen: Set<String> = []
        for token in specials where !token.content.isEmpty {
            if seen.contains(token.content) && compatibility == .transformers4 { continue }
            seen.insert(token.content)
            let id: Int
            if let known = encoder[token.content] ?? vocabularyID(token.content) {
                id = known
            } else {
                id = nextID
                nextID += 1
            }
            decoder[id] = token
            encoder[token.content] = id
        }

        let tokens = Array(decoder.values)
        var normalizedContents: [String: String] = [:]
        switch compatibility {
        case .transformers4:
            rawMatcher = TokenMatcher(tokens.map(\.content))
        case .tokenizers:
            rawMatcher = TokenMatcher(tokens.filter { !$0.normalized }.map(\.content))
            // A normalised token is looked for in its normalised form (tokenizers'
            // `refresh_added_tokens`).
            for token in tokens where token.normalized {
                let scalars = Array(token.content.unicodeScalars)
                let form = normalizer?(scalars) ?? TextNormalizer.normalizeForTokenizers(scalars)
                normalizedContents[Self.string(form[...])] = token.content
            }
        }
        normalizedMatcher = TokenMatcher(Array(normalizedContents.keys))
        self.normalizedContents = normalizedContents
    }

    /// The id of `piece` if it is an added token (and so stands for its own id).
    func id(of piece: String) -> Int? { encoder[piece] }

    private func token(_ content: String) -> AddedToken? { encoder[content].flatMap { decoder[$0] } }

    /// `.transformers4`: the pieces of `text`, added tokens and the text between them.
    func pythonSplit(_ text: String) -> [Segment] {
        let scalars = Array(text.unicodeScalars)
        let matches = rawMatcher.matches(in: scalars)
        if matches.isEmpty && encoder[text] == nil { return scalars.isEmpty ? [] : [.text(scalars)] }
        var pieces: [String] = []
        var end = 0
        for match in matches {
            if end < match.lowerBound { pieces.append(Self.string(scalars[end..<match.lowerBound])) }
            pieces.append(Self.string(scalars[match]))
            end = match.upperBound
        }
        if end < scalars.count { pieces.append(Self.string(scalars[end...])) }

        for index in pieces.indices {
            guard let token = token(pieces[index]) else { continue }
            // The neighbours as they were before stripping decide on gluing, as in transformers.
            let left = index > 0 ? pieces[index - 1] : ""
            let right = index + 1 < pieces.count ? pieces[index + 1] : ""
            if token.rstrip && !right.isEmpty { pieces[index + 1] = pythonLStrip(right) }
            if token.lstrip && !left.isEmpty { pieces[index - 1] = pythonRStrip(left) }
            if token.singleWord && !left.isEmpty && left.unicodeScalars.last != " " {
                pieces[index - 1] += pieces[index]
                pieces[index] = ""
            } else if token.singleWord && !right.isEmpty && right.unicodeScalars.first != " " {
                pieces[index + 1] = pieces[index] + pieces[index + 1]
                pieces[index] = ""
            }
        }
        return pieces.filter { !$0.isEmpty }.map {
            encoder[$0] != nil ? .token(content: $0, matched: $0) : .text(Array($0.unicodeScalars))
        }
    }

    /// `.tokenizers`: the pieces of `text` (raw when `normalized` is false, normalised when true),
    /// cut at the tokens of that kind.
    func tokenizersSplit(_ text: [Unicode.Scalar], normalized: Bool) -> [Segment] {
        let matches = (normalized ? normalizedMatcher : rawMatcher).matches(in: text)
        if matches.isEmpty { return text.isEmpty ? [] : [.text(text)] }
        var segments: [Segment] = []
        var end = 0
        for match in matches {
            let form = Self.string(text[match])
            let content = normalized ? normalizedContents[form] ?? form : form
            guard let token = token(content) else { continue }
            var start = match.lowerBound
            var stop = match.upperBound
            if token.singleWord {
                let wordBefore = start > 0 && isWordCharacter(text[start - 1])
                let wordAfter = stop < text.count && isWordCharacter(text[stop])
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                while start > end, text[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rstrip {
                while stop < text.count, text[stop].properties.isWhitespace { stop += 1 }
            }
            start = max(start, end)
            if end < start { segments.append(.text(Array(text[end..<start]))) }
            segments.append(.token(content: content, matched: Self.string(text[start..<stop])))
            end = stop
        }
        if end < text.count { segments.append(.text(Array(text[end...]))) }
        return segments
    }

    /// The regular-expression `\w` of the tokenizers library (Rust's Unicode word characters).
    private func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return properties.isAlphabetic || properties.isJoinControl
        }
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

/// Finds added tokens in text: the leftmost occurrence of any of them, the longest there, then
/// the same after it, and so on (an Aho–Corasick leftmost-longest search, as both transformers'
/// trie and the tokenizers library do).
struct TokenMatcher: Sendable {
    /// Tokens by their first character, longest first.
    private let candidates: [Unicode.Scalar: [[Unicode.Scalar]]]

    init(_ contents: [String]) {
        var candidates: [Unicode.Scalar: [[Unicode.Scalar]]] = [:]
        for content in Set(contents) {
            let scalars = Array(content.unicodeScalars)
            guard let first = scalars.first else { continue }
            candidates[first, default: []].append(scalars)
        }
        self.candidates = candidates.mapValues { $0.sorted { $0.count > $1.count } }
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        guard !candidates.isEmpty else { return [] }
        var matches: [Range<Int>] = []
        var index = 0
        while index < text.count {
            if let tokens = candidates[text[index]],
               let match = tokens.first(where: { text[index...].starts(with: $0) }) {
                matches.append(index..<index + match.count)
                index += match.count
            } else {
                index += 1
            }
        }
        return matches
    }
}

/// Python's `str.lstrip()`.
func pythonLStrip(_ text: String) -> String {
    String(text.unicodeScalars.drop(while: isPythonWhitespace))
}

/// Python's `str.rstrip()`.
func pythonRStrip(_ text: String) -> String {
    var scalars = text.unicodeScalars[...]
    while let last = scalars.last, isPythonWhitespace(last) { scalars = scalars.dropLast() }
    return String(scalars)
}

/// Python's `str.strip()`.
func pythonStrip(_ text: String) -> String { pythonRStrip(pythonLStrip(text)) }
