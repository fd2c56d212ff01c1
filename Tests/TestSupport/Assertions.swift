import Tensor
import XCTest

/// ‖a − b‖₂ / ‖b‖₂ (‖a − b‖₂ when b is all zeros).
public func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        diff += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}

/// ‖a − b‖₂ / ‖b‖₂ of two tensors' float32 values.
public func relativeL2(_ actual: Tensor, _ expected: Tensor) throws -> Double {
    relativeL2(try actual.floats(), try expected.floats())
}

/// The largest |a − b|.
public func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// How a tensor compared with its reference in `assertRelativeL2`.
public struct Closeness: Sendable {
    /// ‖actual − expected‖₂ / ‖expected‖₂.
    public let relativeL2: Double
    /// Whether every value is bit-for-bit the reference's.
    public let bitExact: Bool
}

/// Asserts the same shape ("label: shape"), the same element count ("label: element count")
/// and a relative L2 error within `tolerance` ("label: relative L2 <error>", followed by the
/// largest absolute difference with `showingMaxAbs`). Test targets wrap it as `assertClose`
/// with their own default tolerance.
@discardableResult
public func assertRelativeL2(_ actual: Tensor, _ expected: Tensor, within tolerance: Double, _ label: String,
                             showingMaxAbs: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> Closeness {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    let a = try actual.floats(), e = try expected.floats()
    XCTAssertEqual(a.count, e.count, "\(label): element count", file: file, line: line)
    let error = relativeL2(a, e)
    XCTAssertLessThanOrEqual(error, tolerance,
                             "\(label): relative L2 \(error)" + (showingMaxAbs ? ", max abs \(maxAbsDifference(a, e))" : ""),
                             file: file, line: line)
    return Closeness(relativeL2: error, bitExact: zip(a, e).allSatisfy { $0.bitPattern == $1.bitPattern })
}

/// Asserts that `body` throws exactly `expected`: `assertThrows(error) { try f() }`.
public func assertThrows<E: Error & Equatable, T>(_ expected: E, file: StaticString = #filePath, line: UInt = #line,
                                                  _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected), got no error", file: file, line: line)
    } catch let error as E {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}
