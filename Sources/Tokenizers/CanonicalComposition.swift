/// Unicode normalisation form C as each reference computes it, from the references' own data
/// (UnicodeNormalizationTables.generated.swift) rather than Foundation's or the standard
/// library's.
///
/// Foundation's `precomposedStringWithCanonicalMapping` is wrong on Linux in ways that change
/// token ids (it composes a character outside the BMP with a following mark as if it were its
/// low 16 bits, U+10041 + U+0301 → Á; it leaves some marks out of canonical order; it does not
/// compose an LV Hangul syllable with a trailing consonant), and its Unicode version is neither
/// reference's. So this is the algorithm of UAX #15 on the references' data: decompose, put
/// marks in canonical order, compose.
enum CanonicalComposition {
    /// Whose data to normalise with.
    enum Reference {
        /// tokenizers' NFC (the crate unicode-normalization-alignments): Unicode 9.0.0, so
        /// U+11935 + U+11930 (Dives Akuru, 13.0) stays two characters.
        case tokenizers
        /// Python 3.11's `unicodedata.normalize("NFC", …)`: Unicode 14.0.0.
        case python
    }

    static func nfc(_ scalars: [Unicode.Scalar], reference: Reference) -> [Unicode.Scalar] {
        let data = reference == .tokenizers ? NormalizationData.tokenizers : NormalizationData.python
        if data.isNFC(scalars) { return scalars }
        var decomposed: [Unicode.Scalar] = []
        var classes: [UInt8] = []
        decomposed.reserveCapacity(scalars.count + 8)
        classes.reserveCapacity(scalars.count + 8)
        for scalar in scalars { data.appendDecomposition(of: scalar, to: &decomposed, classes: &classes) }
        return data.compose(decomposed, classes: classes)
    }
}

/// One reference's normalisation data, laid out for lookups without hashing: each code point's
/// combining class, flags and decomposition in one 32-bit word of a two-level table.
struct NormalizationData: Sendable {
    static let tokenizers = NormalizationData(omitting: Set(UnicodeTables.unknownToTokenizersNFC))
    static let python = NormalizationData(omitting: [])

    // Word layout: bits 0–7 combining class, 8 decomposes, 9 may compose with what precedes it
    // (the second of a composition: NFC_QC Maybe), 10 never in NFC (NFC_QC No), 11–13
    // decomposition length, 14–31 its offset in `decompositionScalars`.
    private static let decomposes: UInt32 = 1 << 8
    private static let composesWithPrevious: UInt32 = 1 << 9
    private static let neverComposed: UInt32 = 1 << 10
    /// Every code point with data is below this (the last are U+2F800… CJK compatibility ideographs).
    private static let limit: UInt32 = 0x30000
    private static let blockShift: UInt32 = 7

    /// Index `value >> blockShift` → offset of its block in `words`; block 0 is all zeros.
    private let blockOffsets: [UInt32]
    private let words: [UInt32]
    /// The full canonical decompositions, one after the other.
    private let decompositionScalars: [Unicode.Scalar]
    /// (first << 32 | second) → the primary composite.
    private let compositions: [UInt64: Unicode.Scalar]

