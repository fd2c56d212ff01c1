import Foundation
import NN
import Tensor
import XCTest

/// Fixture paths and comparisons shared by the model tests.
enum ModelFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func file(_ relative: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: path(relative)) }
}

/// ‖a − b‖₂ / ‖b‖₂ between two tensors of the same shape.
func relativeError(_ actual: Tensor, _ expected: Tensor) throws -> Double {
    let a = try actual.floats(), e = try expected.floats()
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, e) {
        diff += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}

func assertMatches(_ actual: Tensor, _ expected: Tensor, tolerance: Double = 1e-4, _ label: String,
                   file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(actual.shape, expected.shape, label, file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let error = try relativeError(actual, expected)
    XCTAssertLessThanOrEqual(error, tolerance, "\(label): relative L2 error \(error)", file: file, line: line)
    if ProcessInfo.processInfo.environment["SHOW_ERRORS"] != nil { print("\(label): relative L2 error \(error)") }
}
