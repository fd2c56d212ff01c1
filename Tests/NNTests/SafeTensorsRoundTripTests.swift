import Foundation
import NN
import Tensor
import TestSupport
import XCTest

final class SafeTensorsRoundTripTests: XCTestCase {
    private func sample(_ dtype: DType) throws -> Tensor {
        switch dtype {
        case .i64, .i32, .u8:
            return try Tensor(int64: [0, 1, 2, 3, 250, 7], shape: [2, 3], dtype: dtype)
        case .bool:
            return try Tensor([1, 0, 1, 1, 0, 0], shape: [3, 2], dtype: .bool)
        default:
            return try Tensor([0.5, -1.25, 3, 1e-3, -448, 2.5], shape: [1, 2, 3], dtype: dtype)
        }
    }

    func testRoundTripEveryDType() throws {
        let folder = try makeTemporaryFolder(self)
        var tensors: [String: Tensor] = [:]
        for dtype in DType.allCases { tensors["t_\(dtype)"] = try sample(dtype) }
        tensors["scalar"] = try Tensor([2.5], shape: [], dtype: .f32)
        tensors["empty"] = try Tensor.empty([0, 4], dtype: .f16)
        let path = folder + "/all.safetensors"
        try SafeTensorsWriter.write(tensors, to: path, metadata: ["format": "pt", "note": "round trip"])

        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.metadata, ["format": "pt", "note": "round trip"])
        XCTAssertEqual(Set(file.names), Set(tensors.keys))
        for (name, original) in tensors {
            let loaded = try file.tensor(named: name)
            XCTAssertEqual(loaded.dtype, original.dtype, name)
            XCTAssertEqual(loaded.shape, original.shape, name)
            XCTAssertEqual(try loaded.bytes(), try original.bytes(), name)
        }
        // The header lists tensors in the reference writer's order.
        XCTAssertEqual(file.names, ["t_i64", "scalar", "t_f32", "t_i32", "t_bf16", "empty", "t_f16",
                                    "t_f8e4m3fn", "t_f8e5m2", "t_u8", "t_bool"])
        XCTAssertEqual((8 + file.header.headerByteCount) % 8, 0)
    }

    func testNonContiguousTensorIsWrittenContiguous() throws {
        let folder = try makeTemporaryFolder(self)
        let base = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let transposed = try base.transposed(0, 1)
        XCTAssertFalse(transposed.isContiguous)
        try SafeTensorsWriter.write(["t": transposed], to: folder + "/t.safetensors")
        let loaded = try SafeTensorsFile(path: folder + "/t.safetensors").tensor(named: "t")
        XCTAssertEqual(loaded.shape, [3, 2])
        XCTAssertEqual(try loaded.floats(), [1, 4, 2, 5, 3, 6])
    }

    func testTensorsAreZeroCopyViewsOfTheMapping() throws {
        let folder = try makeTemporaryFolder(self)
        let path = folder + "/big.safetensors"
        let count = 2_000_000  // 8 MB of f32
        do {
            let big = try Tensor.zeros([count], dtype: .f32)
            try SafeTensorsWriter.write(["big": big, "small": try Tensor([1, 2], shape: [2])], to: path)
        }
        let before = Device.cpu.allocator.bytesInUse
        let file = try SafeTensorsFile(path: path)
        let big = try file.tensor(named: "big")
        let small = try file.tensor(named: "small")
        XCTAssertTrue(big.storage.isMapped)
        XCTAssertTrue(small.storage.isMapped)
        XCTAssertEqual(try small.floats(), [1, 2])
        XCTAssertEqual(big.data.load(fromByteOffset: 4 * (count - 1), as: Float.self), 0)
        // Nothing was allocated for the 8 MB tensor.
        XCTAssertLessThan(Device.cpu.allocator.bytesInUse - before, count * 4 / 2)
        // The tensor's bytes are the file's bytes: same place as in the mapping.
        let mappingBase = try XCTUnwrap((big.storage.mapping as? MappedFile)?.base)
        let entry = try XCTUnwrap(file.entry(named: "big"))
        XCTAssertEqual(UnsafeRawPointer(big.data) - mappingBase, file.header.dataStart + entry.dataOffsets.lowerBound)
    }

    func testMappingOutlivesTheFileObject() throws {
        let folder = try makeTemporaryFolder(self)
        try SafeTensorsWriter.write(["x": try Tensor([7, 8, 9], shape: [3])], to: folder + "/x.safetensors")
        let tensor = try SafeTensorsFile(path: folder + "/x.safetensors").tensor(named: "x")
        XCTAssertEqual(try tensor.floats(), [7, 8, 9])
    }

    func testWriterMatchesPythonSafetensorsByteForByte() throws {
        let reference = packageRoot + "/Tests/Fixtures/safetensors/mixed-dtypes.safetensors"
        let file = try SafeTensorsFile(path: reference)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        let tensors = try file.tensors()
        XCTAssertEqual(try SafeTensorsWriter.serialize(tensors), try readBytes(reference))
        XCTAssertEqual(try tensors["u8"]?.int64s(), [250, 251, 252, 253, 254, 255])
        XCTAssertEqual(try tensors["scalar"]?.item(), 1.5)
        XCTAssertEqual(tensors["empty"]?.shape, [0, 4])
    }

    func testWriterMatchesDiffusersShardsByteForByte() throws {
        for folder in ["unet-sharded", "unet-fp16-sharded", "unet-single"] {
            let path = checkpointFixtures + "/" + folder
            let files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".safetensors") }
            XCTAssertFalse(files.isEmpty)
            for name in files {
                let file = try SafeTensorsFile(path: path + "/" + name)
                let written = try SafeTensorsWriter.serialize(try file.tensors())
                XCTAssertEqual(written, try readBytes(path + "/" + name), "\(folder)/\(name)")
            }
        }
    }

    func testAtomicWriteLeavesNoTemporaryFiles() throws {
        let folder = try makeTemporaryFolder(self)
        try SafeTensorsWriter.write(["a": try Tensor([1], shape: [1])], to: folder + "/a.safetensors")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["a.safetensors"])
        // A reserved name fails before anything is created.
        let reserved = ["__metadata__": try Tensor([1], shape: [1])]
        XCTAssertThrowsError(try SafeTensorsWriter.write(reserved, to: folder + "/b.safetensors"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["a.safetensors"])
    }

    func testEmptyStateDictMatchesReferenceLayout() throws {
        // safetensors' own test: no tensors, no metadata → "{}" padded to 8.
        XCTAssertEqual(try SafeTensorsWriter.serialize([:], metadata: nil),
                       [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
    }

    func testUnsupportedDTypeIsListedButNotLoadable() throws {
        let folder = try makeTemporaryFolder(self)
        let path = folder + "/f64.safetensors"
        let header = #"{"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"q":{"dtype":"F4","shape":[3,2],"data_offsets":[16,19]}}"#
        try writeFile(path, safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: 19)))
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.entries.map(\.dtype), [.f64, .f4])
        assertThrows(SafeTensorsError.unsupportedDType(path: path, tensor: "d", dtype: .f64)) { try file.tensor(named: "d") }
        assertThrows(SafeTensorsError.tensorNotFound(path: path, name: "zz")) { try file.tensor(named: "zz") }
    }

    func testEveryFormatDTypeIsRecognisedWithItsBitWidth() throws {
        let widths: [String: Int] = ["BOOL": 8, "U8": 8, "I8": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
                                     "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64, "F8_E4M3": 8,
                                     "F8_E5M2": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F8_E8M0": 8, "F4": 4,
                                     "F6_E2M3": 6, "F6_E3M2": 6]
        XCTAssertEqual(SafeTensorsDType.allCases.count, widths.count)
        for (name, bits) in widths { XCTAssertEqual(SafeTensorsDType(rawValue: name)?.bitWidth, bits, name) }
    }
}
