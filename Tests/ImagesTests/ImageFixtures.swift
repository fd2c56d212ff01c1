import Foundation
import XCTest

/// Fixtures written by tools/reference/make_png_fixtures.py (Pillow, numpy, Diffusers), read
/// without Python.
enum ImageFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/png")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(relative)))
    }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent(relative)))
    }

    /// A little-endian float32 .npy file (C order): its shape and values.
    static func npyFloat32(_ relative: String) throws -> (shape: [Int], values: [Float]) {
        let data = try bytes(relative)
        guard data.count > 10, data[0] == 0x93, String(decoding: data[1..<6], as: UTF8.self) == "NUMPY" else {
            throw NSError(domain: "npy", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(relative) is not .npy"])
        }
        let major = data[6]
        let headerLength = major == 1 ? Int(data[8]) | Int(data[9]) << 8
            : Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
        let headerStart = major == 1 ? 10 : 12
        let header = String(decoding: data[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False"),
              let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw NSError(domain: "npy", code: 2, userInfo: [NSLocalizedDescriptionKey: "\(relative): unexpected header \(header)"])
        }
        let shape = header[open.upperBound..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let body = Array(data[(headerStart + headerLength)...])
        let values = body.withUnsafeBytes { raw in
            (0..<(body.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
        }
        XCTAssertEqual(values.count, shape.reduce(1, *), "\(relative): element count")
        return (shape, values)
    }
}

/// The first position where two byte arrays differ, described, or nil when equal.
func firstDifference(_ a: [UInt8], _ b: [UInt8], width: Int) -> String? {
    guard a.count == b.count else { return "sizes differ: \(a.count) vs \(b.count)" }
    guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return nil }
    let pixel = i / 3
    let count = zip(a, b).filter { $0 != $1 }.count
    return "\(count) bytes differ; first at pixel (\(pixel % width), \(pixel / width)) channel \(i % 3): \(a[i]) vs \(b[i])"
}
