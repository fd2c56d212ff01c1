import Foundation
import Tokenizers
import XCTest

/// Special tokens, truncation, padding, batches and decoding on the fixture vocabulary.
final class EncodingTests: XCTestCase {
    private var tokenizer: CLIPTokenizer!

    override func setUpWithError() throws {
        tokenizer = try CLIPTokenizer(folder: tokenizerFixtures)
    }

    func testConfiguration() {
        XCTAssertEqual(tokenizer.compatibility, .tokenizers)
        XCTAssertEqual(tokenizer.modelMaxLength, 77)
        XCTAssertEqual(tokenizer.vocabularySize, 1000)
        XCTAssertEqual(tokenizer.bosTokenID, 998)
        XCTAssertEqual(tokenizer.eosTokenID, 999)
        XCTAssertEqual(tokenizer.padTokenID, 999)
        XCTAssertEqual(tokenizer.unkTokenID, 999)
        XCTAssertEqual(tokenizer.specialTokenIDs, [998, 999])
        XCTAssertEqual(tokenizer.id(forToken: "<|startoftext|>"), 998)
        XCTAssertEqual(tokenizer.id(forToken: "a</w>"), 320)
        XCTAssertNil(tokenizer.id(forToken: "no such token"))
    }

    func testStartAndEndTokensSurroundEveryText() {
        XCTAssertEqual(tokenizer.encode("").ids, [998, 999])
        XCTAssertEqual(tokenizer.encode("a red circle").ids, [998, 320, 620, 698, 999])
    }

    func testSpecialTokensInTextKeepTheirIDs() {
        XCTAssertEqual(tokenizer.encode("a <|endoftext|> b <|startoftext|> c").ids, [998, 320, 999, 321, 998, 322, 999])
        XCTAssertEqual(tokenizer.encode("a<|endoftext|>b").ids, [998, 320, 999, 321, 999])
    }

    func testTruncationKeepsTheEndTokenLast() {
        let text = Array(repeating: "red", count: 200).joined(separator: " ")
        let encoded = tokenizer.encode(text, padding: .maxLength, truncation: true)
        XCTAssertEqual(encoded.ids.count, 77)
        XCTAssertEqual(encoded.ids.first, 998)
        XCTAssertEqual(encoded.ids.last, 999)
        XCTAssertEqual(Set(encoded.ids[1..<76]), [620])
        XCTAssertEqual(encoded.attentionMask, Array(repeating: 1, count: 77))

        let untruncated = tokenizer.encode(text, padding: .maxLength, truncation: false)
        XCTAssertEqual(untruncated.ids.count, 202)
        XCTAssertEqual(tokenizer.encode(text, truncation: true, maxLength: 10).ids, [998] + Array(repeating: 620, count: 8) + [999])
    }

    func testTruncationToTwoOrLessLeavesTheTextAsTransformersDoes() {
        XCTAssertEqual(tokenizer.encode("a b c", truncation: true, maxLength: 3).ids, [998, 320, 999])
        XCTAssertEqual(tokenizer.encode("a b c", truncation: true, maxLength: 2).ids, [998, 320, 321, 322, 999])
        XCTAssertEqual(tokenizer.encode("a b c", truncation: true, maxLength: 0).ids, [998, 320, 321, 322, 999])
    }

    func testPaddingUsesThePadIDAndMasksIt() {
        let encoded = tokenizer.encode("a red circle", padding: .maxLength, truncation: true)
        XCTAssertEqual(encoded.ids, [998, 320, 620, 698, 999] + Array(repeating: 999, count: 72))
        XCTAssertEqual(encoded.attentionMask, Array(repeating: 1, count: 5) + Array(repeating: 0, count: 72))
        XCTAssertEqual(tokenizer.encode("a", padding: .maxLength, maxLength: 5).ids, [998, 320, 999, 999, 999])
        XCTAssertEqual(tokenizer.encode("a", padding: .longest).ids, [998, 320, 999])
    }

    func testBatchPaddingToTheLongest() {
        let batch = tokenizer.encode(["a red circle", "a", ""], padding: .longest)
        XCTAssertEqual(batch.map(\.ids), [[998, 320, 620, 698, 999], [998, 320, 999, 999, 999], [998, 999, 999, 999, 999]])
        XCTAssertEqual(batch.map(\.attentionMask), [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
        XCTAssertEqual(tokenizer.encode([String](), padding: .longest), [])
    }

    func testDecodeRoundTrip() {
        let ids = tokenizer.encode("A Red Circle, café!").ids
        XCTAssertEqual(tokenizer.decode(ids), "<|startoftext|>a red circle , café ! <|endoftext|>")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "a red circle , café !")
        XCTAssertEqual(tokenizer.decode([123_456]), "")
    }

    func testLoadsFromAURL() throws {
        let byURL = try CLIPTokenizer(folder: URL(fileURLWithPath: tokenizerFixtures))
        XCTAssertEqual(byURL.encode("a red circle").ids, tokenizer.encode("a red circle").ids)
    }

    func testFolderWithoutConfigurationUsesCLIPDefaults() throws {
        let folder = try makeTemporaryFolder(self)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: tokenizerFixtures + "/" + name, toPath: folder + "/" + name)
        }
        let bare = try CLIPTokenizer(folder: folder)
        XCTAssertEqual(bare.modelMaxLength, 77)
        XCTAssertEqual([bare.bosTokenID, bare.eosTokenID, bare.padTokenID], [998, 999, 999])
        XCTAssertEqual(bare.encode("a red circle").ids, tokenizer.encode("a red circle").ids)
    }

    func testStableDiffusion2PadTokenIsAnAddedToken() throws {
        // SD 2.x tokenizers pad with "!", which becomes an added token: a "!" in the text is
        // cut out of its word and keeps its own id.
        let folder = try makeTemporaryFolder(self)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: tokenizerFixtures + "/" + name, toPath: folder + "/" + name)
        }
        try writeFile(folder + "/tokenizer_config.json", #"{"model_max_length": 8, "pad_token": "!"}"#)
        for compatibility in [CLIPTokenizer.Compatibility.tokenizers, .transformers4] {
            let sd2 = try CLIPTokenizer(folder: folder, compatibility: compatibility)
            XCTAssertEqual(sd2.padTokenID, 0)
            let encoded = sd2.encode("red! circle", padding: .maxLength)
            XCTAssertEqual(encoded.ids, [998, 620, 0, 698, 999, 0, 0, 0], "\(compatibility)")
            XCTAssertEqual(encoded.attentionMask, [1, 1, 1, 1, 1, 0, 0, 0])
        }
        // Without it, "!" ends its word.
        XCTAssertEqual(tokenizer.encode("red! circle").ids, [998, 620, 256, 698, 999])
    }
}
