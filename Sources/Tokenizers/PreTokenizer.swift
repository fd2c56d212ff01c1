/// CLIP's pre-tokenisation: the words that
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
/// finds, case-insensitively, scanning left to right (Python `regex.findall`).
///
/// At each position the alternatives are tried in order and the first that matches wins:
/// the two special markers, the contractions, a run of letters, a single number character,
/// or a run of characters that are neither whitespace, letters nor numbers. Whitespace matches
/// nothing and is skipped.
///
/// `.transformers4` matches case-insensitively (Python `regex.IGNORECASE`), with simple case
/// folding, under which `ſ` (U+017F) matches `s` and `K` (U+212A) matches `k`; it also makes
/// U+0345 (combining ypogegrammeni, which folds to a letter but is not one) match no class at
/// all, so that it is skipped like whitespace — as the `regex` module does.
///
/// `.tokenizers` matches case-sensitively, and its byte-level pre-tokeniser then splits GPT-2's
/// way, which only changes the markers: `<|startoftext|>` becomes `<|`, `startoftext`, `|>`.
///
/// `\p{L}` and `\p{N}` are Unicode 16.0's, as in tokenizers' Oniguruma (UnicodeTables.swift);
/// the `regex` module of transformers 4 (Unicode 17.0) agrees on every character that its
/// clean-up leaves (it removes those unassigned in Python 3.11's Unicode 14.0).
enum PreTokenizer {
    /// The character classes the expression distinguishes.
    enum CharacterClass: UInt8 {
        /// Whitespace and U+0345: part of no word.
        case skipped
        case letter, number, other
    }

    static func characterClass(_ scalar: Unicode.Scalar, skipsYpogegrammeni: Bool) -> CharacterClass {
        if scalar.isASCII {
            switch scalar.value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .skipped
            default: return .other
            }
        }
        if skipsYpogegrammeni && scalar.value == 0x345 { return .skipped }
        // The references' letters and numbers (Unicode 16.0), not the standard library's: a
        // character they do not know yet is neither (UnicodeTables.swift).
        switch UnicodeTables.splitClass(of: scalar.value) {
        case .letter: return .letter
        case .number: return .number
        // `\s`: Unicode White_Space in both regular-expression engines.
        case .whitespace: return .skipped
        case .other: return .other
        }
    }

    private static let specialMarkers: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map {
        Array($0.unicodeScalars)
    }
    private static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map {
        Array($0.unicodeScalars)
    }

    /// The words of `text`, as index ranges into it.
    static func words(_ text: [Unicode.Scalar], compatibility: CLIPTokenizer.Compatibility) -> [Range<Int>] {
        let ignoresCase = compatibility == .transformers4
        var words: [Range<Int>] = []
        var index = 0
        let end = text.count
        func match(_ pattern: [Unicode.Scalar], at start: Int) -> Int? {
            matchLength(of: pattern, in: text, at: start, ignoringCase: ignoresCase)
        }
        func characterClass(_ scalar: Unicode.Scalar) -> CharacterClass {
            Self.characterClass(scalar, skipsYpogegrammeni: ignoresCase)
        }
        while index < end {
            if let length = specialMarkers.lazy.compactMap({ match($0, at: index) }).first {
                if ignoresCase {
                    words.append(index..<index + length)
                } else {
                    // `<|`, the word, `|>`.
                    words += [index..<index + 2, index + 2..<index + length - 2, index + length - 2..<index + length]
                }
                index += length
                continue
            }
            if text[index] == "'", let length = contractions.lazy.compactMap({ match($0, at: index + 1) }).first {
                words.append(index..<index + 1 + length)
                index += 1 + length
                continue
            }
            let kind = characterClass(text[index])
            var next = index + 1
            switch kind {
            case .skipped:
                index = next
                continue
            case .number:
                break
            case .letter, .other:
                while next < end, characterClass(text[next]) == kind { next += 1 }
            }
            words.append(index..<next)
            index = next
        }
        return words
    }

    /// The length of `pattern` if `text` at `start` matches it under simple case folding.
    private static func matchLength(of pattern: [Unicode.Scalar], in text: [Unicode.Scalar], at start: Int,
                                    ignoringCase: Bool) -> Int? {
        guard text.count - start >= pattern.count else { return nil }
        for (offset, expected) in pattern.enumerated() {
            let scalar = text[start + offset]
            if scalar != expected && (!ignoringCase || folded(scalar) != expected) { return nil }
        }
        return pattern.count
    }

    /// Simple case folding, for the characters that can fold to the ASCII letters of the patterns.
    private static func folded(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x41...0x5A: return Unicode.Scalar(UInt8(scalar.value + 0x20))
        case 0x17F: return "s"
        case 0x212A: return "k"
        default: return scalar
        }
    }
}
