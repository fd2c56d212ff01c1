import Foundation
import Tokenizers
import XCTest

/// Each malformed Unigram tokenizer.json gives one specific typed error naming the file, never a
/// trap. The files are the fixture's tokenizer.json with one thing broken.
final class T5TokenizerMalformedTests: XCTestCase {
    private var folder = ""
    private var path: String { folder + "/tokenizer.json" }

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        try FileManager.default.copyItem(atPath: T5TokenizerTests.folder + "/tokenizer.json", toPath: path)
    }

    private func load() throws { _ = try T5Tokenizer(folder: folder) }

    /// The fixture's tokenizer.json as a JSON object (or tokenizer-v4's, whose charsmap is small).
    private func original(v4: Bool = false) throws -> [String: Any] {
        let folder = v4 ? T5TokenizerTests.root + "/tokenizer-v4" : T5TokenizerTests.folder
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/tokenizer.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func write(_ object: [String: Any]) throws {
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    /// Writes the fixture's file with `change` applied to its `model` object.
    private func writeModel(v4: Bool = false, _ change: (inout [String: Any]) throws -> Void) throws {
        var root = try original(v4: v4)
        var model = try XCTUnwrap(root["model"] as? [String: Any])
        try change(&model)
        root["model"] = model
        try write(root)
    }

    /// Writes the fixture's file with `data` (base64-encoded) as its charsmap.
    private func writeCharsmap(_ encoded: String) throws {
        var root = try original()
        root["normalizer"] = ["type": "Precompiled", "precompiled_charsmap": encoded]
        try write(root)
    }

    /// A charsmap: the header, `units` (little-endian) and `strings`.
    private func charsmap(units: [UInt32], strings: [UInt8]) -> String {
        var bytes: [UInt8] = []
        for value in [UInt32(units.count * 4)] + units {
            bytes += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
        }
        return Data(bytes + strings).base64EncodedString()
    }

    /// A 256-unit trie whose only key is "a", its unit given, its value unit at index 1.
    private func singleKeyUnits(aUnit: UInt32, value: UInt32) -> [UInt32] {
        var units = [UInt32](repeating: 0, count: 256)
        units[0x61] = aUnit
        units[1] = 0x8000_0000 | value
        return units
    }

    /// `label` 'a', a leaf, and the offset that leads from unit 0x61 to unit 1.
    private let aLeaf: UInt32 = (0x60 << 10) | 0x100 | 0x61

    func testTheValidFileLoads() throws {
        XCTAssertNoThrow(try load())
    }

    func testMissingFile() throws {
        try FileManager.default.removeItem(atPath: path)
        assertThrows(.missingFile(path: path)) { try load() }
    }

    func testBrokenJSON() throws {
        try writeFile(path, "{\n\"model\": {\"type\": \"Unigram\",\n\"vocab\": [[\"a\", 0.0],]}}")
        assertThrows(.malformedJSON(path: path, line: 3, reason: "expected a value, found ']'")) { try load() }
    }

    func testMissingModel() throws {
        try writeFile(path, "{\"version\": \"1.0\"}")
        assertThrows(.invalidConfiguration(path: path, key: "model", reason: "is missing: a tokenizer.json needs a \"model\" object")) {
            try load()
        }
    }

    func testUnknownModelType() throws {
        try writeModel { $0["type"] = "BPE" }
        assertThrows(.unsupportedModel(path: path, type: "BPE", expected: "Unigram")) { try load() }
        XCTAssertEqual(TokenizerError.unsupportedModel(path: "t.json", type: "BPE", expected: "Unigram").description,
                       "t.json: the tokenizer model is BPE, but this tokenizer needs a Unigram model.")
        try writeModel { $0["type"] = 3 }
        assertThrows(.unsupportedModel(path: path, type: "a number", expected: "Unigram")) { try load() }
    }

    func testMissingVocabulary() throws {
        try writeModel { $0.removeValue(forKey: "vocab") }
        assertThrows(.invalidConfiguration(path: path, key: "model.vocab",
                                           reason: "is missing: a Unigram model needs its list of [piece, score] pairs")) { try load() }
        try writeModel { $0["vocab"] = ["a": 0] }
        assertThrows(.invalidConfiguration(path: path, key: "model.vocab",
                                           reason: "must be a list of [piece, score] pairs, found an object")) { try load() }
        try writeModel { $0["vocab"] = [Any]() }
        assertThrows(.invalidConfiguration(path: path, key: "model.vocab",
                                           reason: "is empty: a Unigram model needs at least its unknown token")) { try load() }
    }

    func testPieceThatIsNotAPair() throws {
        for entry: Any in [["a"], "a", ["a", -1.0, 0], [Any]()] {
            try writeModel { model in
                var vocab = try XCTUnwrap(model["vocab"] as? [Any])
                vocab[5] = entry
                model["vocab"] = vocab
            }
            assertThrows(.invalidUnigramPiece(path: path, index: 5, reason: "is not a [piece, score] pair")) { try load() }
        }
        try writeModel { model in
            var vocab = try XCTUnwrap(model["vocab"] as? [Any])
            vocab[7] = [7, -1.5]
            model["vocab"] = vocab
        }
        assertThrows(.invalidUnigramPiece(path: path, index: 7, reason: "has a piece that is not a string")) { try load() }
        XCTAssertEqual(TokenizerError.invalidUnigramPiece(path: "t.json", index: 7, reason: "is not a [piece, score] pair").description,
                       "t.json: entry 7 of \"model.vocab\" is not a [piece, score] pair.")
    }

    func testScoreThatIsNotANumber() throws {
        for score: Any in ["-1.5", NSNull(), true] {
            try writeModel { model in
                var vocab = try XCTUnwrap(model["vocab"] as? [Any])
                vocab[9] = ["x", score]
                model["vocab"] = vocab
            }
            assertThrows(.invalidUnigramPiece(path: path, index: 9, reason: "has a score that is not a finite number")) { try load() }
        }
        // A literal past float64's range reads as infinity: refused too.
        try writeFile(path, "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0], [\"a\", -1e999]]}}")
        assertThrows(.invalidUnigramPiece(path: path, index: 1, reason: "has a score that is not a finite number")) { try load() }
    }

    func testUnknownIDOutOfRange() throws {
        try writeModel { $0["unk_id"] = 526 }
        assertThrows(.unknownTokenIDOutOfRange(path: path, id: 526, vocabularySize: 526)) { try load() }
        try writeModel { $0["unk_id"] = -1 }
        assertThrows(.unknownTokenIDOutOfRange(path: path, id: -1, vocabularySize: 526)) { try load() }
        try writeModel { $0["unk_id"] = "2" }
        assertThrows(.invalidConfiguration(path: path, key: "model.unk_id", reason: "must be an integer or null")) { try load() }
        // transformers 5's T5Tokenizer takes id 2 as the unknown token whatever the file says.
        try writeModel { model in
            model["unk_id"] = 0
            model["vocab"] = [["<unk>", 0.0], ["a", -1.0]]
        }
        assertThrows(.unknownTokenIDOutOfRange(path: path, id: 2, vocabularySize: 2)) { try load() }
        XCTAssertEqual(TokenizerError.unknownTokenIDOutOfRange(path: "t.json", id: 2, vocabularySize: 2).description,
                       "t.json: the unknown-token id 2 is not the id of a vocabulary entry (the vocabulary has 2).")
    }

    func testCharsmapThatIsNotBase64() throws {
        for encoded in ["not base64!", "AAA", "AAAA=", "AB==", "AAAA\nAAAA"] {
            try writeCharsmap(encoded)
            assertThrows(.invalidCharsmap(path: path, reason: "is not valid base64")) { try load() }
        }
        var root = try original()
        root["normalizer"] = ["type": "Precompiled", "precompiled_charsmap": 12]
        try write(root)
        assertThrows(.invalidCharsmap(path: path, reason: "is not a string")) { try load() }
        root["normalizer"] = ["type": "Sequence", "normalizers": [["type": "Precompiled"]]]
        try write(root)
        assertThrows(.invalidCharsmap(path: path, reason: "is missing from the Precompiled normalizer")) { try load() }
        XCTAssertEqual(TokenizerError.invalidCharsmap(path: "t.json", reason: "is not valid base64").description,
                       "t.json: the normalizer's \"precompiled_charsmap\" is not valid base64.")
    }

    func testCharsmapCutShort() throws {
        let real = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(
            (try original()["normalizer"] as? [String: Any])?["precompiled_charsmap"] as? String)))
        // The header says 179 200 bytes of trie; keep 1000 bytes of it.
        try writeCharsmap(real.prefix(1004).base64EncodedString())
        assertThrows(.invalidCharsmap(path: path, reason: "declares a trie of 179200 bytes, but only 1000 bytes follow its header")) {
            try load()
        }
        try writeCharsmap(Data([1, 0]).base64EncodedString())
        assertThrows(.invalidCharsmap(path: path, reason: "has 2 bytes, fewer than its 4-byte header")) { try load() }
        try writeCharsmap(Data([0, 0, 0, 0]).base64EncodedString())
        assertThrows(.invalidCharsmap(path: path, reason: "has an empty trie")) { try load() }
        try writeCharsmap(charsmap(units: singleKeyUnits(aUnit: aLeaf, value: 0), strings: [0xC3, 0x28, 0]))
        assertThrows(.invalidCharsmap(path: path, reason: "has replacement strings that are not valid UTF-8")) { try load() }
    }

    func testCharsmapOffsetsPastTheData() throws {
        // The root's block of 256 units does not fit in a trie of 16.
        try writeCharsmap(charsmap(units: [UInt32](repeating: 0, count: 16), strings: [0]))
        assertThrows(.invalidCharsmap(path: path, reason: "has a root node past the end of its trie")) { try load() }
        // 'a' leads to unit 0x61 ^ 1000, past the 256 units.
        try writeCharsmap(charsmap(units: singleKeyUnits(aUnit: (1000 << 10) | 0x61, value: 0), strings: [0]))
        assertThrows(.invalidCharsmap(path: path, reason: "has a trie offset past the end of its trie (unit 97)")) { try load() }
        // 'a' is a key whose replacement starts at byte 500 of 2.
        try writeCharsmap(charsmap(units: singleKeyUnits(aUnit: aLeaf, value: 500), strings: [0x62, 0]))
        assertThrows(.invalidCharsmap(path: path, reason: "has a replacement offset 500 that is not in its 2 bytes of strings")) {
            try load()
        }
        // …or inside a character.
        try writeCharsmap(charsmap(units: singleKeyUnits(aUnit: aLeaf, value: 1), strings: [0xC3, 0xA9, 0]))
        assertThrows(.invalidCharsmap(path: path, reason: "has a replacement offset 1 that is not in its 3 bytes of strings")) {
            try load()
        }
    }

    /// The decoding of units, on a one-key table: "a" → "b" (the key 'a' through its leaf unit,
    /// the value unit holding offset 0 of "b\0"); every other character is kept.
    func testSingleKeyCharsmapReplacesItsKey() throws {
        try writeCharsmap(charsmap(units: singleKeyUnits(aUnit: aLeaf, value: 0), strings: [0x62, 0]))
        let tokenizer = try T5Tokenizer(folder: folder)
        XCTAssertEqual(tokenizer.tokenize("a cab"), tokenizer.tokenize("b cbb"))
        XCTAssertNotEqual(tokenizer.tokenize("a cab"), try T5TokenizerTests.sharedTokenizer().tokenize("a cab"))
        XCTAssertEqual(tokenizer.tokenize("café"), try T5TokenizerTests.sharedTokenizer().tokenize("cbfé"))
    }

    func testInvalidConfiguration() throws {
        for value in ["\"100\"", "-1", "1.5", "2147483647"] {
            try writeFile(folder + "/tokenizer_config.json", "{\"extra_ids\": \(value)}")
            assertThrows(.invalidConfiguration(path: folder + "/tokenizer_config.json", key: "extra_ids",
                                               reason: "must be an integer in 0...65536")) { try load() }
        }
        // No sentinels (and an added_tokens_decoder, so tokenizer.json's added tokens are not
        // read): "<extra_id_0>" is ordinary text, which the model covers with its piece after "▁".
        try writeFile(folder + "/tokenizer_config.json", "{\"extra_ids\": 0, \"added_tokens_decoder\": {}}")
        let tokenizer = try T5Tokenizer(folder: folder)
        XCTAssertEqual(tokenizer.specialTokenIDs, [0, 1, 2])
        XCTAssertEqual(tokenizer.tokenize("<extra_id_0>"), ["▁", "<extra_id_0>"])
        XCTAssertEqual(tokenizer.tokenIDs("<extra_id_0>"), [3, 525])
    }

    /// `.tokenizerJSON` reads the pipeline as written and refuses what it cannot reproduce;
    /// `.transformers5` ignores those parts, as transformers 5 does.
    func testUnsupportedPipelineComponents() throws {
        func assertRefused(_ key: String, _ value: Any, _ reason: String, line: UInt = #line) throws {
            var root = try original(v4: true)
            root[key] = value
            try write(root)
            assertThrows(.invalidConfiguration(path: path, key: key, reason: reason), line: line) {
                _ = try T5Tokenizer(folder: folder, compatibility: .tokenizerJSON)
            }
            XCTAssertNoThrow(try T5Tokenizer(folder: folder), line: line)
        }
        let unsupported = "which this tokenizer does not support"
        try assertRefused("normalizer", ["type": "NFKD"], "has a component of type NFKD, \(unsupported)")
        try assertRefused("normalizer", ["type": "Sequence", "normalizers": [["type": "Lowercase"]]],
                          "has a component of type Lowercase, \(unsupported)")
        try assertRefused("normalizer", ["type": "Replace", "pattern": ["Regex": "(a"], "content": "b"],
                          "has a Replace pattern /(a/ that is not a supported regular expression")
        try assertRefused("normalizer", ["type": "Strip", "strip_left": true], "has a Strip without a boolean \"strip_right\"")
        try assertRefused("pre_tokenizer", ["type": "ByteLevel"], "has a component of type ByteLevel, \(unsupported)")
        try assertRefused("pre_tokenizer", ["type": "Sequence", "pretokenizers": [["type": "Metaspace", "replacement": "▁"],
                                                                                   ["type": "WhitespaceSplit"]]],
                          "has a component of type WhitespaceSplit, \(unsupported)")
        try assertRefused("pre_tokenizer", ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"],
                          "has a Metaspace \"prepend_scheme\" other than \"always\", \"first\" or \"never\"")
        try assertRefused("pre_tokenizer", ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                                            "add_prefix_space": false],
                          "has a Metaspace whose \"add_prefix_space\" contradicts its \"prepend_scheme\"")
        try assertRefused("pre_tokenizer", ["type": "Metaspace", "replacement": "ab"],
                          "has a Metaspace whose \"replacement\" is not one character")
        try assertRefused("post_processor", ["type": "BertProcessing"], "has a component of type BertProcessing, \(unsupported)")
        try assertRefused("post_processor", ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": "</s>"]]],
                                             "special_tokens": ["</s>": ["ids": [1]]]], "has a single template without $A")
        try assertRefused("post_processor", ["type": "TemplateProcessing",
                                             "single": [["Sequence": ["id": "A"]], ["SpecialToken": ["id": "</s>"]]],
                                             "special_tokens": [String: Any]()],
                          "names a special token \"</s>\" without integer ids")
        try writeModel(v4: true) { $0["unk_id"] = NSNull() }
        assertThrows(.invalidConfiguration(path: path, key: "model.unk_id", reason: "is null, but this tokenizer needs an unknown-token id")) {
            _ = try T5Tokenizer(folder: folder, compatibility: .tokenizerJSON)
        }
        XCTAssertNoThrow(try T5Tokenizer(folder: folder))
    }

    func testAddedTokensThatAreNotAnArray() throws {
        var root = try original()
        root["added_tokens"] = ["<pad>": 0]
        try write(root)
        assertThrows(.invalidConfiguration(path: path, key: "added_tokens", reason: "must be an array, found an object")) { try load() }
        root["added_tokens"] = [["content": "<pad>"]]
        try write(root)
        assertThrows(.invalidConfiguration(path: path, key: "added_tokens", reason: "has an entry without an integer \"id\"")) {
            try load()
        }
    }
}