    /// The data of `UnicodeTables` less the code points `omitted` (those the reference predates).
    private init(omitting omitted: Set<UInt32>) {
        var classes: [UInt32: UInt8] = [:]
        for entry in UnicodeTables.combiningClasses where !omitted.contains(entry >> 8) {
            classes[entry >> 8] = UInt8(truncatingIfNeeded: entry)
        }
        var oneLevel: [UInt32: [UInt32]] = [:]
        let table = UnicodeTables.canonicalDecompositions
        for index in stride(from: 0, to: table.count - 2, by: 3) where !omitted.contains(table[index]) {
            oneLevel[table[index]] = table[index + 2] == 0 ? [table[index + 1]] : [table[index + 1], table[index + 2]]
        }
        func fullDecomposition(_ value: UInt32) -> [UInt32] {
            guard let parts = oneLevel[value] else { return [value] }
            return parts.flatMap(fullDecomposition)
        }
        let excluded = Set(UnicodeTables.compositionExclusions)

        var flat: [UInt32: UInt32] = [:]  // code point → word, for those with any data
        for (value, ccc) in classes { flat[value] = UInt32(ccc) }
        var scalars: [Unicode.Scalar] = []
        var compositions: [UInt64: Unicode.Scalar] = [:]
        for (value, parts) in oneLevel.sorted(by: { $0.key < $1.key }) {
            let full = fullDecomposition(value).compactMap(Unicode.Scalar.init)
            var word = flat[value, default: 0] | Self.decomposes | UInt32(full.count) << 11 | UInt32(scalars.count) << 14
            scalars += full
            if parts.count == 2 && !excluded.contains(value), let composite = Unicode.Scalar(value) {
                compositions[UInt64(parts[0]) << 32 | UInt64(parts[1])] = composite
                flat[parts[1], default: 0] |= Self.composesWithPrevious
            } else {
                word |= Self.neverComposed
            }
            flat[value] = word
        }
        // Hangul vowels and trailing consonants compose with the jamo or syllable before them.
        for value in Hangul.vowelBase..<Hangul.vowelBase + Hangul.vowelCount {
            flat[value, default: 0] |= Self.composesWithPrevious
        }
        for value in Hangul.trailingBase + 1..<Hangul.trailingBase + Hangul.trailingCount {
            flat[value, default: 0] |= Self.composesWithPrevious
        }

        // Two-level table: blocks of 128 words, the empty block and identical blocks stored once.
        let blockSize = 1 << Self.blockShift
        var blocks: [UInt32: [UInt32]] = [:]
        for (value, word) in flat where value < Self.limit {
            blocks[value >> Self.blockShift, default: [UInt32](repeating: 0, count: blockSize)][
                Int(value & UInt32(blockSize - 1))] = word
        }
        var words = [UInt32](repeating: 0, count: blockSize)
        var offsets = [UInt32](repeating: 0, count: Int(Self.limit >> Self.blockShift))
        var known: [[UInt32]: UInt32] = [words: 0]
        for (block, content) in blocks.sorted(by: { $0.key < $1.key }) {
            if let offset = known[content] {
                offsets[Int(block)] = offset
            } else {
                let offset = UInt32(words.count)
                known[content] = offset
                offsets[Int(block)] = offset
                words += content
            }
        }
        self.blockOffsets = offsets
        self.words = words
        self.decompositionScalars = scalars
        self.compositions = compositions
    }

    @inline(__always)
    private func word(_ value: UInt32) -> UInt32 {
        guard value < Self.limit else { return 0 }
        return words[Int(blockOffsets[Int(value >> Self.blockShift)] + (value & (1 << Self.blockShift - 1)))]
    }

