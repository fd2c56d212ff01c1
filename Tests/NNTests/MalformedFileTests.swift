import Foundation
import NN
import Tensor
import TestSupport
import XCTest

/// Each malformed safetensors, index, config or model_index file must give one specific
/// typed error, never a trap.
final class MalformedFileTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws { folder = try makeTemporaryFolder(self) }

    /// Writes `bytes` as a safetensors file and asserts that opening it throws `expected`
    /// (built from the file's path).
    private func expect(_ bytes: [UInt8], _ expected: (String) -> SafeTensorsError,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let path = folder + "/f\(line).safetensors"
        try writeFile(path, bytes)
        assertThrows(expected(path), file: file, line: line) { try SafeTensorsFile(path: path) }
    }

    private let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    private let eight = [UInt8](repeating: 0, count: 8)

    func testEmptyFile() throws { try expect([], { .emptyFile(path: $0) }) }

    func testShorterThanTheLength() throws { try expect([1, 2, 3], { .fileTooSmall(path: $0, size: 3) }) }

    func testHeaderLengthOverTheLimit() throws {
        try expect(safetensorsBytes(header: good, data: eight, declaredLength: 100_000_001),
                   { .headerTooLarge(path: $0, length: 100_000_001) })
    }

    func testHugeHeaderLength() throws {
        try expect(safetensorsBytes(header: good, declaredLength: UInt64.max), { .headerTooLarge(path: $0, length: UInt64.max) })
    }

    func testHeaderLengthPastTheEnd() throws {
        let bytes = safetensorsBytes(header: good, declaredLength: 500)
        try expect(bytes, { .headerPastEnd(path: $0, length: 500, fileSize: bytes.count) })
    }

    func testHeaderNotUTF8() throws {
        try expect([4, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0xFE, 0x7D], { .headerNotUTF8(path: $0) })
    }

    func testHeaderNotStartingWithBrace() throws {
        try expect(safetensorsBytes(header: " " + good, data: eight), { .headerNotObject(path: $0) })
    }

    func testHeaderIsAnArray() throws { try expect(safetensorsBytes(header: "[1,2]"), { .headerNotObject(path: $0) }) }

    func testHeaderNotJSON() throws {
        let path = folder + "/nojson.safetensors"
        try writeFile(path, safetensorsBytes(header: #"{"a": {"dtype": "F32",, }"#))
        XCTAssertThrowsError(try SafeTensorsFile(path: path)) { error in
            guard case SafeTensorsError.invalidHeaderJSON(let p, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
        }
    }

    func testDeeplyNestedHeaderIsRejectedNotOverflowed() throws {
        let path = folder + "/deep.safetensors"
        try writeFile(path, safetensorsBytes(header: "{\"a\":" + String(repeating: "[", count: 100_000)))
        XCTAssertThrowsError(try SafeTensorsFile(path: path)) { error in
            guard case SafeTensorsError.invalidHeaderJSON = error else { return XCTFail("\(error)") }
        }
    }

    func testDuplicateTensorName() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        try expect(safetensorsBytes(header: header, data: eight), { .duplicateTensor(path: $0, name: "a") })
    }

    func testMissingDType() throws {
        try expect(safetensorsBytes(header: #"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "missing 'dtype'") })
    }

    func testMissingShape() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "missing 'shape'") })
    }

    func testMissingOffsets() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "missing 'data_offsets'") })
    }

    func testDTypeOfWrongType() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "'dtype' is a number, not a string") })
    }

    func testShapeOfWrongType() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "'shape' is a string, not an array") })
    }

    func testEntryNotAnObject() throws {
        try expect(safetensorsBytes(header: #"{"a":[1,2]}"#), { .invalidEntry(path: $0, tensor: "a", reason: "entry is an array, not an object") })
    }

    func testNegativeDimension() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "'shape' holds -2, not a non-negative integer") })
    }

    func testFractionalDimension() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "'shape' holds 2.0, not a non-negative integer") })
    }

    func testOffsetsNotAPair() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "'data_offsets' has 1 numbers, not 2 ([begin, end])") })
    }

    func testUnknownDType() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                   { .unknownDType(path: $0, tensor: "a", dtype: "F128") })
    }

    func testBeginAfterEnd() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight),
                   { .invalidOffsets(path: $0, tensor: "a", begin: 8, end: 0, reason: "begin is after end") })
    }

    func testByteCountNotMatchingShape() throws {
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
                   { .byteCountMismatch(path: $0, tensor: "a", dtype: .f32, shape: [3], expected: 12, actual: 8) })
    }

    func testSubByteDTypeByteCount() throws {
        // F4 [3] is 12 bits: not a whole number of bytes.
        try expect(safetensorsBytes(header: #"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: [0, 0]),
                   { .invalidEntry(path: $0, tensor: "a", reason: "F4 shape [3] does not fill a whole number of bytes") })
    }

    func testShapeOverflow() throws {
        let header = #"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#
        try expect(safetensorsBytes(header: header, data: eight),
                   { .invalidEntry(path: $0, tensor: "a", reason: "shape [4294967296, 4294967296] is too large") })
    }

    func testOverlappingTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        try expect(safetensorsBytes(header: header, data: eight), { .overlappingTensors(path: $0, tensor: "b", other: "a") })
    }

    func testHoleBetweenTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        try expect(safetensorsBytes(header: header, data: eight + [0, 0, 0, 0]),
                   { .gapBeforeTensor(path: $0, tensor: "b", expectedBegin: 4, begin: 8) })
    }

    func testTrailingBytes() throws {
        try expect(safetensorsBytes(header: good, data: eight + [1, 2]), { .trailingBytes(path: $0, dataEnd: 8, dataSize: 10) })
    }

    func testTruncatedData() throws {
        try expect(safetensorsBytes(header: good, data: [0, 0, 0]), { .dataPastEnd(path: $0, tensor: "a", end: 8, dataSize: 3) })
    }

    func testMetadataNotAnObject() throws {
        try expect(safetensorsBytes(header: #"{"__metadata__":"pt"}"#),
                   { .invalidMetadata(path: $0, reason: "is a string, not an object of strings") })
    }

    func testMetadataValueNotAString() throws {
        try expect(safetensorsBytes(header: #"{"__metadata__":{"format":1}}"#),
                   { .invalidMetadata(path: $0, reason: "maps 'format' to a number, not a string") })
    }

    func testDirectoryInsteadOfFile() throws {
        assertThrows(FileError.notARegularFile(path: folder, kind: "a folder")) { try SafeTensorsFile(path: folder) }
    }

    func testMissingFile() throws {
        assertThrows(FileError.notFound(path: folder + "/nope.safetensors")) {
            try SafeTensorsFile(path: folder + "/nope.safetensors")
        }
    }

    func testMisalignedTensorIsCopiedNotTrapped() throws {
        // A U8 tensor first pushes the F32 one off its natural alignment.
        let header = #"{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}"#
        var json = header
        while (json.utf8.count + 8) % 8 != 0 { json += " " }
        var data: [UInt8] = [9]
        withUnsafeBytes(of: Float(3.5).bitPattern.littleEndian) { data += $0 }
        let path = folder + "/misaligned.safetensors"
        try writeFile(path, safetensorsBytes(header: json, data: data))
        let a = try SafeTensorsFile(path: path).tensor(named: "a")
        XCTAssertEqual(try a.floats(), [3.5])
    }

    // MARK: index, config and model_index files

    func testIndexNotJSON() throws {
        try writeFile(folder + "/diffusion_pytorch_model.safetensors.index.json", "{not json")
        XCTAssertThrowsError(try Checkpoint(folder: folder)) { error in
            guard case CheckpointError.invalidJSON(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("index.json"))
        }
    }

    func testIndexWithoutWeightMap() throws {
        let path = folder + "/diffusion_pytorch_model.safetensors.index.json"
        try writeFile(path, #"{"metadata": {"total_size": 4}}"#)
        assertThrows(CheckpointError.invalidIndex(path: path, reason: "has no 'weight_map'")) { try Checkpoint(folder: folder) }
    }

    func testIndexWeightMapValueNotAString() throws {
        let path = folder + "/diffusion_pytorch_model.safetensors.index.json"
        try writeFile(path, #"{"weight_map": {"a": 3}}"#)
        assertThrows(CheckpointError.invalidIndex(path: path, reason: "maps tensor 'a' to a number, not a shard file name")) {
            try Checkpoint(folder: folder)
        }
    }

    func testIndexTotalSizeNotANumber() throws {
        let path = folder + "/diffusion_pytorch_model.safetensors.index.json"
        try writeFile(path, #"{"metadata": {"total_size": "big"}, "weight_map": {}}"#)
        assertThrows(CheckpointError.invalidIndex(path: path, reason: "has a 'metadata.total_size' that is not a non-negative integer")) {
            try Checkpoint(folder: folder)
        }
    }

    func testIndexDuplicateTensor() throws {
        try writeFile(folder + "/diffusion_pytorch_model.safetensors.index.json",
                      #"{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}"#)
        XCTAssertThrowsError(try Checkpoint(folder: folder)) { error in
            guard case CheckpointError.invalidJSON(_, let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("duplicate key 'a'"), message)
        }
    }

    func testConfigNotAnObject() throws {
        let path = folder + "/config.json"
        try writeFile(path, "[1, 2]")
        assertThrows(CheckpointError.invalidConfig(path: path, reason: "the config is an array, not a JSON object")) {
            try ModelConfig(path: path)
        }
    }

    func testConfigClassNameNotAString() throws {
        let path = folder + "/config.json"
        try writeFile(path, #"{"_class_name": 5}"#)
        assertThrows(CheckpointError.configKeyType(path: path, key: "_class_name", expected: "a string", found: "a number")) {
            try ModelConfig(path: path)
        }
    }

    func testConfigTrailingComma() throws {
        let path = folder + "/config.json"
        try writeFile(path, #"{"a": 1,}"#)
        XCTAssertThrowsError(try ModelConfig(path: path)) { error in
            guard case CheckpointError.invalidJSON(let p, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
        }
    }

    func testModelIndexComponentOfWrongShape() throws {
        let path = folder + "/model_index.json"
        try writeFile(path, #"{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", 3]}"#)
        assertThrows(CheckpointError.invalidModelIndex(path: path, reason: "component 'unet' must be [library, class] strings or [null, null]")) {
            try PipelineIndex(path: path)
        }
    }

    func testModelIndexComponentEscapingTheFolder() throws {
        let path = folder + "/model_index.json"
        try writeFile(path, #"{"..": ["diffusers", "UNet2DConditionModel"]}"#)
        assertThrows(CheckpointError.invalidModelIndex(path: path, reason: "component name '..' is not a plain folder name")) {
            try PipelineIndex(path: path)
        }
    }
}
