/// The two text clean-ups of CLIP tokenizers without `ftfy`.
///
/// `normalizeForTokenizers` is the tokenizers library's CLIP normaliser (transformers 5):
/// NFC (with tokenizers' Unicode 9.0 data), each run of whitespace (Unicode White_Space)
/// replaced by one space, then each character lower-cased on its own (no final-sigma rule).
/// Lower-casing uses the standard library's mappings: those of Swift 6.3 (Unicode 17.0) equal
/// the tokenizers 0.23.3 wheel's (Rust's `char::to_lowercase`, also 17.0) on every code point.
///
/// `normalizeForTransformers4` is what transformers 4's Python `CLIPTokenizer` does when `ftfy` is
/// not installed: its `BasicTokenizer(strip_accents=False, do_split_on_punc=False)`, whose words
/// are then joined with single spaces. In order:
///
/// 1. U+0000, U+FFFD and every character of a `C*` category (control, format — zero-width
///    joiners and spaces, soft hyphens —, private use, unassigned, including characters
///    assigned after Python 3.11's Unicode 14.0) are removed, except tab, newline and carriage
///    return; those and every `Zs` space become U+0020.
/// 2. Each CJK ideograph (the blocks BERT lists) gets a space on either side.
/// 3. The text is put in Unicode normalisation form C (Python 3.11's Unicode 14.0 data).
/// 4. It is split at whitespace (U+0020, and U+2028/U+2029, which survive step 1), each word is
///    lower-cased as Python's `str.lower` does (full mappings, final sigma), and the words are
///    joined with one space. Accents are kept; punctuation is not split off here.
enum TextNormalizer {
    static func normalizeForTokenizers(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // Every character that composition can change is at or above U+0300.
        let composed = text.contains(where: { $0.value >= 0x300 })
            ? CanonicalComposition.nfc(text, reference: .tokenizers) : text
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(composed.count)
        var inWhitespace = false
        for scalar in composed {
            if scalar.isASCII {
                let value = scalar.value
                switch value {
                case 0x09...0x0D, 0x20:
                    if !inWhitespace { output.append(" ") }
                    inWhitespace = true
                    continue
                case 0x41...0x5A: output.append(Unicode.Scalar(UInt8(value + 0x20)))
                default: output.append(scalar)
                }
            } else if scalar.properties.isWhitespace {
                if !inWhitespace { output.append(" ") }
                inWhitespace = true
                continue
            } else if scalar.properties.changesWhenLowercased {
                output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                output.append(scalar)
            }
            inWhitespace = false
        }
        return output
    }

    static func normalizeForTransformers4(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(text.count)
        var needsComposition = false
        for scalar in text {
            let value = scalar.value
            if value < 0x80 {
                switch value {
                case 0x09, 0x0A, 0x0D, 0x20: cleaned.append(" ")
                case 0..<0x20, 0x7F: continue
                default: cleaned.append(scalar)
                }
                continue
            }
            if value == 0xFFFD || isUnassignedInPython(scalar) { continue }
            let category = scalar.properties.generalCategory
            switch category {
            case .control, .format, .surrogate, .privateUse, .unassigned: continue
            case .spaceSeparator: cleaned.append(" "); continue
            default: break
            }
            // Every character that composition can change is at or above U+0300.
            if value >= 0x300 { needsComposition = true }
            if isCJKIdeograph(value) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        if needsComposition { cleaned = CanonicalComposition.nfc(cleaned, reference: .python) }
        return lowercasedWords(cleaned)
    }

    /// The Unicode version of the `unicodedata` of Python 3.11, the version of this project's
    /// reference scripts: characters assigned later are unassigned (`Cn`) there, so removed.
    static let pythonUnicodeVersion = (major: 14, minor: 0)

    private static func isUnassignedInPython(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }  // unassigned: removed anyway
        return (age.major, age.minor) > pythonUnicodeVersion
    }

    /// The CJK Unified Ideographs blocks and compatibility blocks of BERT's `_is_chinese_char`
    /// (not Hangul, Hiragana or Katakana).
    static func isCJKIdeograph(_ value: UInt32) -> Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Splits at U+0020/U+2028/U+2029, lower-cases each word and joins them with one space.
    private static func lowercasedWords(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(scalars.count)
        var wordStart = 0
        func flush(upTo end: Int) {
            guard wordStart < end else { return }
            if !output.isEmpty { output.append(" ") }
            appendLowercased(scalars[wordStart..<end], to: &output)
        }
        for (index, scalar) in scalars.enumerated() where isSeparator(scalar) {
            flush(upTo: index)
            wordStart = index + 1
        }
        flush(upTo: scalars.count)
        return output
    }

    private static func isSeparator(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\u{2028}" || scalar == "\u{2029}"
    }

    /// Python's `str.lower`: each character's full lower-case mapping, with capital sigma
    /// becoming final sigma (ς) at the end of a word (Unicode's Final_Sigma condition).
    private static func appendLowercased(_ word: ArraySlice<Unicode.Scalar>, to output: inout [Unicode.Scalar]) {
        for index in word.indices {
            let scalar = word[index]
            if scalar.isASCII {
                let value = scalar.value
                output.append((0x41...0x5A).contains(value) ? Unicode.Scalar(UInt8(value + 0x20)) : scalar)
            } else if scalar == "\u{03A3}" {
                output.append(isFinalSigma(at: index, in: word) ? "\u{03C2}" : "\u{03C3}")
            } else if scalar.properties.changesWhenLowercased {
                output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                output.append(scalar)
            }
        }
    }

    /// Final_Sigma: a cased letter (skipping case-ignorable characters) before, and none after.
    private static func isFinalSigma(at index: Int, in word: ArraySlice<Unicode.Scalar>) -> Bool {
        let before = word[..<index].last(where: { !$0.properties.isCaseIgnorable })
        guard let before, before.properties.isCased else { return false }
        let after = word[(index + 1)...].first(where: { !$0.properties.isCaseIgnorable })
        return !(after?.properties.isCased ?? false)
    }
}

/// Python's `str.isspace()`, the whitespace `str.split()` and `str.strip()` use.
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}
