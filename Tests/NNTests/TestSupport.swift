import Foundation
import NN
import Tensor
import TestSupport
import XCTest

let checkpointFixtures = packageRoot + "/Tests/Fixtures/checkpoints"

/// A fresh empty folder, removed when the test ends.
func makeTemporaryFolder(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "nn-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func writeFile(_ path: String, _ text: String) throws {
    try writeFile(path, Array(text.utf8))
}

func readBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// A safetensors file with `header` as its JSON (padded as given) and `data` after it.
func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let json = Array(header.utf8)
    var n = declaredLength ?? UInt64(json.count)
    var out: [UInt8] = []
    for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
    return out + json + data
}
