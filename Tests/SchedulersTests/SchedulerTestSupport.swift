import Foundation
import NN
import Schedulers
import Tensor
import XCTest

/// The scheduler fixtures written by tools/reference/make_scheduler_fixtures.py
/// (PyTorch 2.15 / Diffusers 0.42.1), read without Python.
enum SchedulerFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/schedulers")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The variant folders (pndm, ddim-trailing, euler-v, ...).
    static var variants: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: path("\($0)/reference.safetensors")) }.sorted()
    }

    static func reference(_ variant: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: path("\(variant)/reference.safetensors"))
    }

    /// reference.json (Python's json: it may hold `-Infinity`).
    static func info(_ variant: String) throws -> JSONValue {
        let data = try Data(contentsOf: root.appendingPathComponent("\(variant)/reference.json"))
        return try JSONParser.parse(Array(data), allowNonFinite: true)
    }

    static func config(_ variant: String) throws -> SchedulerConfig {
        try SchedulerConfig(contentsOf: path("\(variant)/scheduler_config.json"))
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

/// Same shape and relative L2 error within `tolerance` (1e-5: the scheduler contract in f32).
func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Double = 1e-5, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    let a = try actual.floats(), e = try expected.floats()
    XCTAssertEqual(a.count, e.count, "\(label): element count", file: file, line: line)
    let error = relativeL2(a, e)
    XCTAssertLessThanOrEqual(error, tolerance, "\(label): relative L2 \(error)", file: file, line: line)
    ParityLog.record(label, error: error, exact: zip(a, e).allSatisfy { $0.bitPattern == $1.bitPattern })
}

/// The worst relative error seen per fixture variant, printed by the tests that compare runs.
enum ParityLog {
    nonisolated(unsafe) private static var worst: [String: (Double, Bool)] = [:]
    private static let lock = NSLock()

    static func record(_ label: String, error: Double, exact: Bool) {
        let key = String(label.split(separator: " ").first ?? "")
        lock.lock(); defer { lock.unlock() }
        let old = worst[key] ?? (0, true)
        worst[key] = (max(old.0, error), old.1 && exact)
    }

    static func report(_ title: String) {
        lock.lock(); defer { lock.unlock() }
        for (key, value) in worst.sorted(by: { $0.key < $1.key }) {
            print("\(title) \(key): worst relative L2 \(value.0)\(value.1 ? " (bit-exact)" : "")")
        }
        worst = [:]
    }
}

/// Bit-for-bit equality of float32 values.
func assertBitExact(_ actual: [Float], _ expected: [Float], _ label: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(label): count", file: file, line: line)
    let mismatches = zip(actual, expected).filter { $0.bitPattern != $1.bitPattern }.count
    XCTAssertEqual(mismatches, 0, "\(label): \(mismatches) of \(expected.count) values differ", file: file, line: line)
}

/// Asserts that `body` throws an error equal to `expected`.
func assertThrows<E: Error & Equatable, T>(_ expected: E, _ body: @autoclosure () throws -> T,
                                             file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected \(expected), nothing was thrown", file: file, line: line)
    } catch let error as E {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}
