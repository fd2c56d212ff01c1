import Foundation
import Images
import XCTest

/// Generation parameters written into PNG, JPEG and WebP files as AUTOMATIC1111 writes them,
/// and read back; A1111's infotext format.
final class ImageMetadataTests: XCTestCase {
    private var folder: String = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "image-metadata-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// The data of the first chunk of `type`, or nil.
    private func chunkData(_ type: String, in png: [UInt8]) -> [UInt8]? {
        var offset = 8
        while offset + 12 <= png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8 | Int(png[offset + 3])
            if png[(offset + 4)..<(offset + 8)].elementsEqual(type.utf8) { return Array(png[(offset + 8)..<(offset + 8 + length)]) }
            offset += 12 + length
        }
        return nil
    }

    /// The chunk types of a PNG in order.
    private func chunkTypes(_ png: [UInt8]) -> [String] {
        var offset = 8, types: [String] = []
        while offset + 12 <= png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8 | Int(png[offset + 3])
            types.append(String(decoding: png[(offset + 4)..<(offset + 8)], as: UTF8.self))
            offset += 12 + length
        }
        return types
    }

    static let example = GenerationParameters(
        prompt: "a large red circle on a blue background", negativePrompt: "blurry, low quality", steps: 25,
        sampler: "Euler a", cfgScale: 7.5, seed: 42, width: 512, height: 512, model: "demo")

    // MARK: A1111's format

    func testInfotextOfAKnownExample() {
        XCTAssertEqual(Self.example.infotext, """
            a large red circle on a blue background
            Negative prompt: blurry, low quality
            Steps: 25, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: demo
            """)
    }

    func testInfotextRules() {
        // No negative prompt, a whole CFG scale, extras after Model, quoting, key == value.
        var parameters = GenerationParameters(prompt: "  a cat\non two lines ", steps: 20, sampler: "DPM++ 2M", cfgScale: 7,
                                              seed: 4_294_967_295, width: 768, height: 512, model: "sd-v1-5",
                                              extra: [("Denoising strength", "0.75"), ("Lora hashes", "cat: 1a2b, dog: 3c4d"),
                                                      ("Tiling", "Tiling"), ("Version", "swift-diffusers")])
        // Only the ends of the whole text are stripped: the space ending the prompt stays.
        XCTAssertEqual(parameters.infotext, "a cat\non two lines \n"
            + "Steps: 20, Sampler: DPM++ 2M, CFG scale: 7.0, Seed: 4294967295, Size: 768x512, Model: sd-v1-5, "
            + #"Denoising strength: 0.75, Lora hashes: "cat: 1a2b, dog: 3c4d", Tiling, Version: swift-diffusers"#)
        // Missing fields are left out; an empty prompt leaves the parameters line first.
        parameters = GenerationParameters(prompt: "", cfgScale: 7.3, height: 64)
        XCTAssertEqual(parameters.infotext, "CFG scale: 7.3")
        XCTAssertEqual(GenerationParameters(prompt: "only a prompt").infotext, "only a prompt")
        XCTAssertEqual(GenerationParameters(prompt: "p", model: "a, b").infotext, "p\nModel: \"a, b\"")
    }

    func testQuoteIsJSONWithoutASCIIEscapes() {
        XCTAssertEqual(GenerationParameters.quote("plain words"), "plain words")
        XCTAssertEqual(GenerationParameters.quote("tab\there \"q\" \\"), "tab\there \"q\" \\", "no comma, colon or LF: unchanged")
        XCTAssertEqual(GenerationParameters.quote("a: \"b\"\\c\nd\re\tf\u{01}g, 猫"),
                       #""a: \"b\"\\c\nd\re\tf\u0001g, 猫""#)
        XCTAssertEqual(GenerationParameters.quote("x\r\ny"), #""x\r\ny""#)
    }

    func testSamplerNames() {
        XCTAssertEqual(GenerationParameters.samplerName(forScheduler: "EulerAncestralDiscreteScheduler"), "Euler a")
        XCTAssertEqual(GenerationParameters.samplerName(forScheduler: "DPMSolverMultistepScheduler"), "DPM++ 2M")
        XCTAssertEqual(GenerationParameters.samplerName(forScheduler: "PNDMScheduler"), "PLMS")
        XCTAssertEqual(GenerationParameters.samplerName(forScheduler: "DDIMScheduler"), "DDIM")
        XCTAssertNil(GenerationParameters.samplerName(forScheduler: "FlowMatchEulerDiscreteScheduler"))
    }

    // MARK: PNG

    func testLatin1ParametersGoInATEXtChunkThatReadsBack() throws {
        let text = "a café in Zürich, «soft light»\n" + Self.example.infotext.split(separator: "\n").dropFirst().joined(separator: "\n")
        let image = try ImageFormatTests.smooth(width: 12, height: 9)
        let path = folder + "/latin1.png"
        try image.write(to: path, metadata: ImageMetadata(parameters: text))
        let png = try bytes(path)
        XCTAssertEqual(chunkTypes(png), ["IHDR", "tEXt", "IDAT", "IEND"])
        XCTAssertEqual(chunkData("tEXt", in: png), Array("parameters".utf8) + [0] + text.unicodeScalars.map { UInt8($0.value) })
        XCTAssertEqual(try ImageMetadata(contentsOfFile: path).parameters, text)
        XCTAssertEqual(try Image(contentsOfFile: path), image, "the decoder still reads the file")
    }

    func testNonLatin1ParametersGoInAnUncompressedITXtChunk() throws {
        let text = "一只猫 🐱 on a sofa\nNegative prompt: размыто\nSteps: 2, Seed: 7"
        let image = try ImageFormatTests.smooth(width: 5, height: 7)
        let path = folder + "/unicode.png"
        try image.write(to: path, metadata: ImageMetadata(parameters: text))
        let png = try bytes(path)
        XCTAssertEqual(chunkTypes(png), ["IHDR", "iTXt", "IDAT", "IEND"])
        XCTAssertEqual(chunkData("iTXt", in: png), Array("parameters".utf8) + [0, 0, 0, 0, 0] + Array(text.utf8))
        XCTAssertEqual(try ImageMetadata(contentsOfFile: path).parameters, text)
        XCTAssertEqual(try Image(contentsOfFile: path), image)
    }

    func testSeveralEntriesKeepTheirOrder() throws {
        let metadata: ImageMetadata = ["parameters": "p\nSteps: 1", "Software": "swift-diffusers", "Comment": "ü and 猫"]
        let png = try PNGEncoder().encode(try ImageFormatTests.smooth(width: 3, height: 3), metadata: metadata)
        XCTAssertEqual(chunkTypes(png), ["IHDR", "tEXt", "tEXt", "iTXt", "IDAT", "IEND"])
        XCTAssertEqual(try ImageMetadata(imageData: png), metadata)
        XCTAssertEqual(try ImageMetadata(imageData: try ImageFormatTests.smooth(width: 3, height: 3).pngData()), ImageMetadata())
        var edited = metadata
        edited["Software"] = nil
        edited.parameters = "q"
        XCTAssertEqual(edited.entries.map(\.keyword), ["parameters", "Comment"])
        XCTAssertEqual(ImageMetadata(["b": "2", "a": "1"]).entries.map(\.keyword), ["a", "b"])
    }

    func testCompressedTextChunksWrittenByOthersAreRead() throws {
        let zTXt = MalformedPNGTests.chunk("zTXt", Array("Title".utf8) + [0, 0] + MalformedPNGTests.deflate(Array("caf\u{E9}".unicodeScalars.map { UInt8($0.value) })))
        let iTXt = MalformedPNGTests.chunk(
            "iTXt", Array("parameters".utf8) + [0, 1, 0] + Array("en".utf8) + [0] + Array("Parameter".utf8) + [0]
                + MalformedPNGTests.deflate(Array("猫, Steps: 3".utf8)))
        let png = MalformedPNGTests.rgb2x2(extra: zTXt + iTXt)
        XCTAssertEqual(try ImageMetadata(imageData: png).entries,
                       [.init(keyword: "Title", text: "café"), .init(keyword: "parameters", text: "猫, Steps: 3")])
    }

    func testMalformedTextChunksAreTypedErrors() {
        let cases: [(String, [UInt8])] = [
            ("no keyword end", MalformedPNGTests.chunk("tEXt", Array("parameters".utf8))),
            ("empty keyword", MalformedPNGTests.chunk("tEXt", [0] + Array("x".utf8))),
            ("bad iTXt flag", MalformedPNGTests.chunk("iTXt", Array("k".utf8) + [0, 2, 0, 0, 0])),
            ("no language end", MalformedPNGTests.chunk("iTXt", Array("k".utf8) + [0, 0, 0] + Array("en".utf8))),
            ("not UTF-8", MalformedPNGTests.chunk("iTXt", Array("k".utf8) + [0, 0, 0, 0, 0, 0xFF, 0xFE])),
            ("corrupt zTXt", MalformedPNGTests.chunk("zTXt", Array("k".utf8) + [0, 0, 1, 2, 3])),
        ]
        for (label, chunk) in cases {
            XCTAssertThrowsError(try ImageMetadata(imageData: MalformedPNGTests.rgb2x2(extra: chunk), source: "m.png"), label) { error in
                guard let error = error as? ImageError else { return XCTFail("\(label): \(error)") }
                XCTAssert(error.description.hasPrefix("m.png"), "\(label): \(error)")
            }
        }
        XCTAssertThrowsError(try ImageMetadata(imageData: Array("GIF89a".utf8), source: "x.gif")) {
            XCTAssertEqual("\($0)", "x.gif: not a PNG, JPEG or WebP file: it starts with none of their signatures")
        }
    }

    func testMetadataPNGCannotHoldIsRefusedBeforeWriting() throws {
        let image = try ImageFormatTests.smooth(width: 2, height: 2)
        let bad: [ImageMetadata] = [["": "x"], [" lead": "x"], ["two  spaces": "x"], ["猫": "x"],
                                    [String(repeating: "k", count: 80): "x"], ["parameters": "nul\0inside"]]
        for metadata in bad {
            let path = folder + "/bad.png"
            XCTAssertThrowsError(try image.write(to: path, metadata: metadata), "\(metadata)") { error in
                guard case ImageError.metadata(let failed, _)? = error as? ImageError else { return XCTFail("\(error)") }
                XCTAssertEqual(failed, path)
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    // MARK: JPEG and WebP: EXIF UserComment

    /// UserComment as piexif writes it for A1111: "UNICODE\0" then UTF-16 big-endian.
    private func userCommentBytes(_ text: String) -> [UInt8] {
        Array("UNICODE".utf8) + [0] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    func testJPEGCarriesParametersAsEXIFUserComment() throws {
        for text in [Self.example.infotext, "猫 🐱\nSteps: 2"] {
            let path = folder + "/out.jpeg"
            try ImageFormatTests.smooth(width: 24, height: 16).write(to: path, metadata: ImageMetadata(parameters: text))
            let decoded = try ImageFormatTests.decodeJPEG(try bytes(path))
            XCTAssertEqual(decoded.width, 24)
            let exif = try XCTUnwrap(decoded.exif, "libjpeg finds the APP1 EXIF segment")
            XCTAssertEqual(Array(exif.prefix(10)), Array("Exif".utf8) + [0, 0] + Array("MM".utf8) + [0, 42])
            XCTAssertEqual(Array(exif.suffix(userCommentBytes(text).count)), userCommentBytes(text))
            XCTAssertEqual(try ImageMetadata(contentsOfFile: path).parameters, text)
        }
        // Other entries have no place in a JPEG; without parameters there is no EXIF at all.
        let path = folder + "/plain.jpg"
        try ImageFormatTests.smooth(width: 8, height: 8).write(to: path, metadata: ["Software": "x"])
        XCTAssertNil(try ImageFormatTests.decodeJPEG(try bytes(path)).exif)
        XCTAssertEqual(try ImageMetadata(contentsOfFile: path), ImageMetadata())
    }

    func testJPEGParametersTooLongForOneSegmentIsAnError() throws {
        let path = folder + "/long.jpg"
        let text = String(repeating: "a", count: 33_000)
        XCTAssertThrowsError(try ImageFormatTests.smooth(width: 8, height: 8).write(to: path, metadata: ImageMetadata(parameters: text))) {
            guard case ImageError.metadata(path, let detail)? = $0 as? ImageError else { return XCTFail("\($0)") }
            XCTAssert(detail.contains("APP1"), detail)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testWebPCarriesParametersInAnEXIFChunk() throws {
        let text = "猫 on a mat, golden hour\nNegative prompt: blurry\nSteps: 4, Sampler: DDIM, Seed: 1"
        let image = try ImageFormatTests.smooth(width: 20, height: 12)
        for encoder in [WebPEncoder(), WebPEncoder(lossless: true)] {
            let data = try ImageWriter(webp: encoder).encode(image, as: .webp, metadata: ImageMetadata(parameters: text))
            XCTAssertEqual(Array(data[12..<16]), Array("VP8X".utf8), "the extended format, which can hold EXIF")
            XCTAssertNotEqual(data[20] & 0x08, 0, "the VP8X EXIF flag")
            let decoded = try ImageFormatTests.decodeWebP(data)
            XCTAssertEqual(decoded.width, 20)
            if encoder.lossless { XCTAssertEqual(decoded.rgb, image.pixels) }
            XCTAssertEqual(try ImageMetadata(imageData: data).parameters, text)
            let exifAt = try XCTUnwrap((0..<(data.count - 4)).first { data[$0..<($0 + 4)].elementsEqual("EXIF".utf8) })
            XCTAssertEqual(Array(data[(exifAt + 8)..<(exifAt + 12)]), Array("MM".utf8) + [0, 42], "the chunk starts at the TIFF header")
        }
        XCTAssertEqual(try ImageMetadata(imageData: try WebPEncoder().encode(image)), ImageMetadata())
    }

    func testBrokenEXIFIsATypedError() throws {
        var jpeg = try JPEGEncoder().encode(try ImageFormatTests.smooth(width: 8, height: 8), metadata: ImageMetadata(parameters: "x"))
        let mm = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0x4D && jpeg[$0 + 1] == 0x4D })
        jpeg[mm] = 0x58   // neither II nor MM
        XCTAssertThrowsError(try ImageMetadata(imageData: jpeg, source: "b.jpg")) {
            guard case ImageError.metadata("b.jpg", let detail)? = $0 as? ImageError else { return XCTFail("\($0)") }
            XCTAssert(detail.contains("EXIF"), detail)
        }
        XCTAssertThrowsError(try ImageMetadata(imageData: Array(jpeg.prefix(30)), source: "t.jpg"))
    }
}
