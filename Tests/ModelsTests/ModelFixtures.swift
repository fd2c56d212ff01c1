import Foundation
import Tensor
import TestSupport
import XCTest

/// Asserts the same shape and a relative L2 error within `tolerance` (1e-4 by default);
/// `SHOW_ERRORS=1` prints each error.
func assertMatches(_ actual: Tensor, _ expected: Tensor, tolerance: Double = 1e-4, _ label: String,
                   file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(actual.shape, expected.shape, label, file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let error = try relativeL2(actual, expected)
    XCTAssertLessThanOrEqual(error, tolerance, "\(label): relative L2 error \(error)", file: file, line: line)
    if ProcessInfo.processInfo.environment["SHOW_ERRORS"] != nil { print("\(label): relative L2 error \(error)") }
}
