/// The Unicode data of the reference tokenizers, generated from them by
/// tools/reference/make_unicode_tables.py (the `*.generated.swift` files beside this one).
///
/// The standard library's tables follow the Swift release (Swift 6.3: Unicode 17.0), while the
/// references are pinned to older data: tokenizers' pre-tokeniser uses Unicode 16.0 letters and
/// numbers and its NFC Unicode 9.0 data; transformers 4 normalises with Python 3.11's Unicode
/// 14.0. A character new in a later version (U+0C5C, a letter since 17.0) is unassigned in
/// theirs, so it must split and compose as an unassigned character does, whatever Swift's
/// tables say.
enum UnicodeTables {
    /// The classes of `characterClassRuns` (numbered 0, 1, 2, 3 there).
    enum SplitClass {
        case other, letter, number, whitespace
    }

    /// The class of `value` for the CLIP split expression, by binary search in the runs.
    static func splitClass(of value: UInt32) -> SplitClass {
        characterClassRuns.withUnsafeBufferPointer { runs in
            // The last run whose first code point is at most `value`; runs[0] starts at 0.
            let key = value << 2 | 3
            var low = 0
            var high = runs.count
            while low < high {
                let middle = (low + high) / 2
                if runs[middle] <= key { low = middle + 1 } else { high = middle }
            }
            switch runs[max(low - 1, 0)] & 3 {
            case 1: return .letter
            case 2: return .number
            case 3: return .whitespace
            default: return .other
            }
        }
    }
}
