import Foundation
import NN
import Schedulers
import Tensor
import TestSupport
import XCTest

/// The scheduler fixtures written by tools/reference/make_scheduler_fixtures.py
/// (PyTorch 2.15 / Diffusers 0.42.1), read without Python.
enum SchedulerFixtures {
    static let root = Fixtures.root.appendingPathComponent("schedulers")

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

/// Same shape and relative L2 error within `tolerance` (1e-5: the scheduler contract in f32),
/// recorded in the parity log.
func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Double = 1e-5, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    let closeness = try assertRelativeL2(actual, expected, within: tolerance, label, file: file, line: line)
    ParityLog.record(label, error: closeness.relativeL2, exact: closeness.bitExact)
}

/// The sigmas of the classes that index them (nil for the others).
func sigmasOf(_ scheduler: any Scheduler) -> [Float]? {
    switch scheduler {
    case let s as EulerDiscreteScheduler: return s.sigmas
    case let s as EulerAncestralDiscreteScheduler: return s.sigmas
    case let s as DPMSolverMultistepScheduler: return s.sigmas
    default: return nil
    }
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
