import Foundation
import Tokenizers
import XCTest

/// SDXL's `tokenizer_2` pads with "!" (id 0, a special added token) rather than its end token,
/// and a literal "!" in a prompt is that token: cut out of its word, id 0 (diffusers#4153).
/// Fixtures/sdxl-tokenizer-2 (tools/reference/make_sdxl_tokenizer_fixtures.py) holds the files in
/// the hub's layout, with only `pad_token` configured, and as transformers 5 re-saves them, with
/// transformers 5.24's ids.
final class SDXLTokenizer2Tests: XCTestCase {
    static let root: String = {
        var url = URL(fileURLWithPath: tokenizerFixtures)
        url.deleteLastPathComponent()  // tokenizer
        return url.appendingPathComponent("sdxl-tokenizer-2").path
    }()

    private struct Prompt {
        let text: String, ids: [Int], tokens: [String], paddedIDs: [Int], paddedMask: [Int]
    }

    private func prompts() throws -> [Prompt] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.root + "/prompts.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(root["prompts"] as? [[String: Any]]).map { p in
            Prompt(text: try XCTUnwrap(p["text"] as? String), ids: try XCTUnwrap(p["ids"] as? [Int]),
                   tokens: try XCTUnwrap(p["tokens"] as? [String]), paddedIDs: try XCTUnwrap(p["ids_max_length_77"] as? [Int]),
                   paddedMask: try XCTUnwrap(p["attention_mask_max_length_77"] as? [Int]))
        }
    }

    func testIDsMatchTransformersInBothLayouts() throws {
        let prompts = try prompts()
        XCTAssertGreaterThanOrEqual(prompts.count, 8)
        for layout in ["tokenizer_2", "tokenizer_2-minimal", "saved-by-transformers5"] {
            let tokenizer = try CLIPTokenizer(folder: Self.root + "/" + layout)
            XCTAssertEqual(tokenizer.padTokenID, 0, layout)
            XCTAssertEqual([tokenizer.bosTokenID, tokenizer.eosTokenID], [998, 999], layout)
            XCTAssertTrue(tokenizer.specialTokenIDs.contains(0), layout)
            for prompt in prompts {
                XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.ids, "\(layout): \(prompt.text)")
                let padded = tokenizer.encode(prompt.text, padding: .maxLength, truncation: true)
                XCTAssertEqual(padded.ids, prompt.paddedIDs, "\(layout): \(prompt.text)")
                XCTAssertEqual(padded.attentionMask, prompt.paddedMask, "\(layout): \(prompt.text)")
                XCTAssertEqual(prompt.ids.map { tokenizer.token(forID: $0) ?? "?" }, prompt.tokens, "\(layout): \(prompt.text)")
            }
        }
    }

    /// The cases the fixture exists for, spelled out: padding is 0 after the end token, and a "!"
    /// is id 0 where the SD 1.x tokenizer (same vocabulary) gives "!</w>" (256).
    func testExclamationMarkIsThePadToken() throws {
        let tokenizer = try CLIPTokenizer(folder: Self.root + "/tokenizer_2")
        let padded = tokenizer.encode("red! circle", padding: .maxLength, truncation: true)
        XCTAssertEqual(Array(padded.ids.prefix(6)), [998, 620, 0, 698, 999, 0])
        XCTAssertEqual(padded.ids.count, 77)
        XCTAssertEqual(Array(padded.attentionMask.prefix(6)), [1, 1, 1, 1, 1, 0])
        let sd15 = try CLIPTokenizer(folder: tokenizerFixtures)
        XCTAssertEqual(sd15.encode("red! circle").ids, [998, 620, 256, 698, 999])
        XCTAssertEqual(tokenizer.encode("! ! !").ids, [998, 0, 0, 0, 999])
    }
}
