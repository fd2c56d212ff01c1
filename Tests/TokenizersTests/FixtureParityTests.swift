import Foundation
import Tokenizers
import XCTest

/// Ids equal transformers' for every prompt of the fixtures, unpadded and as Diffusers encodes
/// prompts (padded and truncated to 77).
final class FixtureParityTests: XCTestCase {
    private var tokenizer: CLIPTokenizer!
    private var prompts: [FixturePrompt] = []

    override func setUpWithError() throws {
        tokenizer = try CLIPTokenizer(folder: tokenizerFixtures)
        prompts = try loadFixturePrompts()
        XCTAssertGreaterThanOrEqual(prompts.count, 40)
    }

    func testUnpaddedIDsMatchTransformers() {
        for prompt in prompts {
            XCTAssertEqual(tokenizer.encode(prompt.text).ids, prompt.ids, prompt.name)
        }
    }

    func testPaddedAndTruncatedIDsMatchTransformers() {
        for prompt in prompts {
            let encoded = tokenizer.encode(prompt.text, padding: .maxLength, truncation: true)
            XCTAssertEqual(encoded.ids, prompt.paddedIDs, prompt.name)
            XCTAssertEqual(encoded.attentionMask, prompt.paddedMask, prompt.name)
        }
    }

    func testTokensMatchTransformers() {
        for prompt in prompts {
            let tokens = ["<|startoftext|>"] + tokenizer.tokenize(prompt.text) + ["<|endoftext|>"]
            XCTAssertEqual(tokens, prompt.tokens, prompt.name)
            XCTAssertEqual(prompt.ids.map { tokenizer.token(forID: $0) ?? "?" }, prompt.tokens, prompt.name)
        }
    }

    func testFixtureCoversTruncation() {
        XCTAssertGreaterThanOrEqual(prompts.filter(\.truncated).count, 2)
        for prompt in prompts where prompt.truncated {
            XCTAssertGreaterThan(prompt.ids.count, 77, prompt.name)
        }
    }

    func testBatchEqualsSingleEncodings() {
        let texts = prompts.map(\.text)
        let batch = tokenizer.encode(texts, padding: .maxLength, truncation: true)
        XCTAssertEqual(batch.map(\.ids), prompts.map(\.paddedIDs))
        XCTAssertEqual(tokenizer.encode(texts).map(\.ids), prompts.map(\.ids))
    }

    func testConcurrentEncodingGivesTheSameIDs() {
        let tokenizer: CLIPTokenizer = tokenizer
        let prompts = prompts
        let expected = prompts.map(\.paddedIDs)
        let results = ResultSlots(count: prompts.count * 4)
        DispatchQueue.concurrentPerform(iterations: prompts.count * 4) { index in
            let prompt = prompts[index % prompts.count]
            results.set(index, tokenizer.encode(prompt.text, padding: .maxLength, truncation: true).ids)
        }
        for index in 0..<prompts.count * 4 {
            XCTAssertEqual(results.get(index), expected[index % prompts.count], prompts[index % prompts.count].name)
        }
    }
}

/// Results written from several threads.
private final class ResultSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[Int]]
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ index: Int, _ value: [Int]) { lock.withLock { slots[index] = value } }
    func get(_ index: Int) -> [Int] { lock.withLock { slots[index] } }
}
