import Foundation

/// Unicode normalisation form C (Python's `unicodedata.normalize("NFC", …)`).
///
/// Foundation's `precomposedStringWithCanonicalMapping` on Linux has two faults that change
/// token ids: it leaves a decomposed mark that must move (U+0F73/U+0F75/U+0F81 before other
/// marks) out of canonical order, and it does not compose a precomposed Hangul LV syllable with
/// a following trailing consonant (어 + ᆨ stays two characters instead of 억). So: Foundation
/// decomposes, the marks are put in canonical order here, Foundation composes, and LV + T
/// syllables are composed here.
enum CanonicalComposition {
    static func nfc(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        var decomposed = Array(String(view).decomposedStringWithCanonicalMapping.unicodeScalars)
        orderMarks(&decomposed)
        view = String.UnicodeScalarView()
        view.append(contentsOf: decomposed)
        return composeHangulTrailingConsonants(Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars))
    }

    /// The canonical ordering algorithm: each run of non-starters is sorted by combining class,
    /// keeping the order of marks of the same class.
    private static func orderMarks(_ scalars: inout [Unicode.Scalar]) {
        func combiningClass(_ scalar: Unicode.Scalar) -> UInt8 { scalar.properties.canonicalCombiningClass.rawValue }
        var start = 0
        while start < scalars.count {
            guard combiningClass(scalars[start]) != 0 else {
                start += 1
                continue
            }
            var end = start + 1
            while end < scalars.count, combiningClass(scalars[end]) != 0 { end += 1 }
            if end - start > 1 {
                let run = scalars[start..<end].enumerated().sorted {
                    (combiningClass($0.element), $0.offset) < (combiningClass($1.element), $1.offset)
                }
                scalars.replaceSubrange(start..<end, with: run.map(\.element))
            }
            start = end
        }
    }

    /// Composes an LV syllable (U+AC00 + 28·k) followed by a trailing consonant (U+11A8…U+11C2)
    /// into the LVT syllable, as the Unicode Hangul composition algorithm does.
    private static func composeHangulTrailingConsonants(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(scalars.count)
        for scalar in scalars {
            if let last = output.last, (0xAC00...0xD7A3).contains(last.value), (last.value - 0xAC00) % 28 == 0,
               (0x11A8...0x11C2).contains(scalar.value),
               let syllable = Unicode.Scalar(last.value + scalar.value - 0x11A7) {
                output[output.count - 1] = syllable
            } else {
                output.append(scalar)
            }
        }
        return output
    }
}
