import Foundation
import NN
import Tensor
import XCTest

/// Reference fixtures written by tools/reference/*.py (PyTorch/Diffusers), read without Python.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func file(_ relativePath: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: root.appendingPathComponent(relativePath).path)
    }

    /// Parameters written for `name` in the file's metadata (a JSON object).
    static func parameters(_ file: SafeTensorsFile, _ name: String) throws -> [String: Any] {
        guard let text = file.metadata?[name], let data = text.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }
}

/// ‖a − b‖₂ / ‖b‖₂.
func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        diff += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Asserts same shape and relative L2 error within `tolerance` (DESIGN.md: 1e-4 for modules).
func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Double = 1e-4, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    let a = try actual.floats(), e = try expected.floats()
    XCTAssertEqual(a.count, e.count, "\(label): element count", file: file, line: line)
    let error = relativeL2(a, e)
    XCTAssertLessThanOrEqual(error, tolerance, "\(label): relative L2 \(error), max abs \(maxAbsDifference(a, e))",
                             file: file, line: line)
}
