import Foundation
import Tokenizers
import XCTest

/// Ids and tokens equal both references' on text where Unicode versions and normalisation
/// decide them (unicode-prompts.json, tools/reference/make_tokenizer_unicode_fixtures.py):
/// non-BMP characters before combining marks, the non-BMP compositions, composition
/// exclusions, canonical reordering, Hangul, characters newer than the references' Unicode data,
/// seeded random mixtures, and every canonical decomposition, decomposed and precomposed.
final class UnicodeParityTests: XCTestCase {
    private struct Prompt {
        let name: String
        let text: String
        let ids: [Int]
        /// Nil for the decompositions_* prompts, which have ids only.
        let tokens: [String]?
        let transformers4IDs: [Int]
        let transformers4Tokens: [String]?
    }

    private var prompts: [Prompt] = []
    private var differing: Set<String> = []

    override func setUpWithError() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: tokenizerFixtures + "/unicode-prompts.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let info = try XCTUnwrap(root["_info"] as? [String: Any])
        differing = Set(try XCTUnwrap(info["differing_prompts"] as? [String]))
        prompts = try XCTUnwrap(root["prompts"] as? [[String: Any]]).map { prompt in
            Prompt(name: try XCTUnwrap(prompt["name"] as? String),
                   text: try XCTUnwrap(prompt["text"] as? String),
                   ids: try XCTUnwrap(prompt["ids"] as? [Int]),
                   tokens: prompt["tokens"] as? [String],
                   transformers4IDs: try XCTUnwrap(prompt["transformers4_ids"] as? [Int]),
                   transformers4Tokens: prompt["transformers4_tokens"] as? [String])
        }
        XCTAssertGreaterThanOrEqual(prompts.count, 140)
        XCTAssertGreaterThanOrEqual(prompts.filter { $0.tokens != nil && $0.transformers4Tokens != nil }.count, 40)
    }

    func testIDsMatchTokenizers() throws {
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures)
        for prompt in prompts {
            XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.ids, prompt.name)
        }
    }

    func testTokensMatchTokenizers() throws {
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures)
        for prompt in prompts {
            guard let tokens = prompt.tokens else { continue }
            XCTAssertEqual(["<|startoftext|>"] + tokenizer.tokenize(prompt.text) + ["<|endoftext|>"], tokens, prompt.name)
        }
    }

    func testIDsMatchTransformers4() throws {
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: .transformers4)
        for prompt in prompts {
            XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.transformers4IDs, prompt.name)
        }
    }

    func testTokensMatchTransformers4() throws {
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: .transformers4)
        for prompt in prompts {
            guard let tokens = prompt.transformers4Tokens else { continue }
            XCTAssertEqual(["<|startoftext|>"] + tokenizer.tokenize(prompt.text) + ["<|endoftext|>"], tokens, prompt.name)
        }
    }

    /// The fixture exercises what it is for: the references differ on the characters newer than
    /// their data, and the cases the standard library's tables or Foundation get wrong are there.
    func testFixtureCoversTheVersionDifferences() {
        let names = Set(prompts.map(\.name))
        for name in ["nonbmp_starter_marks", "kaithi", "chakma", "dives_akuru", "musical_exclusions", "hangul",
                     "unicode17_letters", "unicode17_digits", "unicode16_letters", "unicode16_decompositions",
                     "random_00", "decompositions_00"] {
            XCTAssertTrue(names.contains(name), name)
        }
        for name in ["dives_akuru", "marks_after_unicode9", "unicode17_letters", "unicode16_letters"] {
            XCTAssertTrue(differing.contains(name), name)
        }
        for prompt in prompts {
            XCTAssertEqual(prompt.ids != prompt.transformers4IDs, differing.contains(prompt.name), prompt.name)
        }
    }

    /// What the fixture's ids mean, on one word: U+0C5C, a letter only since Unicode 17.0, is not
    /// one to tokenizers (Unicode 16.0), so it splits "x…y" into three words; U+0C15, a letter
    /// since 1.1, does not. transformers 4 removes it (unassigned in Python's Unicode 14.0).
    func testLetterNewInUnicode17IsNotALetter() throws {
        func words(_ tokens: [String]) -> Int { tokens.filter { $0.hasSuffix("</w>") }.count }
        let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures)
        XCTAssertEqual(words(tokenizer.tokenize("x\u{C5C}y")), 3)
        XCTAssertEqual(words(tokenizer.tokenize("x\u{C15}y")), 1)
        let transformers4 = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: .transformers4)
        XCTAssertEqual(transformers4.tokenize("x\u{C5C}y"), transformers4.tokenize("xy"))
    }

    /// U+10041 + U+0301 stays two characters (Foundation on Linux made it "á"), and U+11099 +
    /// U+110BA composes to U+1109A (Kaithi), as in both references.
    func testNonBMPCompositionIsExact() throws {
        for compatibility in [CLIPTokenizer.Compatibility.tokenizers, .transformers4] {
            let tokenizer = try CLIPTokenizer(folder: tokenizerFixtures, compatibility: compatibility)
            XCTAssertNotEqual(tokenizer.encode("\u{10041}\u{301}").ids, tokenizer.encode("\u{C1}").ids)
            XCTAssertEqual(tokenizer.encode("\u{10041}\u{301}").ids,
                           tokenizer.encode("\u{10041}").ids.dropLast() + tokenizer.encode("\u{301}").ids.dropFirst())
            XCTAssertEqual(tokenizer.encode("\u{11099}\u{110BA}").ids, tokenizer.encode("\u{1109A}").ids)
        }
    }
}
