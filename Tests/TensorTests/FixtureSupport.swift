import Foundation
import NN
import Tensor
import TestSupport
import XCTest

extension Fixtures {
    /// Parameters written for `name` in the file's metadata (a JSON object).
    static func parameters(_ file: SafeTensorsFile, _ name: String) throws -> [String: Any] {
        guard let text = file.metadata?[name], let data = text.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }
}

/// Asserts same shape and relative L2 error within `tolerance` (DESIGN.md: 1e-4 for modules);
/// a failure also gives the largest absolute difference.
func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Double = 1e-4, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    try assertRelativeL2(actual, expected, within: tolerance, label, showingMaxAbs: true, file: file, line: line)
}
