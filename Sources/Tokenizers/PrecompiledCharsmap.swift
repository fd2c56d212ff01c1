/// SentencePiece's precompiled normalisation table — the `Precompiled` normaliser of
/// `tokenizer.json` (`precompiled_charsmap`, base64) — and the tokenizers library's use of it.
///
/// The data is a little-endian `u32` byte size of the trie, the trie (a Darts-clone double array of
/// `u32` units) and then the replacement strings, each ended by a NUL byte. A key's value is the
/// byte offset of its replacement. Units decode as: `hasLeaf = (u >> 8) & 1`,
/// `value = u & 0x7fffffff`, `label = u & 0x800000ff`, `offset = (u >> 10) << ((u & 0x200) >> 6)`.
///
/// Normalising (tokenizers' `Precompiled::normalize`): for each extended grapheme cluster shorter
/// than 6 UTF-8 bytes, a common-prefix search runs on its bytes; any hit replaces the **whole**
/// cluster by the replacement of the first (shortest) hit — so an accent after `ﬁ` is dropped with
/// it. Otherwise each scalar of the cluster is looked up alone and replaced, or kept. Clusters are
/// the standard library's `Character`s; the reference uses the unicode-segmentation crate (Unicode
/// 16); the rules differ only on clusters of 6 bytes or more, which are looked up per scalar.
struct PrecompiledCharsmap: Sendable {
    private let units: [UInt32]
    private let strings: [UInt8]

    /// Parses and checks `data`: every trie node that a search can reach, and every replacement
    /// offset, lies inside the data (a search of the reference would otherwise fail on some text).
    init(data: [UInt8], path: String) throws(TokenizerError) {
        func fail(_ reason: String) -> TokenizerError { .invalidCharsmap(path: path, reason: reason) }
        guard data.count >= 4 else { throw fail("has \(data.count) bytes, fewer than its 4-byte header") }
        let trieBytes = Int(Self.littleEndian(data, at: 0))
        // The reference reads trie_size / 4 units; the bytes after them are the strings.
        let unitCount = trieBytes / 4
        guard unitCount <= (data.count - 4) / 4 else {
            throw fail("declares a trie of \(trieBytes) bytes, but only \(data.count - 4) bytes follow its header")
        }
        guard unitCount > 0 else { throw fail("has an empty trie") }
        units = (0..<unitCount).map { Self.littleEndian(data, at: 4 + 4 * $0) }
        strings = Array(data[(4 + 4 * unitCount)...])
        guard validUTF8String(strings[...]) != nil else { throw fail("has replacement strings that are not valid UTF-8") }
        try validate(fail)
    }

    private static func littleEndian(_ data: [UInt8], at index: Int) -> UInt32 {
        UInt32(data[index]) | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2]) << 16 | UInt32(data[index + 3]) << 24
    }

    @inline(__always) private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    @inline(__always) private static func value(_ unit: UInt32) -> Int { Int(unit & 0x7FFF_FFFF) }
    @inline(__always) private static func label(_ unit: UInt32) -> UInt32 { unit & 0x8000_00FF }
    @inline(__always) private static func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & 0x200) >> 6)) }

    /// Walks every node a search can reach: from each, all 255 labels are probed, so each probe
    /// (the node's block of 256 units) and each value unit must lie in the trie, and each value
    /// must be the offset of a character of the strings (or their end).
    private func validate(_ fail: (String) -> TokenizerError) throws(TokenizerError) {
        let count = units.count
        var visited = [Bool](repeating: false, count: count)
        let root = Self.offset(units[0])
        guard root | 0xFF < count else { throw fail("has a root node past the end of its trie") }
        var pending = [root]
        visited[root] = true
        while let base = pending.popLast() {
            for byte in 1...255 {
                let unit = units[base ^ byte]
                guard Self.label(unit) == UInt32(byte) else { continue }
                let child = (base ^ byte) ^ Self.offset(unit)
                guard child | 0xFF < count else {
                    throw fail("has a trie offset past the end of its trie (unit \(base ^ byte))")
                }
                if Self.hasLeaf(unit) {
                    let value = Self.value(units[child])
                    guard value <= strings.count, value == strings.count || strings[value] & 0xC0 != 0x80 else {
                        throw fail("has a replacement offset \(value) that is not in its \(strings.count) bytes of strings")
                    }
                }
                if !visited[child] {
                    visited[child] = true
                    pending.append(child)
                }
            }
        }
    }

    /// The replacement (NUL-terminated) of the shortest key that prefixes `bytes`, if any.
    /// A NUL in `bytes` ends the search, as in the reference.
    private func replacement<Bytes: Collection>(of bytes: Bytes) -> ArraySlice<UInt8>? where Bytes.Element == UInt8 {
        // Bounds were checked when loading; the guards keep a search safe all the same.
        var node = Self.offset(units[0])
        for byte in bytes {
            if byte == 0 { break }
            node ^= Int(byte)
            guard node < units.count else { return nil }
            let unit = units[node]
            guard Self.label(unit) == UInt32(byte) else { return nil }
            node ^= Self.offset(unit)
            guard node < units.count else { return nil }
            if Self.hasLeaf(unit) {
                let start = min(Self.value(units[node]), strings.count)
                let end = strings[start...].firstIndex(of: 0) ?? strings.count
                return strings[start..<end]
            }
        }
        return nil
    }

    /// `text` normalised as the tokenizers library's `Precompiled` normaliser does.
    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text)
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(text.count)
        var bytes: [UInt8] = []
        func append(_ replacement: ArraySlice<UInt8>) {
            // Valid UTF-8 at a character boundary: checked when loading.
            output.append(contentsOf: String(decoding: replacement, as: UTF8.self).unicodeScalars)
        }
        for cluster in String(view) {
            let utf8 = cluster.utf8
            if utf8.count < 6, let replacement = replacement(of: utf8) {
                append(replacement)
                continue
            }
            for scalar in cluster.unicodeScalars {
                bytes.removeAll(keepingCapacity: true)
                appendUTF8(scalar, to: &bytes)
                if let replacement = replacement(of: bytes) {
                    append(replacement)
                } else {
                    output.append(scalar)
                }
            }
        }
        return output
    }
}
