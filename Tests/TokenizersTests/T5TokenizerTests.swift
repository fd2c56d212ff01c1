import Foundation
import Tokenizers
import XCTest

/// The T5 tokenizer against transformers 5.24's `T5TokenizerFast`: Fixtures/t5-tokenizer
/// (tools/reference/make_t5_tokenizer_fixtures.py) holds a 426-piece SentencePiece Unigram
/// vocabulary (nmt_nfkc charsmap) with T5's 100 extra ids, saved by transformers 5, and its ids
/// for 75 prompts, unpadded and padded/truncated to 64 and 8 as FluxPipeline calls it.
final class T5TokenizerTests: XCTestCase {
    static let root: String = {
        var url = URL(fileURLWithPath: tokenizerFixtures)
        url.deleteLastPathComponent()  // tokenizer
        return url.appendingPathComponent("t5-tokenizer").path
    }()
    static let folder = root + "/tokenizer"

    /// Loaded once: the charsmap check walks the whole trie.
    private static let shared = Result { () throws(TokenizerError) -> T5Tokenizer in try T5Tokenizer(folder: folder) }
    static func sharedTokenizer() throws -> T5Tokenizer { try shared.get() }
    private func tokenizer() throws -> T5Tokenizer { try Self.shared.get() }

    private struct Prompt {
        let name: String, text: String, ids: [Int], tokens: [String], pieces: [String]
        let padded: [Int: (ids: [Int], mask: [Int])]
    }

    private static func fixture() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/prompts.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func prompts() throws -> [Prompt] {
        try XCTUnwrap(try Self.fixture()["prompts"] as? [[String: Any]]).map { p in
            var padded: [Int: (ids: [Int], mask: [Int])] = [:]
            for length in [64, 8] {
                padded[length] = (try XCTUnwrap(p["ids_max_length_\(length)"] as? [Int]),
                                  try XCTUnwrap(p["attention_mask_max_length_\(length)"] as? [Int]))
            }
            return Prompt(name: try XCTUnwrap(p["name"] as? String), text: try XCTUnwrap(p["text"] as? String),
                          ids: try XCTUnwrap(p["ids"] as? [Int]), tokens: try XCTUnwrap(p["tokens"] as? [String]),
                          pieces: try XCTUnwrap(p["pieces"] as? [String]), padded: padded)
        }
    }

