import Files
import CZlib
import Foundation
import Images
import XCTest

/// Malformed and hostile input: each case is a specific typed error, and nothing traps.
final class MalformedPNGTests: XCTestCase {
    // MARK: building PNGs by hand

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress, uInt($0.count))) }
        return be32(UInt32(data.count)) + body + be32(crc)
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func ihdr(width: UInt32, height: UInt32, depth: UInt8 = 8, colorType: UInt8 = 2,
                     compression: UInt8 = 0, filter: UInt8 = 0, interlace: UInt8 = 0) -> [UInt8] {
        chunk("IHDR", be32(width) + be32(height) + [depth, colorType, compression, filter, interlace])
    }

    static func deflate(_ data: [UInt8]) -> [UInt8] {
        var size = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { i in compress2(o.baseAddress, &size, i.baseAddress, uLong(i.count), 6) }
        }
        XCTAssertEqual(status, Z_OK)
        return Array(out[..<Int(size)])
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    static let iend = chunk("IEND", [])

    /// A valid 2×2 RGB file; `raw` replaces the filtered image data.
    static func rgb2x2(raw: [UInt8]? = nil, extra: [UInt8] = []) -> [UInt8] {
        let data = raw ?? [0, 255, 0, 0, 0, 255, 0, 1, 0, 0, 255, 255, 255, 0]
        return signature + ihdr(width: 2, height: 2) + extra + chunk("IDAT", deflate(data)) + iend
    }

    /// Asserts `bytes` fails with an error for which `matches` is true.
    func assertFails(_ bytes: [UInt8], decoder: PNGDecoder = PNGDecoder(), _ label: String,
                     file: StaticString = #filePath, line: UInt = #line, _ matches: (ImageError) -> Bool) {
        do {
            _ = try decoder.decode(bytes, source: "case.png")
            XCTFail("\(label): decoded without error", file: file, line: line)
        } catch let error as ImageError {
            XCTAssert(matches(error), "\(label): unexpected error \(error)", file: file, line: line)
            XCTAssert(error.description.contains("case.png"), "\(label): message does not name the file", file: file, line: line)
        } catch {
            XCTFail("\(label): not an ImageError: \(error)", file: file, line: line)
        }
    }

    // MARK: cases

    func testValidBaseFileDecodes() throws {
        let image = try PNGDecoder().decode(Self.rgb2x2())
        XCTAssertEqual(image.pixels, [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    }

    func testNotAPNG() {
        assertFails([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 0x4A, 0x46, 0x49, 0x46, 0, 1], "JPEG") { $0 == .notPNG(source: "case.png") }
        assertFails(Array("hello, this is text".utf8), "text") { $0 == .notPNG(source: "case.png") }
        assertFails([], "empty") { $0 == .notPNG(source: "case.png") }
        assertFails(Array(Self.signature.prefix(5)), "partial signature") { $0 == .notPNG(source: "case.png") }
        XCTAssertEqual(ImageError.notPNG(source: "x.jpg").description,
                       "x.jpg is not a PNG file: it does not start with the PNG signature")
    }

    func testTruncation() {
        assertFails(Self.signature, "signature only") { if case .truncated = $0 { return true } else { return false } }
        let full = Self.rgb2x2()
        assertFails(Array(full.prefix(full.count - 12)), "missing IEND") { if case .truncated = $0 { return true } else { return false } }
        assertFails(Array(full.prefix(full.count - 20)), "cut inside IDAT") { if case .truncated = $0 { return true } else { return false } }
        assertFails(Array(full.prefix(8 + 10)), "cut inside IHDR") { if case .truncated = $0 { return true } else { return false } }
    }

    func testBadCRCs() {
        var bytes = Self.rgb2x2()
        bytes[8 + 8 + 13] ^= 0xFF   // IHDR's CRC
        assertFails(bytes, "IHDR CRC") { if case .badCRC(_, "IHDR", _, _) = $0 { return true } else { return false } }
        bytes = Self.rgb2x2()
        bytes[8 + 25 + 8 + 2] ^= 0x01   // a byte of IDAT data
        assertFails(bytes, "IDAT data") { if case .badCRC(_, "IDAT", _, _) = $0 { return true } else { return false } }
    }

    func testHeaderErrors() {
        func file(_ ihdr: [UInt8]) -> [UInt8] { Self.signature + ihdr + Self.chunk("IDAT", Self.deflate([0, 0, 0, 0])) + Self.iend }
        assertFails(Self.signature + Self.chunk("gAMA", Self.be32(45455)) + Self.rgb2x2().dropFirst(8), "IHDR not first") {
            if case .malformed(_, let d) = $0 { return d.contains("not IHDR") } else { return false }
        }
        assertFails(file(Self.ihdr(width: 0, height: 2)), "zero width") { if case .malformed = $0 { return true } else { return false } }
        assertFails(file(Self.chunk("IHDR", Self.be32(1) + Self.be32(1) + [8, 2, 0, 0])), "short IHDR") {
            if case .malformed(_, let d) = $0 { return d.contains("13") } else { return false }
        }
        assertFails(file(Self.ihdr(width: 1, height: 1, depth: 4, colorType: 2)), "RGB at 4 bits") {
            if case .malformed(_, let d) = $0 { return d.contains("bit depth 4") } else { return false }
        }
        assertFails(file(Self.ihdr(width: 1, height: 1, colorType: 5)), "colour type 5") {
            if case .malformed(_, let d) = $0 { return d.contains("colour type 5") } else { return false }
        }
        assertFails(file(Self.ihdr(width: 1, height: 1, interlace: 2)), "interlace method 2") {
            if case .unsupported(_, let d) = $0 { return d.contains("interlace") } else { return false }
        }
        assertFails(file(Self.ihdr(width: 1, height: 1, compression: 1)), "compression method 1") {
            if case .unsupported = $0 { return true } else { return false }
        }
    }

    func testDimensionCapsComeBeforeAnyAllocation() {
        func file(_ w: UInt32, _ h: UInt32) -> [UInt8] { Self.signature + Self.ihdr(width: w, height: h) + Self.chunk("IDAT", Self.deflate([0])) + Self.iend }
        for (w, h) in [(100_000, 100_000), (0x7FFF_FFFF, 1), (30_000, 30_000)] as [(UInt32, UInt32)] {
            assertFails(file(w, h), "\(w)×\(h)") { if case .tooLarge = $0 { return true } else { return false } }
        }
        assertFails(file(0x8000_0000, 1), "width over 2^31 − 1") { if case .malformed = $0 { return true } else { return false } }
        let small = PNGDecoder(limits: .init(maxPixels: 100))
        assertFails(file(20, 20), decoder: small, "over a custom pixel limit") { if case .tooLarge = $0 { return true } else { return false } }
    }

    func testDecompressionBombIsCutAtTheImageSize() throws {
        // A 1×1 image whose data inflates to 64 MiB: only the 4 bytes the image needs are kept.
        let bomb = Self.deflate([UInt8](repeating: 0, count: 64 << 20))
        XCTAssertLessThan(bomb.count, 100_000)
        let bytes = Self.signature + Self.ihdr(width: 1, height: 1) + Self.chunk("IDAT", bomb) + Self.iend
        let start = Date()
        let image = try PNGDecoder().decode(bytes)
        XCTAssertEqual(image.pixels, [0, 0, 0])
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0, "the surplus must not be inflated")
    }

    func testHugeClaimWithTinyDataAllocatesLittle() throws {
        // 8000×8000 RGBA at 16 bits (512 MB of image data) is within the default limits, but
        // the file holds a few bytes: the decoder must fail without allocating for the claim.
        let bytes = Self.signature + Self.ihdr(width: 8000, height: 8000, depth: 16, colorType: 6)
            + Self.chunk("IDAT", Self.deflate([UInt8](repeating: 0, count: 1000))) + Self.iend
        let before = peakResidentBytes()
        XCTAssertGreaterThan(before, 0, "VmHWM must be readable")
        assertFails(bytes, "tiny data for a huge image") { if case .truncated = $0 { return true } else { return false } }
        XCTAssertLessThan(peakResidentBytes() - before, 64 << 20)
    }

    /// VmHWM of this process, in bytes.
    private func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kB = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kB * 1024
    }

    func testImageDataErrors() {
        assertFails(Self.rgb2x2(raw: [0, 1, 2, 3]), "too little data") {
            if case .truncated(_, let d) = $0 { return d.contains("holds 4 bytes") && d.hasSuffix("needs 14") } else { return false }
        }
        assertFails(Self.rgb2x2(raw: [0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]), "filter type 5") {
            if case .malformed(_, let d) = $0 { return d.contains("filter type 5") } else { return false }
        }
        let garbage: [UInt8] = [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x12, 0x34]
        assertFails(Self.signature + Self.ihdr(width: 2, height: 2) + Self.chunk("IDAT", garbage) + Self.iend, "corrupt deflate") {
            if case .compression = $0 { return true } else { return false }
        }
        var stream = Self.deflate([0, 255, 0, 0, 0, 255, 0, 1, 0, 0, 255, 255, 255, 0])
        stream[stream.count - 1] ^= 0xFF   // Adler-32
        assertFails(Self.signature + Self.ihdr(width: 2, height: 2) + Self.chunk("IDAT", stream) + Self.iend, "bad Adler-32") {
            if case .compression(_, let d) = $0 { return d.contains("check") } else { return false }
        }
        assertFails(Self.signature + Self.ihdr(width: 2, height: 2) + Self.iend, "no IDAT") {
            if case .malformed(_, let d) = $0 { return d.contains("IDAT") } else { return false }
        }
        let data = Self.deflate([0, 255, 0, 0, 0, 255, 0, 1, 0, 0, 255, 255, 255, 0])
        let split = Self.chunk("IDAT", Array(data.prefix(5))) + Self.chunk("tEXt", Array("a\0b".utf8)) + Self.chunk("IDAT", Array(data.dropFirst(5)))
        assertFails(Self.signature + Self.ihdr(width: 2, height: 2) + split + Self.iend, "IDAT not consecutive") {
            if case .malformed(_, let d) = $0 { return d.contains("consecutive") } else { return false }
        }
    }

    func testPaletteErrors() {
        let indices = Self.chunk("IDAT", Self.deflate([0, 0, 1, 0, 1, 0]))   // 2×2, 8-bit indices
        let header = Self.signature + Self.ihdr(width: 2, height: 2, colorType: 3)
        assertFails(header + indices + Self.iend, "no PLTE") {
            if case .malformed(_, let d) = $0 { return d.contains("PLTE") } else { return false }
        }
        assertFails(header + Self.chunk("PLTE", [1, 2, 3, 4]) + indices + Self.iend, "PLTE of 4 bytes") {
            if case .malformed(_, let d) = $0 { return d.contains("PLTE") } else { return false }
        }
        assertFails(header + Self.chunk("PLTE", [1, 2, 3]) + indices + Self.iend, "index beyond the palette") {
            if case .malformed(_, let d) = $0 { return d.contains("palette index 1") } else { return false }
        }
        assertFails(Self.rgb2x2(extra: Self.chunk("tRNS", [0, 1])), "RGB tRNS of 2 bytes") {
            if case .malformed(_, let d) = $0 { return d.contains("tRNS") } else { return false }
        }
    }

    func testChunkFramingErrors() {
        assertFails(Self.rgb2x2(extra: Self.chunk("ABCD", [1, 2])), "unknown critical chunk") {
            if case .unsupported(_, let d) = $0 { return d.contains("ABCD") } else { return false }
        }
        XCTAssertNoThrow(try PNGDecoder().decode(Self.rgb2x2(extra: Self.chunk("abCD", [1, 2]))), "unknown ancillary chunk is skipped")
        assertFails(Self.rgb2x2(extra: [0xFF, 0xFF, 0xFF, 0xFF] + Array("tEXt".utf8)), "length 2^32 − 1") {
            if case .malformed(_, let d) = $0 { return d.contains("tEXt") } else { return false }
        }
        assertFails(Self.rgb2x2(extra: [0, 0, 0, 0, 0x31, 0x32, 0x00, 0x7F, 0, 0, 0, 0]), "non-letter chunk type") {
            if case .malformed(_, let d) = $0 { return d.contains("four letters") } else { return false }
        }
    }

    func testFileErrorsNameTheFile() throws {
        let folder = NSTemporaryDirectory() + "malformed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let missing = folder + "/missing.png"
        XCTAssertThrowsError(try Image(contentsOfFile: missing)) {
            XCTAssertEqual($0 as? FileError, .notFound(path: missing))
        }
        XCTAssertThrowsError(try Image(contentsOfFile: folder)) {
            XCTAssertEqual($0 as? FileError, .notARegularFile(path: folder, kind: "a folder"))
        }
        let text = folder + "/photo.png"
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try Image(contentsOfFile: text)) {
            XCTAssertEqual($0 as? ImageError, .notPNG(source: text))
            XCTAssert("\($0)".contains(text))
        }
        let valid = folder + "/valid.png"
        try Data(Self.rgb2x2()).write(to: URL(fileURLWithPath: valid))
        XCTAssertThrowsError(try PNGDecoder(limits: .init(maxFileBytes: 10)).decode(contentsOfFile: valid)) {
            XCTAssertEqual($0 as? FileError, .tooLarge(path: valid, bytes: 78, limit: 10))
        }
    }

    // MARK: never a trap

    /// Every prefix of several interlaced files, and thousands of random byte
    /// changes to it, either decode or throw an `ImageError`.
    func testTruncationsAndMutationsNeverTrap() throws {
        let files = ["w_p4_i", "w_p8_trns_i", "w_rgba16_i", "w_g1_i_3x3", "w_rgb8_i_9x9"]
        var seed: UInt64 = 0x5EED
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 17 }
        var outcomes = (decoded: 0, failed: 0)
        for name in files {
            let path = ImageFixtures.path("decode/\(name).png")
            let original = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: path), name))
            for length in 0..<original.count {
                check(Array(original.prefix(length)), &outcomes)
            }
            for _ in 0..<600 {
                var bytes = original
                for _ in 0..<(1 + Int(next() % 3)) {
                    let at = Int(next() % UInt64(bytes.count))
                    bytes[at] = UInt8(truncatingIfNeeded: next())
                }
                check(bytes, &outcomes)
                check(Self.fixingCRCs(bytes), &outcomes)   // gets past the CRC check to the contents
            }
        }
        XCTAssertGreaterThan(outcomes.failed, 1000)
    }

    private func check(_ bytes: [UInt8], _ outcomes: inout (decoded: Int, failed: Int)) {
        for decoder in [PNGDecoder(), PNGDecoder(alpha: .compositeOverWhite)] {
            do {
                let image = try decoder.decode(bytes)
                XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                outcomes.decoded += 1
            } catch is ImageError {
                outcomes.failed += 1
            } catch {
                XCTFail("not an ImageError: \(error)")
            }
        }
    }

    /// The same bytes with every well-framed chunk's CRC recomputed.
    static func fixingCRCs(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard offset + 12 + length <= bytes.count else { break }
            let crc = bytes.withUnsafeBufferPointer { all in
                UInt32(truncatingIfNeeded: crc32(0, all.baseAddress.map { $0 + offset + 4 }, uInt(4 + length)))
            }
            bytes.replaceSubrange((offset + 8 + length)..<(offset + 12 + length), with: be32(crc))
            offset += 12 + length
        }
        return bytes
    }
}
