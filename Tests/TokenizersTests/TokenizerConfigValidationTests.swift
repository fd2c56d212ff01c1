import Foundation
import Tokenizers
import XCTest

/// `model_max_length` as transformers reads it (issue 14): its "no known limit" marker,
/// int(1e30), means no limit rather than a length to pad to; any other value must be a length
/// that can be allocated.
final class TokenizerConfigValidationTests: XCTestCase {
    private var folder = ""
    private var configuration: String { folder + "/tokenizer_config.json" }

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: tokenizerFixtures + "/" + name, toPath: folder + "/" + name)
        }
    }

    private func tokenizer(maxLength literal: String) throws -> CLIPTokenizer {
        try writeFile(configuration, #"{"model_max_length": \#(literal)}"#)
        return try CLIPTokenizer(folder: folder)
    }

    /// transformers' VERY_LARGE_INTEGER, as real repositories carry it: no limit, so encoding
    /// without a length neither pads nor truncates (transformers' behaviour) and nothing is
    /// sized by it; with an explicit length (a pipeline's text encoder positions) all works.
    func testVeryLargeIntegerMeansNoLimit() throws {
        for literal in ["1000000000000000019884624838656", "1e30", "1.0000000000000000199e+30"] {
            let tokenizer = try tokenizer(maxLength: literal)
            XCTAssertNil(tokenizer.modelMaxLength, literal)
            let long = Array(repeating: "a photo", count: 100).joined(separator: " ")
            let unbounded = tokenizer.encode(long, padding: .maxLength, truncation: true)
            XCTAssertGreaterThan(unbounded.ids.count, 77, "no limit: not truncated")
            XCTAssertEqual(tokenizer.encode("a photo", padding: .maxLength, truncation: true).ids, tokenizer.encode("a photo").ids,
                           "no limit: not padded")
            let bounded = tokenizer.encode(long, padding: .maxLength, truncation: true, maxLength: 77)
            XCTAssertEqual(bounded.ids.count, 77)
            XCTAssertEqual(tokenizer.encode(["a", long], padding: .maxLength, truncation: true, maxLength: 77).map(\.ids.count), [77, 77])
        }
    }

    func testUnusableLengthsNameTheFileAndKey() throws {
        for literal in ["0", "-5", "1.5", "\"77\"", "1000000000000", "100000000000000000000"] {
            XCTAssertThrowsError(try tokenizer(maxLength: literal), literal) { error in
                guard case let .invalidConfiguration(path, key, reason)? = error as? TokenizerError else { return XCTFail("\(error)") }
                XCTAssertEqual(path, configuration)
                XCTAssertEqual(key, "model_max_length")
                XCTAssertTrue(reason == "must be a positive integer" || reason.hasPrefix("must be at most 1048576"), reason)
                XCTAssertTrue("\(error)".contains(configuration) && "\(error)".contains("model_max_length"), "\(error)")
            }
        }
    }

    /// The tokenizer's JSON reader does not take Python's NaN/Infinity: a malformed-JSON error
    /// naming the file, not a length.
    func testNonFiniteLiteralsAreMalformedJSON() throws {
        for literal in ["NaN", "Infinity"] {
            XCTAssertThrowsError(try tokenizer(maxLength: literal), literal) { error in
                guard case .malformedJSON(configuration, _, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            }
        }
    }

    /// transformers reads a null `model_max_length` as no limit too.
    func testNullMeansNoLimit() throws {
        XCTAssertNil(try tokenizer(maxLength: "null").modelMaxLength)
    }

    func testOrdinaryLengthsStillApply() throws {
        XCTAssertEqual(try tokenizer(maxLength: "77").modelMaxLength, 77)
        XCTAssertEqual(try tokenizer(maxLength: "512.0").modelMaxLength, 512)
        XCTAssertEqual(try tokenizer(maxLength: "1048576").modelMaxLength, 1 << 20)
        let clip = try tokenizer(maxLength: "16")
        XCTAssertEqual(clip.encode("a photo", padding: .maxLength, truncation: true).ids.count, 16)
    }
}
