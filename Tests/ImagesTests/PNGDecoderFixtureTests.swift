import Images
import XCTest

/// Every PNG of Tests/Fixtures/png/decode decodes to exactly the bytes Pillow gives.
final class PNGDecoderFixtureTests: XCTestCase {
    private struct Entry {
        let name: String, width: Int, height: Int, composite: Bool
    }

    private func entries() throws -> [Entry] {
        let list = try XCTUnwrap(try ImageFixtures.json("decode/manifest.json") as? [[String: Any]])
        return list.compactMap { item in
            guard let name = item["name"] as? String, let width = item["width"] as? Int,
                  let height = item["height"] as? Int else { return nil }
            return Entry(name: name, width: width, height: height, composite: item["composite"] as? Bool ?? false)
        }
    }

    func testManifestCoversEveryColourTypeDepthAndInterlace() throws {
        let names = Set(try entries().map(\.name))
        XCTAssertGreaterThanOrEqual(names.count, 80)
        for depth in [1, 2, 4, 8, 16] { XCTAssert(names.contains("w_g\(depth)") && names.contains("w_g\(depth)_i")) }
        for depth in [8, 16] {
            for kind in ["ga", "rgb", "rgba"] { XCTAssert(names.contains("w_\(kind)\(depth)_i"), "\(kind)\(depth)") }
        }
        for depth in [1, 2, 4, 8] { XCTAssert(names.contains("w_p\(depth)_i")) }
        for filter in 0..<5 { XCTAssert(names.contains("w_rgb8_f\(filter)")) }
        for orientation in 1...8 { XCTAssert(names.contains("pil_exif_\(orientation)")) }
    }

    func testDecodesEveryFixtureLikePillow() throws {
        let decoder = PNGDecoder()
        for entry in try entries() {
            let image = try decoder.decode(contentsOfFile: ImageFixtures.path("decode/\(entry.name).png"))
            XCTAssertEqual(image.width, entry.width, entry.name)
            XCTAssertEqual(image.height, entry.height, entry.name)
            let expected = try ImageFixtures.bytes("decode/\(entry.name).rgb")
            XCTAssertNil(firstDifference(image.pixels, expected, width: entry.width), entry.name)
        }
    }

    func testCompositesTransparentFixturesOverWhite() throws {
        let decoder = PNGDecoder(alpha: .compositeOverWhite)
        var checked = 0
        for entry in try entries() where entry.composite {
            let image = try decoder.decode(contentsOfFile: ImageFixtures.path("decode/\(entry.name).png"))
            let expected = try ImageFixtures.bytes("decode/\(entry.name).rgbw")
            XCTAssertNil(firstDifference(image.pixels, expected, width: entry.width), entry.name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 15)
    }

    func testEXIFOrientation() throws {
        let upright = try Image(contentsOfFile: ImageFixtures.path("decode/pil_exif_1.png"))
        XCTAssertEqual(upright.width, 5)
        for orientation in 1...8 {
            let path = ImageFixtures.path("decode/pil_exif_\(orientation).png")
            let turned = try Image(contentsOfFile: path)
            XCTAssertEqual(turned.width, orientation >= 5 ? 3 : 5, "orientation \(orientation)")
            // Without orientation handling every file holds the same stored pixels.
            XCTAssertEqual(try PNGDecoder(appliesOrientation: false).decode(contentsOfFile: path), upright)
            let orientationValue = try XCTUnwrap(ImageOrientation(rawValue: orientation))
            XCTAssertEqual(upright.applying(orientationValue), turned)
        }
        // Malformed EXIF data is ignored, never a trap or an error.
        for exif: [UInt8] in [[], [0x49, 0x49], [0x4D, 0x4D, 0, 42, 0xFF, 0xFF, 0xFF, 0xFF],
                              [0x49, 0x49, 42, 0, 8, 0, 0, 0, 0xFF, 0xFF, 0x12, 0x01, 3, 0]] {
            var bytes = try PNGEncoder().encode(upright)
            bytes.insert(contentsOf: MalformedPNGTests.chunk("eXIf", exif), at: 33)
            XCTAssertEqual(try PNGDecoder().decode(bytes), upright)
        }
    }

    func testDecodesFromMemoryAsFromFile() throws {
        let path = ImageFixtures.path("decode/w_rgba8_split.png")
        let fromFile = try Image(contentsOfFile: path)
        let fromBytes = try PNGDecoder().decode(try ImageFixtures.bytes("decode/w_rgba8_split.png"))
        XCTAssertEqual(fromFile, fromBytes)
    }
}
