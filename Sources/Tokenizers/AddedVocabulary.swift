/// The added tokens of a tokenizer (transformers' `_added_tokens_decoder` and
/// `_added_tokens_encoder`): the `added_tokens_decoder` of `tokenizer_config.json`, then the
/// special tokens, each with its id.
///
/// Text is split at them before normalisation, as transformers' `PreTrainedTokenizer.tokenize`
/// does with its trie: the leftmost occurrence of any added token, the longest at that place,
/// is cut out, and so on to the end. Then each token's `rstrip`/`lstrip` removes whitespace from
/// its neighbours, and a `singleWord` token not separated by a space is glued to its neighbour.
struct AddedVocabulary: Sendable {
    /// Id → token.
    private(set) var decoder: [Int: AddedToken] = [:]
    /// Content → id. It can keep a content whose id another token took over, as transformers' does.
    private(set) var encoder: [String: Int] = [:]
    /// Tokens searched for in the text (the decoder's), by their first UTF-8 byte, longest first.
    private let candidates: [[[UInt8]]]

    /// - Parameters:
    ///   - configured: `added_tokens_decoder` entries in file order.
    ///   - specials: the special tokens in transformers' order (bos, eos, unk, sep, pad, cls, mask,
    ///     additional).
    ///   - vocabularyID: the id of a string in `vocab.json`.
    ///   - vocabularyCount: the number of distinct strings of `vocab.json`.
    init(configured: [(id: Int, token: AddedToken)], specials: [AddedToken],
         vocabularyID: (String) -> Int?, vocabularyCount: Int) {
        var order: [Int] = []
        for (id, token) in configured {
            if decoder.updateValue(token, forKey: id) == nil { order.append(id) }
        }
        for id in order { if let token = decoder[id] { encoder[token.content] = id } }

        // transformers' `_add_tokens`: a special token keeps the id it has among the added tokens
        // or in the vocabulary; a new one takes the next id after both.
        var nextID = vocabularyCount + encoder.keys.filter { vocabularyID($0) == nil }.count
        var seen: Set<String> = []
        for token in specials where !token.content.isEmpty && seen.insert(token.content).inserted {
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

        var candidates = [[[UInt8]]](repeating: [], count: 256)
        for content in Set(decoder.values.map(\.content)) {
            let bytes = Array(content.utf8)
            guard let first = bytes.first else { continue }
            candidates[Int(first)].append(bytes)
        }
        self.candidates = candidates.map { $0.sorted { $0.count > $1.count } }
    }

    /// The id of `piece` if it is an added token (and so stands for its own id).
    func id(of piece: String) -> Int? { encoder[piece] }

    /// The pieces of `text`: added tokens and the text between them, with empty pieces removed.
    func split(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var pieces: [String] = []
        var pieceStart = 0
        var index = 0
        while index < bytes.count {
            // Matches start on character boundaries (not on UTF-8 continuation bytes).
            if bytes[index] & 0xC0 != 0x80,
               let match = candidates[Int(bytes[index])].first(where: { bytes[index...].starts(with: $0) }) {
                if pieceStart < index { pieces.append(String(decoding: bytes[pieceStart..<index], as: UTF8.self)) }
                pieces.append(String(decoding: match, as: UTF8.self))
                index += match.count
                pieceStart = index
            } else {
                index += 1
            }
        }
        if pieces.isEmpty { return text.isEmpty ? [] : [text] }
        if pieceStart < bytes.count { pieces.append(String(decoding: bytes[pieceStart...], as: UTF8.self)) }
        return applyFlags(pieces)
    }

    private func applyFlags(_ pieces: [String]) -> [String] {
        var pieces = pieces
        for index in pieces.indices {
            guard let id = encoder[pieces[index]], let token = decoder[id] else { continue }
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
        return pieces.filter { !$0.isEmpty }
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
