import Foundation
import Tokenizers
import XCTest

/// The tokenizer fixtures (tools/reference/make_tokenizer_fixtures.py, transformers 5.24.0):
/// a 1000-entry CLIP vocabulary in SD 1.5's file format and transformers' ids for 48 prompts.
let tokenizerFixtures: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<2 { url.deleteLastPathComponent() }  // TestSupport.swift, TokenizersTests
    return url.appendingPathComponent("Fixtures/tokenizer").path
}()

/// One prompt of prompts.json with transformers' results.
struct FixturePrompt {
    let name: String
    let text: String
    let ids: [Int]
    let tokens: [String]
    let paddedIDs: [Int]
    let paddedMask: [Int]
    let truncated: Bool
}

func loadFixturePrompts() throws -> [FixturePrompt] {
    let data = try Data(contentsOf: URL(fileURLWithPath: tokenizerFixtures + "/prompts.json"))
    let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let prompts = try XCTUnwrap(root["prompts"] as? [[String: Any]])
    return try prompts.map { prompt in
        FixturePrompt(name: try XCTUnwrap(prompt["name"] as? String),
                      text: try XCTUnwrap(prompt["text"] as? String),
                      ids: try XCTUnwrap(prompt["ids"] as? [Int]),
                      tokens: try XCTUnwrap(prompt["tokens"] as? [String]),
                      paddedIDs: try XCTUnwrap(prompt["ids_max_length_77"] as? [Int]),
                      paddedMask: try XCTUnwrap(prompt["attention_mask_max_length_77"] as? [Int]),
                      truncated: try XCTUnwrap(prompt["truncated"] as? Bool))
    }
}

/// A fresh empty folder, removed when the test ends.
func makeTemporaryFolder(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "tokenizer-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func writeFile(_ path: String, bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Asserts that `body` throws exactly `expected`.
func assertThrows(_ expected: TokenizerError, file: StaticString = #filePath, line: UInt = #line,
                  _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected \(expected), got no error", file: file, line: line)
    } catch let error as TokenizerError {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}
