import Foundation
import Tokenizers
import XCTest

/// Loading a vocabulary of CLIP's full size (49 408 tokens, 48 894 merges), generated here, and
/// encoding a 77-token prompt with it; encoding prompts that need Unicode normalisation. Timings
/// are printed, not asserted.
final class LoadPerformanceTests: XCTestCase {
    /// The 256 byte-level characters in CLIP's order (printable Latin-1 first, then U+0100…).
    private static let byteCharacters: [String] = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let others = (0..<256).filter { !printable.contains($0) }
        return (printable + others.indices.map { 256 + $0 }).compactMap { Unicode.Scalar($0).map { String($0) } }
    }()

    /// Writes a CLIP-shaped tokenizer folder: 256 byte symbols, the same with `</w>`, one token per
    /// merge, then the two markers. Merges join pseudo-random symbols (a deterministic generator),
    /// so that every part and result is in the vocabulary.
    private func writeFullSizeFolder(_ folder: String) throws {
        var vocabulary = Self.byteCharacters + Self.byteCharacters.map { $0 + "</w>" }
        var known = Set(vocabulary)
        var inner = Self.byteCharacters  // symbols that can start a merge (no `</w>`)
        var merges: [String] = []
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        while merges.count < 48_894 {
            // Favour short, early symbols, as real merges do.
            let left = inner[next(min(inner.count, 256 + merges.count / 8))]
            let rightPool = next(2) == 0 ? inner : vocabulary
            let right = rightPool[next(min(rightPool.count, 512 + merges.count / 8))]
            if right.hasSuffix("</w>") == false && next(3) == 0 { continue }
            let result = left + right
            guard !known.contains(result) else { continue }
            known.insert(result)
            merges.append(left + " " + right)
            vocabulary.append(result)
            if !result.hasSuffix("</w>") { inner.append(result) }
        }
        vocabulary += ["<|startoftext|>", "<|endoftext|>"]
        XCTAssertEqual(vocabulary.count, 49_408)

        let entries = vocabulary.enumerated().map { id, token in
            let escaped = token.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\": \(id)"
        }
        try writeFile(folder + "/vocab.json", "{" + entries.joined(separator: ",\n") + "}\n")
        try writeFile(folder + "/merges.txt", "#version: 0.2\n" + merges.joined(separator: "\n") + "\n")
    }

    func testFullSizeVocabularyLoadAndEncodeTimes() throws {
        let folder = try makeTemporaryFolder(self)
        try writeFullSizeFolder(folder)

        var loadTimes: [Double] = []
        var tokenizer: CLIPTokenizer?
        for _ in 0..<3 {
            let start = Date()
            tokenizer = try CLIPTokenizer(folder: folder)
            loadTimes.append(Date().timeIntervalSince(start))
        }
        let loaded = try XCTUnwrap(tokenizer)
        XCTAssertEqual(loaded.vocabularySize, 49_408)
        XCTAssertEqual(loaded.bosTokenID, 49_406)
        XCTAssertEqual(loaded.eosTokenID, 49_407)

        let prompt = "a highly detailed oil painting of an astronaut riding a horse on mars, trending on "
            + "artstation, 4k, sharp focus, volumetric lighting, by greg rutkowski and alphonse mucha"
        let first = Date()
        let encoded = loaded.encode(prompt, padding: .maxLength, truncation: true)
        let firstTime = Date().timeIntervalSince(first)
        XCTAssertEqual(encoded.ids.count, 77)
        XCTAssertEqual(encoded.ids.first, 49_406)

        let repeats = 1000
        let start = Date()
        for _ in 0..<repeats { _ = loaded.encode(prompt, padding: .maxLength, truncation: true) }
        let cachedTime = Date().timeIntervalSince(start) / Double(repeats)
        let unpadded = loaded.encode(prompt).ids.count
        print(String(format: "CLIPTokenizer, 49408 tokens + 48894 merges: load %.3f s (best of 3: %.3f s); "
                     + "encode of a %d-token prompt: first %.1f µs, then %.1f µs",
                     loadTimes[0], loadTimes.min() ?? 0, unpadded, firstTime * 1e6, cachedTime * 1e6))
    }

    /// Encoding time of prompts whose every word is already in the cache, so that the text clean-up
    /// (NFC above all) and the pre-tokeniser dominate: ASCII, precomposed accents (no NFC pass),
    /// and text with combining marks, Greek, Devanagari and Hangul (an NFC pass).
    func testNormalisingEncodeTimes() throws {
        let prompts = [
            ("ascii", "a highly detailed oil painting of an astronaut riding a horse on mars, trending on artstation"),
            ("precomposed", "caf\u{E9} na\u{EF}ve r\u{E9}sum\u{E9} \u{FC}ber stra\u{DF}e se\u{F1}or a\u{E7}a\u{ED} \u{C9}COLE \u{C0} PARIS"),
            ("marks", "cafe\u{301} nai\u{308}ve \u{391}\u{3B8}\u{3AE}\u{3BD}\u{3B1} \u{932}\u{93E}\u{932} \u{918}\u{947}\u{930}\u{93E} "
                + "\u{1100}\u{1161}\u{11A8} \u{D55C}\u{AD6D}\u{C5B4} Dvor\u{30C}a\u{301}k \u{1EA0}\u{1EBF}n Vi\u{1EC7}t"),
        ]
        for compatibility in [CLIPTokenizer.Compatibility.tokenizers, .transformers4] {
            let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: compatibility)
            var line = "CLIPTokenizer \(compatibility) encode (cached words, best of 9 rounds):"
            for (name, prompt) in prompts {
                // The first encoding also learns the words and, the first time in the process, builds
                // the normalisation tables.
                let first = Date()
                _ = tokenizer.encode(prompt, padding: .maxLength, truncation: true)
                let firstTime = Date().timeIntervalSince(first)
                // The best of several rounds: the machine is shared, the mean is noise.
                var time = Double.infinity
                for _ in 0..<9 {
                    let repeats = 300
                    let start = Date()
                    for _ in 0..<repeats { _ = tokenizer.encode(prompt, padding: .maxLength, truncation: true) }
                    time = min(time, Date().timeIntervalSince(start) / Double(repeats))
                }
                line += String(format: " %@ (%d scalars) first %.0f µs, then %.1f µs;", name,
                               prompt.unicodeScalars.count, firstTime * 1e6, time * 1e6)
            }
            print(line)
        }
    }
}
