import Files
import CJPEG
import CWebP
import Foundation
import Images
import XCTest

/// The writer picks PNG, JPEG or WebP from the extension; JPEG and WebP files decode back (with
/// libjpeg and libwebp themselves) to the image written; bad names and paths are typed errors
/// that leave no file behind.
final class ImageFormatTests: XCTestCase {
    private var folder: String = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "image-formats-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func files() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: folder).sorted() }

    private func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// A smooth picture (gradients and a soft disc), the kind lossy codecs keep well.
    static func smooth(width: Int, height: Int) throws -> Image {
        var pixels = [UInt8]()
        for y in 0..<height {
            for x in 0..<width {
                let dx = Double(x - width / 2), dy = Double(y - height / 2)
                let disc = max(0, 1 - (dx * dx + dy * dy).squareRoot() / Double(min(width, height) / 3))
                pixels += [UInt8(x * 255 / max(1, width - 1)), UInt8(y * 255 / max(1, height - 1)), UInt8(40 + 200 * disc)]
            }
        }
        return try Image(width: width, height: height, pixels: pixels)
    }

    /// Mean absolute difference per byte.
    static func meanError(_ a: [UInt8], _ b: [UInt8]) -> Double {
        Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(max(1, a.count))
    }

    /// The mean of each channel.
    static func meanColour(_ rgb: [UInt8]) -> [Double] {
        (0..<3).map { c in Double(stride(from: c, to: rgb.count, by: 3).reduce(0) { $0 + Int(rgb[$1]) }) / Double(rgb.count / 3) }
    }

    // MARK: decoding with the libraries themselves

