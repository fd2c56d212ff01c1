import Foundation
import Tokenizers
import XCTest

/// The two transformers tokenizers differ on unusual text; `.transformers4` must give the ids of
/// transformers 4's Python `CLIPTokenizer` (without ftfy). The expected ids below were computed
/// with transformers 4.57.6 (Python 3.11, regex 2026.5.9) on the fixture vocabulary; for these
/// texts transformers 5 gives the ids of prompts.json instead.
final class CompatibilityTests: XCTestCase {
    private static let transformers4IDs: [(name: String, text: String, ids: [Int])] = [
        ("emoji_zwj", "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} and flag \u{1F1EF}\u{1F1F5} and \u{1F44D}\u{1F3FD}",
         [998, 69, 554, 924, 344, 172, 253, 239, 101, 172, 253, 239, 102, 172, 253, 239, 356, 536, 950, 64, 326, 172, 253, 229, 107, 172, 253, 229, 369, 536, 172, 253, 239, 235, 172, 253, 237, 377, 999]),
        ("greek", "\u{391}\u{3B8}\u{3AE}\u{3BD}\u{3B1} \u{39F}\u{394}\u{39F}\u{3A3} \u{3C3}\u{3BF}\u{3C6}\u{3AF}\u{3B1}",
         [998, 138, 109, 138, 116, 138, 106, 138, 121, 138, 365, 138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 123, 139, 228, 138, 107, 138, 365, 999]),
        ("cjk", "\u{4E00}\u{4E2A}\u{7EA2}\u{8272}\u{7684}\u{5706}\u{5708} \u{8D64}\u{3044}\u{5186} \u{BE68}\u{AC04} \u{C6D0}",
         [998, 160, 116, 478, 160, 116, 359, 163, 118, 351, 164, 231, 366, 163, 248, 482, 161, 250, 484, 161, 250, 486, 164, 113, 353, 159, 223, 482, 161, 228, 484, 167, 117, 101, 166, 108, 482, 168, 249, 494, 999]),
        ("cjk_mixed", "red\u{5706}circle\u{3002}\u{3001}\u{FF01} \u{5186}\u{5F62}no\u{7D75}",
         [998, 620, 161, 250, 484, 698, 159, 222, 224, 159, 222, 223, 171, 120, 479, 161, 228, 484, 161, 121, 351, 77, 334, 163, 113, 369, 999]),
        ("unicode_spaces", "a\u{A0}red\u{3000}circle\u{2003}on\u{2028}a\u{85}line\u{B}x\u{C}y",
         [998, 320, 620, 698, 516, 577, 512, 834, 344, 999]),
        ("zero_width", "red\u{200B}circle\u{200C}\u{200D}x\u{FEFF}y",
         [998, 514, 67, 593, 534, 87, 344, 999]),
        ("control_chars", "a\u{0}red\u{7}circle\u{1B}[0m",
         [998, 64, 514, 67, 698, 314, 271, 332, 999]),
        ("marker_upper", "A <|ENDOFTEXT|> b",
         [998, 320, 999, 321, 999]),
        ("ypogegrammeni", "a\u{345}b",
         [998, 320, 321, 999]),
    ]

    func testTransformers4IDs() throws {
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: .transformers4)
        for (name, text, ids) in Self.transformers4IDs {
            XCTAssertEqual(tokenizer.encode(text).ids, ids, name)
        }
    }

    func testTransformers4AgreesWithTransformers5OnOrdinaryPrompts() throws {
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: .transformers4)
        let differing = Set(Self.transformers4IDs.map(\.name))
        for prompt in try loadFixturePrompts() where !differing.contains(prompt.name) {
            XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.ids, prompt.name)
            XCTAssertEqual(tokenizer.encode(prompt.text, padding: .maxLength, truncation: true).ids,
                           prompt.paddedIDs, prompt.name)
        }
    }

    func testTransformers5OnTheSameTexts() throws {
        // transformers 5.24.0: an upper-case marker is not the end token (it is matched before
        // lower-casing), and U+0345 is punctuation rather than skipped.
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures)
        XCTAssertEqual(tokenizer.encode("A <|ENDOFTEXT|> b").ids,
                       [998, 320, 27, 347, 68, 619, 78, 69, 588, 87, 339, 91, 285, 321, 999])
        XCTAssertEqual(tokenizer.encode("a\u{345}b").ids, [998, 320, 137, 483, 321, 999])
    }

    func testOnlyTransformers4StopsAfter48894Merges() throws {
        // The fixture's merges padded to 48 894 with repeats of its first, then "q x" (and "qx"
        // added to the vocabulary). transformers 5.24.0 gives [998, 1000, 345, 999] for "qxz",
        // transformers 4.57.6 [998, 80, 87, 345, 999].
        let folder = try makeTemporaryFolder(self)
        let vocabulary = try String(contentsOfFile: tokenizerFixtures + "/vocab.json", encoding: .utf8)
        try writeFile(folder + "/vocab.json", vocabulary.trimmingCharacters(in: .whitespacesAndNewlines).dropLast() + ", \"qx\": 1000}")
        let fixtureMerges = try String(contentsOfFile: tokenizerFixtures + "/merges.txt", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let merges = fixtureMerges + Array(repeating: "i n", count: 48_894 - (fixtureMerges.count - 1)) + ["q x"]
        try writeFile(folder + "/merges.txt", merges.joined(separator: "\n") + "\n")

        XCTAssertEqual(try CLIPTokenizer(folder: folder).encode("qxz").ids, [998, 1000, 345, 999])
        XCTAssertEqual(try CLIPTokenizer(folder: folder, compatibility: .transformers4).encode("qxz").ids,
                       [998, 80, 87, 345, 999])
    }
}