    func combiningClass(_ value: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: word(value)) }

    /// NFC's quick check: true when `scalars` are certainly in NFC already — no character that
    /// NFC never keeps or that might compose with the one before, and marks in canonical order.
    func isNFC(_ scalars: [Unicode.Scalar]) -> Bool {
        var lastClass: UInt32 = 0
        for scalar in scalars {
            let word = word(scalar.value)
            if word & (Self.composesWithPrevious | Self.neverComposed) != 0 { return false }
            let ccc = word & 0xFF
            if ccc != 0 && lastClass > ccc { return false }
            lastClass = ccc
        }
        return true
    }

    /// Appends the full canonical decomposition of `scalar`, each mark moved back past the marks
    /// of a higher class before it (the canonical ordering algorithm, stable for equal classes).
    func appendDecomposition(of scalar: Unicode.Scalar, to output: inout [Unicode.Scalar], classes: inout [UInt8]) {
        if Hangul.appendDecomposition(of: scalar, to: &output, classes: &classes) { return }
        let word = word(scalar.value)
        guard word & Self.decomposes != 0 else {
            append(scalar, class: UInt8(truncatingIfNeeded: word), to: &output, classes: &classes)
            return
        }
        let offset = Int(word >> 14)
        for part in decompositionScalars[offset..<offset + Int(word >> 11 & 7)] {
            append(part, class: combiningClass(part.value), to: &output, classes: &classes)
        }
    }

    private func append(_ scalar: Unicode.Scalar, class ccc: UInt8, to output: inout [Unicode.Scalar],
                        classes: inout [UInt8]) {
        var index = output.count
        output.append(scalar)
        classes.append(ccc)
        guard ccc != 0 else { return }
        while index > 0 && classes[index - 1] > ccc {
            output.swapAt(index - 1, index)
            classes.swapAt(index - 1, index)
            index -= 1
        }
    }

    /// The canonical composition algorithm: each character joins the last starter when nothing
    /// between them blocks it (a starter, or a mark of the same or a higher class).
    func compose(_ scalars: [Unicode.Scalar], classes: [UInt8]) -> [Unicode.Scalar] {
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(scalars.count)
        var starter: Int?
        var lastClass: UInt8 = 0
        for (scalar, ccc) in zip(scalars, classes) {
            if let starter, starter == output.count - 1 || (lastClass != 0 && lastClass < ccc),
               let composite = composition(of: output[starter], with: scalar) {
                output[starter] = composite
                continue
            }
            if ccc == 0 { starter = output.count }
            lastClass = ccc
            output.append(scalar)
        }
        return output
    }

    private func composition(of first: Unicode.Scalar, with second: Unicode.Scalar) -> Unicode.Scalar? {
        guard word(second.value) & Self.composesWithPrevious != 0 else { return nil }
        if let syllable = Hangul.composition(of: first, with: second) { return syllable }
        return compositions[UInt64(first.value) << 32 | UInt64(second.value)]
    }
}

/// The algorithmic Hangul syllables (Unicode §3.12): a leading consonant, a vowel and an
/// optional trailing consonant.
private enum Hangul {
    static let syllableBase: UInt32 = 0xAC00, leadingBase: UInt32 = 0x1100
    static let vowelBase: UInt32 = 0x1161, trailingBase: UInt32 = 0x11A7
    static let leadingCount: UInt32 = 19, vowelCount: UInt32 = 21, trailingCount: UInt32 = 28
    static let syllableCount = leadingCount * vowelCount * trailingCount

    /// Appends the jamo of `scalar` (all of class 0) if it is a syllable; false if it is not.
    static func appendDecomposition(of scalar: Unicode.Scalar, to output: inout [Unicode.Scalar],
                                    classes: inout [UInt8]) -> Bool {
        let index = scalar.value &- syllableBase
        guard index < syllableCount else { return false }
        let trailing = index % trailingCount
        let parts = [leadingBase + index / (vowelCount * trailingCount),
                     vowelBase + index % (vowelCount * trailingCount) / trailingCount, trailingBase + trailing]
        for part in parts.prefix(trailing == 0 ? 2 : 3) {
            if let jamo = Unicode.Scalar(part) {
                output.append(jamo)
                classes.append(0)
            }
        }
        return true
    }

    static func composition(of first: Unicode.Scalar, with second: Unicode.Scalar) -> Unicode.Scalar? {
        let leading = first.value &- leadingBase, vowel = second.value &- vowelBase
        if leading < leadingCount && vowel < vowelCount {
            return Unicode.Scalar(syllableBase + (leading * vowelCount + vowel) * trailingCount)
        }
        let syllable = first.value &- syllableBase, trailing = second.value &- trailingBase
        if syllable < syllableCount && syllable % trailingCount == 0 && trailing > 0 && trailing < trailingCount {
            return Unicode.Scalar(first.value + trailing)
        }
        return nil
    }
}
