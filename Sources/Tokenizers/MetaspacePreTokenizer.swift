/// The pre-tokeniser transformers 5's `T5Tokenizer` builds:
/// `Sequence[WhitespaceSplit, Metaspace(replacement: "▁", prepend_scheme: "always", split: true)]`.
///
/// `WhitespaceSplit` cuts the text at every Unicode White_Space character (Rust's
/// `char::is_whitespace`), dropping them. `Metaspace` then, per word, replaces `' '` with `▁`,
/// prepends `▁` unless the word already starts with it (a literal `▁` in the text counts) and,
/// with `split`, cuts the word before each `▁` (tokenizers' `MergedWithNext`: "▁▁a" gives
/// "▁" and "▁a").
struct MetaspacePreTokenizer: Sendable {
    /// The `Metaspace` character.
    static let replacement: Unicode.Scalar = "\u{2581}"

    /// The pieces of `text` that the Unigram model encodes one by one.
    func pieces(_ text: [Unicode.Scalar]) -> [String] {
        var pieces: [String] = []
        var index = 0
        while index < text.count {
            guard !text[index].properties.isWhitespace else {
                index += 1
                continue
            }
            var end = index + 1
            while end < text.count, !text[end].properties.isWhitespace { end += 1 }
            appendMetaspacePieces(of: text[index..<end], to: &pieces)
            index = end
        }
        return pieces
    }

    private func appendMetaspacePieces(of word: ArraySlice<Unicode.Scalar>, to pieces: inout [String]) {
        var current = String.UnicodeScalarView()
        if word.first != Self.replacement { current.append(Self.replacement) }
        for scalar in word {
            // No ' ' is left after WhitespaceSplit; Metaspace's replacement is kept all the same.
            let character = scalar == " " ? Self.replacement : scalar
            // Each `▁` starts a new piece.
            if character == Self.replacement && !current.isEmpty {
                pieces.append(String(current))
                current = String.UnicodeScalarView()
            }
            current.append(character)
        }
        if !current.isEmpty { pieces.append(String(current)) }
    }
}
