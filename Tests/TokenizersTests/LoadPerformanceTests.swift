import Foundation
import Tokenizers
import XCTest

/// Loading a vocabulary of CLIP's full size (49 408 tokens, 48 894 merges), generated here, and
/// encoding a 77-token prompt with it. Timings are printed, not asserted.
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
}