    static func decodeJPEG(_ data: [UInt8]) throws -> (width: Int, height: Int, rgb: [UInt8], exif: [UInt8]?) {
        var pixels: UnsafeMutablePointer<UInt8>?, app1: UnsafeMutablePointer<UInt8>?
        var width: UInt32 = 0, height: UInt32 = 0, app1Length = 0
        var message = [CChar](repeating: 0, count: Int(JMSG_LENGTH_MAX))
        let ok = data.withUnsafeBufferPointer {
            cjpeg_decompress_rgb($0.baseAddress, $0.count, &pixels, &width, &height, &app1, &app1Length, &message)
        }
        defer { free(pixels); free(app1) }
        guard ok == 1, let pixels else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw NSError(domain: "libjpeg", code: 1, userInfo: [NSLocalizedDescriptionKey: reason])
        }
        let rgb = Array(UnsafeBufferPointer(start: pixels, count: Int(width) * Int(height) * 3))
        return (Int(width), Int(height), rgb, app1.map { Array(UnsafeBufferPointer(start: $0, count: app1Length)) })
    }

    static func decodeWebP(_ data: [UInt8]) throws -> (width: Int, height: Int, rgb: [UInt8]) {
        var width: Int32 = 0, height: Int32 = 0
        guard let pixels = data.withUnsafeBufferPointer({ WebPDecodeRGB($0.baseAddress, $0.count, &width, &height) }) else {
            throw NSError(domain: "libwebp", code: 1, userInfo: [NSLocalizedDescriptionKey: "WebPDecodeRGB failed"])
        }
        defer { WebPFree(pixels) }
        return (Int(width), Int(height), Array(UnsafeBufferPointer(start: pixels, count: Int(width) * Int(height) * 3)))
    }

    // MARK: format choice

    func testFormatFromExtension() throws {
        XCTAssertEqual(try ImageFormat(path: "a/b.png"), .png)
        XCTAssertEqual(try ImageFormat(path: "b.PNG"), .png)
        XCTAssertEqual(try ImageFormat(path: "x.jpg"), .jpeg)
        XCTAssertEqual(try ImageFormat(path: "x.Jpeg"), .jpeg)
        XCTAssertEqual(try ImageFormat(path: "dir.png/x.webp"), .webp)
        XCTAssertEqual(ImageFormat.supportedExtensions, [".png", ".jpg", ".jpeg", ".webp"])
    }

    func testUnknownOrMissingExtensionIsATypedErrorAndWritesNothing() throws {
        let image = try Self.smooth(width: 4, height: 4)
        for name in ["out.gif", "out", "out.png.bak", ".png", "out.", "x.webp/out", "folder.png/"] {
            let path = folder + "/" + name
            XCTAssertThrowsError(try image.write(to: path), name) { error in
                XCTAssertEqual(error as? ImageError, .unsupportedExtension(path: path, supported: [".png", ".jpg", ".jpeg", ".webp"]))
                let text = "\(error)"
                XCTAssert(text.hasPrefix(path + ": "), text)
                XCTAssert(text.contains(".png, .jpg, .jpeg, .webp"), text)
            }
        }
        XCTAssertEqual("\(ImageError.unsupportedExtension(path: "o.gif", supported: [".png"]))",
                       "o.gif: the extension .gif names no image format that can be written; use one of .png")
        XCTAssertEqual("\(ImageError.unsupportedExtension(path: "d/out", supported: [".png"]))",
                       "d/out: the file name has no extension to choose an image format from; use one of .png")
        XCTAssertEqual("\(ImageError.unsupportedExtension(path: "d/", supported: [".png"]))",
                       "d/: the path names a folder, not an image file; use one of .png")
        XCTAssertThrowsError(try Image.write([image, image], to: folder + "/batch.bmp"))
        XCTAssertEqual(try files(), [])
    }

    func testUnwritablePathsNameTheFile() throws {
        let image = try Self.smooth(width: 4, height: 4)
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/plain"))
        for name in ["missing/out.jpg", "missing/out.webp", "missing/out.png", "plain/out.jpg"] {
            let path = folder + "/" + name
            XCTAssertThrowsError(try image.write(to: path, metadata: ImageMetadata(parameters: "p")), name) { error in
                guard case FileError.invalidOutput(let failed, let reason)? = error as? FileError else { return XCTFail("\(error)") }
                XCTAssertEqual(failed, path)
                XCTAssert(reason.contains(name.hasPrefix("plain") ? "not a folder" : "does not exist"), reason)
            }
        }
        XCTAssertEqual(try files(), ["plain"])
    }

    // MARK: JPEG

    func testJPEGRoundTrip() throws {
        let image = try Self.smooth(width: 96, height: 64)
        let path = folder + "/out.jpg"
        try image.write(to: path)
        let data = try bytes(path)
        XCTAssertEqual(Array(data.prefix(3)), [0xFF, 0xD8, 0xFF], "a JPEG file, not PNG bytes under a JPEG name")
        let decoded = try Self.decodeJPEG(data)
        XCTAssertEqual(decoded.width, 96)
        XCTAssertEqual(decoded.height, 64)
        XCTAssertNil(decoded.exif, "no metadata, no EXIF segment")
        XCTAssertLessThan(Self.meanError(decoded.rgb, image.pixels), 2.5)
        for (got, want) in zip(Self.meanColour(decoded.rgb), Self.meanColour(image.pixels)) { XCTAssertEqual(got, want, accuracy: 1.0) }
        XCTAssertEqual(try files(), ["out.jpg"], "no temporary file left")
    }

    func testJPEGOptions() throws {
        let image = try PNGRoundTripTests.sample(width: 64, height: 64, seed: 5)   // noisy: quality shows in the size
        let low = try JPEGEncoder(quality: 40).encode(image)
        let high = try JPEGEncoder(quality: 95).encode(image)
        let full = try JPEGEncoder(quality: 95, chromaSubsampling: .none).encode(image)
        XCTAssertLessThan(low.count, high.count)
        XCTAssertLessThan(high.count, full.count)
        XCTAssertLessThan(Self.meanError(try Self.decodeJPEG(full).rgb, image.pixels), Self.meanError(try Self.decodeJPEG(low).rgb, image.pixels))
        try ImageWriter(jpeg: JPEGEncoder(quality: 40)).write(image, to: folder + "/low.JPEG")
        XCTAssertEqual(try bytes(folder + "/low.JPEG"), low)
        for quality in [0, 101] {
            XCTAssertThrowsError(try JPEGEncoder(quality: quality).encode(image)) {
                guard case ImageError.invalidArgument(let message)? = $0 as? ImageError else { return XCTFail("\($0)") }
                XCTAssert(message.contains("\(quality)"), message)
            }
        }
    }

    func testJPEGLibraryErrorIsThrownNotFatal() throws {
        // libjpeg refuses sides over 65,500 pixels through error_exit, which by default exits.
        let image = try Image(width: 65_501, height: 1, red: 1, green: 2, blue: 3)
        let path = folder + "/wide.jpg"
        XCTAssertThrowsError(try image.write(to: path)) { error in
            guard case ImageError.encoding(let destination, let detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(destination, path)
            XCTAssert(detail.contains("libjpeg") && detail.contains("65500"), detail)
        }
        XCTAssertEqual(try files(), [])
    }

    // MARK: WebP

    func testWebPLossyRoundTrip() throws {
        let image = try Self.smooth(width: 80, height: 48)
        let path = folder + "/out.webp"
        try image.write(to: path)
        let data = try bytes(path)
        XCTAssertEqual(Array(data.prefix(4)), Array("RIFF".utf8))
        XCTAssertEqual(Array(data[8..<12]), Array("WEBP".utf8))
        let decoded = try Self.decodeWebP(data)
        XCTAssertEqual(decoded.width, 80)
        XCTAssertEqual(decoded.height, 48)
        XCTAssertLessThan(Self.meanError(decoded.rgb, image.pixels), 3.0)
        for (got, want) in zip(Self.meanColour(decoded.rgb), Self.meanColour(image.pixels)) { XCTAssertEqual(got, want, accuracy: 1.5) }
        XCTAssertEqual(try files(), ["out.webp"])
    }

    func testWebPLosslessIsExact() throws {
        let image = try PNGRoundTripTests.sample(width: 37, height: 23, seed: 8)
        let data = try WebPEncoder(lossless: true).encode(image)
        let decoded = try Self.decodeWebP(data)
        XCTAssertEqual(decoded.width, 37)
        XCTAssertNil(firstDifference(decoded.rgb, image.pixels, width: 37))
        XCTAssertThrowsError(try WebPEncoder(quality: 101).encode(image))
        XCTAssertThrowsError(try WebPEncoder(quality: .nan).encode(image))
    }

    func testWebPTooLargeIsAnErrorAndABatchWritesNothing() throws {
        let fine = try Self.smooth(width: 8, height: 8)
        let wide = try Image(width: 16_384, height: 1, red: 0, green: 0, blue: 0)
        XCTAssertThrowsError(try Image.write([fine, wide, fine], to: folder + "/batch.webp")) { error in
            guard case ImageError.encoding(let destination, let detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(destination, self.folder + "/batch-1.webp")
            XCTAssert(detail.contains("16383"), detail)
        }
        XCTAssertEqual(try files(), [], "one failure leaves none of the batch")
    }

    // MARK: batches and the PNG encoder option

    func testBatchesKeepTheFormatAndMetadataPerImage() throws {
        let images = try (0..<3).map { _ in try Self.smooth(width: 16, height: 8) }
        let metadata = (0..<3).map { ImageMetadata(parameters: "cat\nSteps: 2, Seed: \(40 + $0)") }
        let written = try Image.write(images, to: folder + "/cat.jpg", metadata: metadata)
        XCTAssertEqual(written, ["cat-0.jpg", "cat-1.jpg", "cat-2.jpg"].map { folder + "/" + $0 })
        for (index, path) in written.enumerated() {
            XCTAssertEqual(try Self.decodeJPEG(bytes(path)).width, 16)
            XCTAssertEqual(try ImageMetadata(contentsOfFile: path).parameters, "cat\nSteps: 2, Seed: \(40 + index)")
        }
        XCTAssertThrowsError(try Image.write(images, to: folder + "/dog.jpg", metadata: Array(metadata.prefix(2)))) {
            guard case ImageError.invalidArgument? = $0 as? ImageError else { return XCTFail("\($0)") }
        }
        // The PNG-encoder overloads still compile and now follow the extension too.
        try images[0].write(to: folder + "/legacy.webp", encoder: PNGEncoder(compressionLevel: 1))
        XCTAssertEqual(try Self.decodeWebP(bytes(folder + "/legacy.webp")).width, 16)
        let png = try Image.write([images[0]], to: folder + "/legacy.png", encoder: PNGEncoder(compressionLevel: 9))
        XCTAssertEqual(try Image(contentsOfFile: png[0]), images[0])
    }
}
