import Foundation
import Tokenizers
import XCTest

/// Each malformed tokenizer folder gives one specific typed error naming the file (and the
/// line), never a trap.
final class MalformedFileTests: XCTestCase {
    private var folder = ""
    private var vocabulary: String { folder + "/vocab.json" }
    private var merges: String { folder + "/merges.txt" }
    private var configuration: String { folder + "/tokenizer_config.json" }

    /// A valid folder: the fixture's vocabulary and merges, no configuration.
    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: tokenizerFixtures + "/" + name, toPath: folder + "/" + name)
        }
    }

    private func load() throws { _ = try CLIPTokenizer(folder: folder) }

    func testTheValidFolderLoads() throws {
        XCTAssertNoThrow(try load())
    }

    func testMissingVocabulary() throws {
        try FileManager.default.removeItem(atPath: vocabulary)
        assertThrows(.missingFile(path: vocabulary)) { try load() }
    }

    func testMissingMerges() throws {
        try FileManager.default.removeItem(atPath: merges)
        assertThrows(.missingFile(path: merges)) { try load() }
    }

    func testMissingFolder() {
        let missing = folder + "/nowhere"
        assertThrows(.missingFile(path: missing + "/vocab.json")) { _ = try CLIPTokenizer(folder: missing) }
    }

    func testVocabularyThatIsNotAnObject() throws {
        try writeFile(vocabulary, "[\"a\", \"b\"]")
        assertThrows(.vocabularyNotAnObject(path: vocabulary, found: "an array")) { try load() }
        try writeFile(vocabulary, "\"a\"")
        assertThrows(.vocabularyNotAnObject(path: vocabulary, found: "a string")) { try load() }
    }

    func testVocabularyIDThatIsNotAnInteger() throws {
        try writeFile(vocabulary, "{\n  \"a\": 0,\n  \"b\": \"1\"\n}")
        assertThrows(.invalidTokenID(path: vocabulary, line: 3, token: "b")) { try load() }
        try writeFile(vocabulary, "{\"a\": 1.5}")
        assertThrows(.invalidTokenID(path: vocabulary, line: 1, token: "a")) { try load() }
        try writeFile(vocabulary, "{\"a\": 0,\n\"b\": -1}")
        assertThrows(.invalidTokenID(path: vocabulary, line: 2, token: "b")) { try load() }
        try writeFile(vocabulary, "{\"a\": 4294967296}")
        assertThrows(.invalidTokenID(path: vocabulary, line: 1, token: "a")) { try load() }
        try writeFile(vocabulary, "{\"a\": null}")
        assertThrows(.invalidTokenID(path: vocabulary, line: 1, token: "a")) { try load() }
    }

    func testVocabularyWithBrokenJSON() throws {
        try writeFile(vocabulary, "{\n  \"a\": 0\n  \"b\": 1\n}")
        assertThrows(.malformedJSON(path: vocabulary, line: 3, reason: "expected ',' or '}', found '\"'")) { try load() }
        try writeFile(vocabulary, "{\"a\": 0,")
        assertThrows(.malformedJSON(path: vocabulary, line: 1, reason: "expected a string key, found the end of the file")) {
            try load()
        }
        try writeFile(vocabulary, "{\"a\": 0} x")
        assertThrows(.malformedJSON(path: vocabulary, line: 1, reason: "unexpected 'x' after the value")) { try load() }
        try writeFile(vocabulary, "")
        assertThrows(.malformedJSON(path: vocabulary, line: 1, reason: "expected a value, found the end of the file")) {
            try load()
        }
    }

    func testVocabularyThatIsNotUTF8() throws {
        try writeFile(vocabulary, bytes: Array("{\n\"a\": 0,\n\"".utf8) + [0xFF, 0xFE] + Array("\": 1}".utf8))
        assertThrows(.invalidUTF8(path: vocabulary, line: 3)) { try load() }
    }

    func testMergesWithoutVersionHeader() throws {
        try writeFile(merges, "i n\nt h\n")
        assertThrows(.missingVersionHeader(path: merges)) { try load() }
        try writeFile(merges, "")
        assertThrows(.missingVersionHeader(path: merges)) { try load() }
    }

    func testMergeLineWithOneSymbol() throws {
        try writeFile(merges, "#version: 0.2\ni n\nt\n")
        assertThrows(.malformedMerge(path: merges, line: 3, fieldCount: 1)) { try load() }
    }

    func testMergeLineWithThreeSymbols() throws {
        try writeFile(merges, "#version: 0.2\ni n x\n")
        assertThrows(.malformedMerge(path: merges, line: 2, fieldCount: 3)) { try load() }
    }

    func testMergeWithUnknownSymbol() throws {
        try writeFile(merges, "#version: 0.2\ni n\nin qqq\n")
        assertThrows(.unknownMergeSymbol(path: merges, line: 3, symbol: "qqq")) { try load() }
    }

    func testMergeWhoseResultIsNotInTheVocabulary() throws {
        // "q" and "j" are byte-level symbols of the vocabulary, "qj" is not.
        try writeFile(merges, "#version: 0.2\nq j\n")
        assertThrows(.unknownMergeSymbol(path: merges, line: 2, symbol: "qj")) { try load() }
    }

    func testLineNumbersCountLeadingBlankLines() throws {
        try writeFile(merges, "\n\n#version: 0.2\ni n\n\nx\n")
        assertThrows(.malformedMerge(path: merges, line: 6, fieldCount: 1)) { try load() }
    }

    func testMergesWithBlankLinesAndCRLFLoad() throws {
        try writeFile(merges, "#version: 0.2\r\ni n\r\n\r\nt h\r\n\r\n")
        let tokenizer = try CLIPTokenizer(folder: folder)
        XCTAssertEqual(tokenizer.tokenize("in"), ["i", "n</w>"])  // "n</w>" is not merged with "i"
        XCTAssertEqual(tokenizer.tokenize("inn"), ["in", "n</w>"])
    }

    func testConfigurationWithBrokenJSON() throws {
        try writeFile(configuration, "{\n\"model_max_length\": 77,\n}")
        assertThrows(.malformedJSON(path: configuration, line: 3, reason: "expected a string key, found '}'")) { try load() }
    }

    func testDeeplyNestedConfiguration() throws {
        try writeFile(configuration, "{\"x\": " + String(repeating: "[", count: 100_000))
        assertThrows(.malformedJSON(path: configuration, line: 1, reason: "nested more than 256 levels deep")) { try load() }
    }

    func testConfigurationValuesOfTheWrongType() throws {
        try writeFile(configuration, #"{"model_max_length": "77"}"#)
        assertThrows(.invalidConfiguration(path: configuration, key: "model_max_length", reason: "must be a positive integer")) {
            try load()
        }
        try writeFile(configuration, #"{"model_max_length": 0}"#)
        assertThrows(.invalidConfiguration(path: configuration, key: "model_max_length", reason: "must be a positive integer")) {
            try load()
        }
        try writeFile(configuration, #"{"bos_token": 5}"#)
        assertThrows(.invalidConfiguration(path: configuration, key: "bos_token",
                                           reason: "must be a string or a token object, found a number")) { try load() }
        try writeFile(configuration, #"{"eos_token": {"lstrip": true}}"#)
        assertThrows(.invalidConfiguration(path: configuration, key: "eos_token", reason: "must have a string \"content\"")) {
            try load()
        }
        try writeFile(configuration, #"{"added_tokens_decoder": {"x": {"content": "<x>"}}}"#)
        assertThrows(.invalidConfiguration(path: configuration, key: "added_tokens_decoder",
                                           reason: "has a key \"x\" that is not a token id")) { try load() }
        try writeFile(configuration, "[]")
        assertThrows(.invalidConfiguration(path: configuration, key: "(top level)",
                                           reason: "must be a JSON object, found an array")) { try load() }
    }

    func testHugeModelMaxLengthMeansNoLimit() throws {
        try writeFile(configuration, #"{"model_max_length": 1000000000000000019884624838656}"#)
        XCTAssertNil(try CLIPTokenizer(folder: folder).modelMaxLength)
    }

    func testErrorDescriptionsNameFileAndLine() {
        let error = TokenizerError.malformedMerge(path: "/m/merges.txt", line: 7, fieldCount: 1)
        XCTAssertEqual(error.description, "/m/merges.txt, line 7: a merge must have exactly two symbols, found 1.")
        XCTAssertEqual(TokenizerError.unknownMergeSymbol(path: "/m/merges.txt", line: 2, symbol: "qj").description,
                       "/m/merges.txt, line 2: merge symbol \"qj\" is not in the vocabulary.")
        XCTAssertEqual(TokenizerError.missingFile(path: "/m/vocab.json").description,
                       "Tokenizer file /m/vocab.json does not exist.")
    }
}
