import Files
import Foundation
import Images
import XCTest

/// Encode → decode gives identical pixels; files are written atomically and in batches.
final class PNGRoundTripTests: XCTestCase {
    private var folder: String = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "images-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Deterministic pixels mixing gradients (which filters predict) and noise (which they don't).
    static func sample(width: Int, height: Int, seed: UInt64) throws -> Image {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let noise = UInt8(truncatingIfNeeded: state >> 58)
                    pixels[(y * width + x) * 3 + c] = UInt8(truncatingIfNeeded: x * (c + 1) + y * 3) &+ noise
                }
            }
        }
        return try Image(width: width, height: height, pixels: pixels)
    }

    func testRoundTripManySizes() throws {
        let sizes = [(1, 1), (1, 7), (7, 1), (2, 3), (3, 2), (5, 5), (8, 8), (13, 11), (31, 17), (64, 64), (127, 3), (200, 150)]
        for (index, (width, height)) in sizes.enumerated() {
            let image = try Self.sample(width: width, height: height, seed: UInt64(index))
            for level in [0, 1, 6, 9] {
                let bytes = try PNGEncoder(compressionLevel: level).encode(image)
                XCTAssertEqual(try PNGDecoder().decode(bytes), image, "\(width)×\(height) level \(level)")
            }
        }
    }

    func testRoundTripUniformAndExtremeImages() throws {
        for value: UInt8 in [0, 1, 127, 128, 254, 255] {
            let image = try Image(width: 9, height: 4, red: value, green: 255 - value, blue: value / 2)
            XCTAssertEqual(try PNGDecoder().decode(image.pngData()), image)
        }
    }

    func testManySmallIDATChunks() throws {
        let image = try Self.sample(width: 40, height: 30, seed: 9)
        let bytes = try PNGEncoder(maxIDATSize: 7).encode(image)
        let idatCount = countChunks("IDAT", in: bytes)
        XCTAssertGreaterThan(idatCount, 10)
        XCTAssertEqual(try PNGDecoder().decode(bytes), image)
    }

    func testRGBARoundTripDropsOrCompositesAlpha() throws {
        let (width, height) = (6, 5)
        var rgba = [UInt8]()
        for i in 0..<(width * height) { rgba += [UInt8(i * 8), UInt8(255 - i), UInt8(i * 3), UInt8(i * 255 / 29)] }
        let bytes = try PNGEncoder().encodeRGBA(rgba, width: width, height: height)
        let dropped = try PNGDecoder().decode(bytes)
        let composited = try PNGDecoder(alpha: .compositeOverWhite).decode(bytes)
        for i in 0..<(width * height) {
            let a = Int(rgba[i * 4 + 3])
            for c in 0..<3 {
                XCTAssertEqual(dropped.pixels[i * 3 + c], rgba[i * 4 + c])
                let blended = (Int(rgba[i * 4 + c]) * a + 255 * (255 - a) + 127) / 255
                XCTAssertEqual(Int(composited.pixels[i * 3 + c]), blended)
            }
        }
        XCTAssertThrowsError(try PNGEncoder().encodeRGBA([1, 2, 3], width: 1, height: 1))
    }

    func testFilterChoiceCompressesGradientsWell() throws {
        var pixels = [UInt8]()
        for y in 0..<128 { for x in 0..<128 { pixels += [UInt8(x), UInt8(y), UInt8((x + y) / 2)] } }
        let image = try Image(width: 128, height: 128, pixels: pixels)
        let bytes = try image.pngData()
        XCTAssertLessThan(bytes.count, 2_000, "a smooth 128×128 gradient should compress to almost nothing")
        XCTAssertEqual(try PNGDecoder().decode(bytes), image)
    }

    func testWriteIsAtomicAndReadable() throws {
        let image = try Self.sample(width: 21, height: 13, seed: 3)
        let path = folder + "/out.png"
        try image.write(to: path)
        XCTAssertEqual(try Image(contentsOfFile: path), image)
        // Overwriting replaces the file and leaves no temporary files behind.
        let other = try Self.sample(width: 4, height: 4, seed: 4)
        try other.write(to: path)
        XCTAssertEqual(try Image(contentsOfFile: path), other)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["out.png"])
    }

    func testWriteIntoMissingFolderFailsCleanly() throws {
        let image = try Self.sample(width: 2, height: 2, seed: 1)
        let path = folder + "/missing/out.png"
        XCTAssertThrowsError(try image.write(to: path)) { error in
            guard case FileError.invalidOutput(let failed, _)? = error as? FileError else { return XCTFail("\(error)") }
            XCTAssertEqual(failed, path)
        }
    }

    func testBatchNames() {
        XCTAssertEqual(Image.batchPaths(for: "out/cat.png", count: 1), ["out/cat.png"])
        XCTAssertEqual(Image.batchPaths(for: "out/cat.png", count: 3), ["out/cat-0.png", "out/cat-1.png", "out/cat-2.png"])
        XCTAssertEqual(Image.batchPaths(for: "a.b/cat", count: 2), ["a.b/cat-0", "a.b/cat-1"])
        XCTAssertEqual(Image.batchPaths(for: ".png", count: 2), [".png-0", ".png-1"])
    }

    func testBatchWriting() throws {
        let images = try (0..<3).map { try Self.sample(width: 8, height: 8, seed: UInt64($0)) }
        let written = try Image.write(images, to: folder + "/cat.png")
        XCTAssertEqual(written, ["cat-0.png", "cat-1.png", "cat-2.png"].map { folder + "/" + $0 })
        for (path, image) in zip(written, images) { XCTAssertEqual(try Image(contentsOfFile: path), image) }
        let single = try Image.write([images[0]], to: folder + "/one.png")
        XCTAssertEqual(single, [folder + "/one.png"])
        XCTAssertThrowsError(try Image.write([], to: folder + "/none.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(),
                       ["cat-0.png", "cat-1.png", "cat-2.png", "one.png"])
    }

    func testImageInitialiserChecksSizes() throws {
        XCTAssertThrowsError(try Image(width: 2, height: 2, pixels: [0, 0, 0]))
        XCTAssertThrowsError(try Image(width: 0, height: 2, pixels: []))
        XCTAssertThrowsError(try Image(width: Int.max, height: 2, pixels: []))
        var image = try Image(width: 2, height: 1, red: 1, green: 2, blue: 3)
        try image.setPixel(x: 1, y: 0, red: 9, green: 8, blue: 7)
        XCTAssertEqual(image.pixels, [1, 2, 3, 9, 8, 7])
        XCTAssertEqual(image[1, 0]?.green, 8)
        XCTAssertNil(image[2, 0])
        XCTAssertThrowsError(try image.setPixel(x: 0, y: 1, red: 0, green: 0, blue: 0))
    }
}

/// How many chunks of `type` a PNG holds (walks the framing without checking it).
func countChunks(_ type: String, in bytes: [UInt8]) -> Int {
    var offset = 8, count = 0
    while offset + 8 <= bytes.count {
        let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        if String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self) == type { count += 1 }
        offset += 12 + length
    }
    return count
}
