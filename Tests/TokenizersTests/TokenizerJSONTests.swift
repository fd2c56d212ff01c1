import Foundation
import Tokenizers
import XCTest

/// A tokenizer folder saved by transformers 5 holds only tokenizer.json and tokenizer_config.json
/// (tools/reference/make_transformers5_tokenizer.py re-saves the demo model's tokenizer so): it
/// loads from tokenizer.json's BPE model and gives the original folder's ids.
final class TokenizerJSONTests: XCTestCase {
    static let saved = tokenizerFixtures + "/saved-by-transformers5"
    static let original: String = {
        var url = URL(fileURLWithPath: tokenizerFixtures)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // tokenizer, Fixtures, Tests
        return url.appendingPathComponent("models/demo/tokenizer").path
    }()

    func testSameIDsAsTheVocabularyFiles() throws {
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.saved + "/vocab.json"))
        let saved = try CLIPTokenizer(folder: Self.saved)
        let original = try CLIPTokenizer(folder: Self.original)
        XCTAssertEqual(saved.vocabularySize, original.vocabularySize)
        XCTAssertEqual([saved.bosTokenID, saved.eosTokenID, saved.padTokenID], [599, 600, 600])
        XCTAssertEqual([saved.bosTokenID, saved.eosTokenID, saved.padTokenID, saved.unkTokenID],
                       [original.bosTokenID, original.eosTokenID, original.padTokenID, original.unkTokenID])
        for text in ["a large red circle on a blue background", "a yellow star left of a green square on a white and black background",
                     "Words it never saw, and punctuation!", "", String(repeating: "a small red star ", count: 30)] {
            XCTAssertEqual(saved.encode(text, padding: .maxLength, truncation: true).ids,
                           original.encode(text, padding: .maxLength, truncation: true).ids, text)
        }
        XCTAssertEqual(saved.encode("a large red circle on a blue background").ids, [599, 320, 587, 545, 557, 515, 320, 547, 522, 600])
    }

    func testMalformedTokenizerJSON() throws {
        let folder = NSTemporaryDirectory() + "tokenizer-json-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: Self.saved + "/tokenizer_config.json", toPath: folder + "/tokenizer_config.json")
        let path = folder + "/tokenizer.json"
        let cases: [(String, TokenizerError)] = [
            ("{\"model\": 3}", .invalidConfiguration(path: path, key: "model", reason: "a tokenizer.json needs a \"model\" object")),
            ("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
             .invalidConfiguration(path: path, key: "model.type", reason: "a CLIP tokenizer is a BPE model, not WordPiece")),
            ("{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}",
             .invalidConfiguration(path: path, key: "model.vocab", reason: "expected an object of token → id")),
            ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
             .invalidConfiguration(path: path, key: "model.vocab", reason: "the id of token \"a\" is not an integer in 0..<2147483648")),
            ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
             .invalidConfiguration(path: path, key: "model.merges", reason: "expected an array of merges")),
            ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", .malformedMerge(path: path, line: 1, fieldCount: 1)),
            ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\", \"b\"]]}}",
             .unknownMergeSymbol(path: path, line: 1, symbol: "b")),
        ]
        for (text, expected) in cases {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try CLIPTokenizer(folder: folder), text) { XCTAssertEqual($0 as? TokenizerError, expected, text) }
        }
    }
}
