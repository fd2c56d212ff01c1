/// The tokenizers library's `WhitespaceSplit` and `Metaspace` pre-tokenisers, alone or in that
/// order. transformers 5's `T5Tokenizer` builds
/// `Sequence[WhitespaceSplit, Metaspace(replacement: "▁", prepend_scheme: "always", split: true)]`;
/// transformers 4.37+ conversions write a lone `Metaspace` (`prepend_scheme` "always", or
/// "first" with `legacy: false`).
///
/// `WhitespaceSplit` cuts the text at every Unicode White_Space character (Rust's
/// `char::is_whitespace`), dropping them. `Metaspace` then, per piece, replaces `' '` with its
/// replacement (`▁`), prepends one unless the piece already starts with it (a literal `▁` in the
/// text counts) — always, or under "first" only for a piece at the start of the text — and, with
/// `split`, cuts before each `▁` (tokenizers' `MergedWithNext`: "▁▁a" gives "▁" and "▁a").
struct MetaspacePreTokenizer: Sendable {
    enum PrependScheme: String, Sendable {
        case always, first, never
    }

    struct Metaspace: Sendable {
        var replacement: Unicode.Scalar = "\u{2581}"
        var prependScheme: PrependScheme = .always
        var split = true
    }

    /// Whether `WhitespaceSplit` runs first.
    var splitsAtWhitespace = true
    /// The `Metaspace` step, if any.
    var metaspace: Metaspace? = Metaspace()

    /// transformers 5's T5 pre-tokeniser.
    static let transformers5 = MetaspacePreTokenizer()

    /// The pieces of `text` that the Unigram model encodes one by one. `startsText`: the text
    /// begins at offset 0 of the input (the first segment, not after an added token) — what
    /// "first" prepends for. After `WhitespaceSplit`, only the first word can be there, and only
    /// when no whitespace came before it.
    func pieces(_ text: [Unicode.Scalar], startsText: Bool) -> [String] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        if splitsAtWhitespace {
            var index = 0
            while index < text.count {
                guard !text[index].properties.isWhitespace else {
                    index += 1
                    continue
                }
                var end = index + 1
                while end < text.count, !text[end].properties.isWhitespace { end += 1 }
                words.append(text[index..<end])
                index = end
            }
        } else if !text.isEmpty {
            words = [text[...]]
        }
        var pieces: [String] = []
        for word in words {
            guard let metaspace else {
                pieces.append(Self.string(word))
                continue
            }
            let atStart = startsText && word.startIndex == 0
            appendPieces(of: word, metaspace, prepends: metaspace.prependScheme == .always
                         || (metaspace.prependScheme == .first && atStart), to: &pieces)
        }
        return pieces
    }

    private func appendPieces(of word: ArraySlice<Unicode.Scalar>, _ metaspace: Metaspace, prepends: Bool,
                              to pieces: inout [String]) {
        let replacement = metaspace.replacement
        var current = String.UnicodeScalarView()
        // The check is on the word after spaces became the replacement.
        let first = word.first == " " ? replacement : word.first
        if prepends && first != replacement { current.append(replacement) }
        for scalar in word {
            let character = scalar == " " ? replacement : scalar
            // Each replacement starts a new piece.
            if metaspace.split && character == replacement && !current.isEmpty {
                pieces.append(String(current))
                current = String.UnicodeScalarView()
            }
            current.append(character)
        }
        if !current.isEmpty { pieces.append(String(current)) }
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