    func testEveryPromptMatchesTransformers() throws {
        let tokenizer = try tokenizer()
        let prompts = try prompts()
        XCTAssertGreaterThanOrEqual(prompts.count, 50)
        for prompt in prompts {
            let label = "\(prompt.name): \(prompt.text.debugDescription)"
            XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.ids, label)
            XCTAssertEqual(tokenizer.tokenIDs(prompt.text) + [1], prompt.ids, label)
            XCTAssertEqual(tokenizer.tokenize(prompt.text), prompt.pieces, label)
            XCTAssertEqual(prompt.ids.map { tokenizer.token(forID: $0) ?? "?" }, prompt.tokens, label)
            for (length, expected) in prompt.padded {
                let padded = tokenizer.encode(prompt.text, padding: .maxLength, truncation: true, maxLength: length)
                XCTAssertEqual(padded.ids, expected.ids, "\(label), max_length \(length)")
                XCTAssertEqual(padded.attentionMask, expected.mask, "\(label), max_length \(length)")
            }
        }
    }

    func testSpecialTokens() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual([tokenizer.padTokenID, tokenizer.eosTokenID, tokenizer.unkTokenID], [0, 1, 2])
        XCTAssertEqual(tokenizer.vocabularySize, 526)
        // The saved configuration has transformers' int(1e30): no known limit.
        XCTAssertNil(tokenizer.modelMaxLength)
        // <extra_id_99> … <extra_id_0> follow the 426 pieces, in reverse.
        XCTAssertEqual(tokenizer.token(forID: 426), "<extra_id_99>")
        XCTAssertEqual(tokenizer.token(forID: 525), "<extra_id_0>")
        XCTAssertNil(tokenizer.token(forID: 526))
        XCTAssertEqual(tokenizer.specialTokenIDs, Set(0...2).union(426...525))
        // Cut out of the raw text wherever they are, with no `▁` before them; the text after
        // one gets its own `▁`.
        XCTAssertEqual(tokenizer.tokenIDs("<extra_id_5>"), [520])
        XCTAssertEqual(tokenizer.tokenize("hello</s>world"), ["▁h", "ello", "</s>", "▁w", "or", "ld"])
        XCTAssertEqual(tokenizer.tokenIDs("</s></s>"), [1, 1])
        // Only the configured sentinels are special: "<extra_id_100>" is ordinary text.
        XCTAssertFalse(tokenizer.tokenIDs("<extra_id_100>").contains(where: (426...525).contains))
        XCTAssertEqual(Array(tokenizer.tokenize("<extra_id_100>").prefix(5)), ["▁", "<", "e", "x", "tra"])
        // A full-width "＜/s＞" is normalised into "</s>", which the Unigram model then finds
        // as a piece of its own (the added-token split ran before normalisation).
        XCTAssertEqual(tokenizer.tokenize("a＜/s＞b"), ["▁a", "</s>", "b"])
        XCTAssertEqual(tokenizer.tokenIDs("a＜/s＞b")[1], 1)
    }

    /// Ties are broken as the tokenizers library does (the first candidate of the forward pass
    /// stays), not as SentencePiece does; the fixture records SentencePiece's own pieces.
    func testTieRuleFollowsTheTokenizersLibrary() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual(tokenizer.tokenize("!!!!!!"), ["▁", "!", "!!!!!"])
        XCTAssertEqual(tokenizer.tokenize("αβγ"), ["▁", "α", "βγ"])
        let spm = try XCTUnwrap(try Self.fixture()["spm_pieces"] as? [String: [String]])
        XCTAssertEqual(spm["tie exclamation word"], ["▁", "!!!!!", "!"])
        XCTAssertEqual(spm["tie greek"], ["▁", "αβ", "γ"])
    }

    /// The charsmap's quirks, spelled out: a cluster under 6 bytes is replaced whole by its
    /// shortest prefix hit (the accent after "ﬁ", the second accent after "a\u{308}" vanish);
    /// compatibility characters become ASCII; unknown runs are one `<unk>`.
    func testPrecompiledNormalisation() throws {
        let tokenizer = try tokenizer()
        XCTAssertEqual(tokenizer.tokenize("\u{FB01}\u{301}"), ["▁fi"])
        XCTAssertEqual(tokenizer.tokenIDs("a\u{308}\u{301}"), tokenizer.tokenIDs("\u{E4}"))
        XCTAssertEqual(tokenizer.tokenIDs("ｈｅｌｌｏ"), tokenizer.tokenIDs("hello"))
        XCTAssertEqual(tokenizer.tokenIDs("①②③"), tokenizer.tokenIDs("123"))
        XCTAssertEqual(tokenizer.tokenize("🦄🦄🦄"), ["▁", "🦄🦄🦄"])
        XCTAssertEqual(tokenizer.tokenIDs("🦄🦄🦄"), [3, 2])
    }

    func testWhitespaceGivesOneBoundary() throws {
        let tokenizer = try tokenizer()
        let plain = tokenizer.tokenIDs("a red circle")
        for text in ["   a red circle", "a red circle   ", "a   red\t\tcircle", "a\nred\r\ncircle\n", "a\u{A0}red\u{3000}circle"] {
            XCTAssertEqual(tokenizer.tokenIDs(text), plain, text.debugDescription)
        }
        XCTAssertEqual(tokenizer.encode("").ids, [1])
        XCTAssertEqual(tokenizer.encode(" \t\n").ids, [1])
    }

    func testTruncationAndPaddingEdgeCases() throws {
        let tokenizer = try tokenizer()
        let fixture = try Self.fixture()
        for entry in try XCTUnwrap(fixture["length_cases"] as? [[String: Any]]) {
            let text = try XCTUnwrap(entry["text"] as? String)
            let length = try XCTUnwrap(entry["max_length"] as? Int)
            let encoded = tokenizer.encode(text, padding: .maxLength, truncation: true, maxLength: length)
            XCTAssertEqual(encoded.ids, try XCTUnwrap(entry["ids"] as? [Int]), "\(text.debugDescription), \(length)")
            XCTAssertEqual(encoded.attentionMask, try XCTUnwrap(entry["attention_mask"] as? [Int]), "\(text), \(length)")
        }
        let batch = try XCTUnwrap(fixture["batch_longest"] as? [String: Any])
        let encoded = tokenizer.encode(try XCTUnwrap(batch["texts"] as? [String]), padding: .longest)
        XCTAssertEqual(encoded.map(\.ids), try XCTUnwrap(batch["ids"] as? [[Int]]))
        XCTAssertEqual(encoded.map(\.attentionMask), try XCTUnwrap(batch["attention_mask"] as? [[Int]]))

        // No model_max_length here: without a maxLength nothing is truncated or padded.
        let long = String(repeating: "a red circle ", count: 30)
        XCTAssertEqual(tokenizer.encode(long, padding: .maxLength, truncation: true).ids, tokenizer.tokenIDs(long) + [1])
        // Truncation keeps `</s>` last; padding alone does not truncate.
        let truncated = tokenizer.encode(long, truncation: true, maxLength: 10).ids
        XCTAssertEqual(truncated, Array(tokenizer.tokenIDs(long).prefix(9)) + [1])
        XCTAssertEqual(tokenizer.encode(long, padding: .maxLength, maxLength: 10).ids.count, tokenizer.tokenIDs(long).count + 1)
    }

    /// FLUX's tokenizer_2 configuration (a transformers 4 save: added_tokens_decoder, the extra ids
    /// listed, model_max_length 512; the one of tokenizer-v4/) beside the same tokenizer.json gives
    /// the same ids, and FluxPipeline's 512 by default.
    func testFluxStyleConfiguration() throws {
        let folder = try makeTemporaryFolder(self)
        try FileManager.default.copyItem(atPath: Self.folder + "/tokenizer.json", toPath: folder + "/tokenizer.json")
        try FileManager.default.copyItem(atPath: Self.root + "/tokenizer-v4/tokenizer_config.json",
                                         toPath: folder + "/tokenizer_config.json")
        let tokenizer = try T5Tokenizer(folder: folder)
        XCTAssertEqual(tokenizer.modelMaxLength, 512)
        XCTAssertEqual(tokenizer.specialTokenIDs, try self.tokenizer().specialTokenIDs)
        for prompt in try prompts() {
            XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.ids, prompt.name)
        }
        let long = tokenizer.encode(String(repeating: "a photo of a cat ", count: 100), padding: .maxLength, truncation: true)
        XCTAssertEqual(long.ids.count, 512)
        XCTAssertEqual(long.ids[511], 1)
        XCTAssertEqual(Set(long.attentionMask), [1])
        let short = tokenizer.encode("a cat", padding: .maxLength, truncation: true)
        XCTAssertEqual(Array(short.ids.prefix(5)), [5, 58, 36, 1, 0])
        XCTAssertEqual(short.attentionMask.reduce(0, +), 4)
    }

    /// Without a configuration the defaults are T5's: `</s>`, `<pad>`, `<unk>` and 100 extra ids.
    func testDefaultsWithoutConfiguration() throws {
        let folder = try makeTemporaryFolder(self)
        try FileManager.default.copyItem(atPath: Self.folder + "/tokenizer.json", toPath: folder + "/tokenizer.json")
        let tokenizer = try T5Tokenizer(folder: URL(fileURLWithPath: folder))
        XCTAssertEqual([tokenizer.padTokenID, tokenizer.eosTokenID, tokenizer.unkTokenID], [0, 1, 2])
        XCTAssertEqual(tokenizer.specialTokenIDs, try self.tokenizer().specialTokenIDs)
        XCTAssertEqual(tokenizer.tokenIDs("fill <extra_id_0> in"), try self.tokenizer().tokenIDs("fill <extra_id_0> in"))
    }

    /// tokenizer-v4/ (converted by transformers 4.57: Precompiled, Strip(right), Replace(/ {2,}/),
    /// Metaspace "always"; and its "first" variant, legacy false): `.tokenizerJSON` gives
    /// transformers 4.57's ids, `.transformers5` transformers 5.24's, on the same folder.
    func testTokenizerJSONCompatibilityMatchesTransformers4() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.root + "/prompts-v4.json"))
        let fixture = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let rows = try XCTUnwrap(fixture["prompts"] as? [[String: Any]])
        let legacy = Self.root + "/tokenizer-v4"
        let nonLegacy = try makeTemporaryFolder(self)
        let json = try String(contentsOfFile: legacy + "/tokenizer.json", encoding: .utf8)
        try writeFile(nonLegacy + "/tokenizer.json",
                      json.replacingOccurrences(of: "\"prepend_scheme\": \"always\"", with: "\"prepend_scheme\": \"first\""))
        try FileManager.default.copyItem(atPath: legacy + "/tokenizer_config.json", toPath: nonLegacy + "/tokenizer_config.json")
        var tokenizers: [String: (v4: T5Tokenizer, v5: T5Tokenizer)] = [:]
        for (variant, folder) in [("legacy", legacy), ("non-legacy", nonLegacy)] {
            tokenizers[variant] = (try T5Tokenizer(folder: folder, compatibility: .tokenizerJSON), try T5Tokenizer(folder: folder))
        }
        XCTAssertEqual(tokenizers["legacy"]?.v4.compatibility, .tokenizerJSON)
        XCTAssertEqual(tokenizers["legacy"]?.v4.modelMaxLength, 512)
        XCTAssertEqual(rows.count, 150)
        var differing = 0
        for row in rows {
            let variant = try XCTUnwrap(row["variant"] as? String)
            let (v4, v5) = try XCTUnwrap(tokenizers[variant])
            let text = try XCTUnwrap(row["text"] as? String)
            let label = "\(variant), \(try XCTUnwrap(row["name"] as? String)): \(text.debugDescription)"
            let ids4 = try XCTUnwrap(row["ids4"] as? [Int])
            XCTAssertEqual(v4.encode(text).ids, ids4, label)
            XCTAssertEqual(v4.tokenize(text), try XCTUnwrap(row["pieces4"] as? [String]), label)
            let padded = v4.encode(text, padding: .maxLength, truncation: true, maxLength: 8)
            XCTAssertEqual(padded.ids, try XCTUnwrap(row["ids4_max_length_8"] as? [Int]), label)
            XCTAssertEqual(padded.attentionMask, try XCTUnwrap(row["mask4_max_length_8"] as? [Int]), label)
            let ids5 = try XCTUnwrap(row["ids5"] as? [Int])
            XCTAssertEqual(v5.encode(text).ids, ids5, label)
            if ids4 != ids5 { differing += 1 }
        }
        XCTAssertGreaterThanOrEqual(differing, 5)
        // Spelled out: a tab stays in its piece as written; "first" prepends nothing after </s>.
        XCTAssertTrue(tokenizers["legacy"]?.v4.tokenize("a\tred").contains("\t") ?? false)
        XCTAssertFalse(tokenizers["legacy"]?.v5.tokenize("a\tred").contains("\t") ?? true)
        XCTAssertEqual(tokenizers["non-legacy"]?.v4.tokenize("hello</s>world"), ["▁h", "ello", "</s>", "w", "or", "ld"])
        XCTAssertEqual(tokenizers["legacy"]?.v4.tokenize("hello</s>world"), ["▁h", "ello", "</s>", "▁w", "or", "ld"])
    }

    func testConcurrentEncodingGivesTheSameIDs() throws {
        let tokenizer = try tokenizer()
        let texts = try prompts().map(\.text)
        let expected = texts.map { tokenizer.tokenIDs($0) }
        let results = UnsafeSendableBox(Array(repeating: [[Int]](), count: 4))
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let ids = texts.map { tokenizer.tokenIDs($0) }
            results.lock.lock()
            results.value[worker] = ids
            results.lock.unlock()
        }
        for ids in results.value { XCTAssertEqual(ids, expected) }
    }
}

/// A lock-protected value shared by the workers of a concurrency test.
final class UnsafeSendableBox<Value>: @unchecked Sendable {
    let lock = NSLock()
    var value: Value
    init(_ value: Value) { self.value = value }
}
