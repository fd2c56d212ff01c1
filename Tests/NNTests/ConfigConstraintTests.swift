import Foundation
import NN
import Tensor
import TestSupport
import XCTest

/// `ModelConfig`'s constrained accessors, the parameter tally that is compared with a
/// checkpoint before a model is built, and the dtype check on loaded weights: each violation is
/// a typed error naming the file and key (or tensor), never a trap.
final class ConfigConstraintTests: XCTestCase {
    private let path = "/models/x/config.json"

    /// A config holding `text`'s members (NaN and Infinity allowed, as Python writes them).
    private func config(_ text: String) throws -> ModelConfig {
        try ModelConfig(json: JSONParser.parse(Array(text.utf8), allowNonFinite: true), path: path)
    }

    private func assertValueError(_ expectedKey: String, _ expectedValue: String, file: StaticString = #filePath, line: UInt = #line,
                                  _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case let .configValue(errorPath, key, value, _)? = error as? CheckpointError else {
                return XCTFail("expected configValue, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(errorPath, path, file: file, line: line)
            XCTAssertEqual(key, expectedKey, file: file, line: line)
            XCTAssertTrue(value.hasPrefix(expectedValue), "value \(value)", file: file, line: line)
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains(expectedKey), message, file: file, line: line)
        }
    }

    func testIntegersMustBeInRange() throws {
        let c = try config(#"{"groups": 0, "layers": 1000000, "huge": 1000000000000000019884624838656, "negative": -3, "ok": 32, "none": null}"#)
        assertValueError("groups", "0") { try c.size("groups") }
        assertValueError("layers", "1000000") { try c.repeatCount("layers") }
        assertValueError("huge", "1000000000000000019884624838656") { try c.size("huge") }
        assertValueError("negative", "-3") { try c.int("negative", in: 0...2) }
        XCTAssertEqual(try c.size("ok"), 32)
        XCTAssertEqual(try c.size("none", default: 8), 8)
        XCTAssertEqual(try c.size("absent", default: 8), 8)
        assertThrows(CheckpointError.missingConfigKey(path: path, key: "absent")) { try c.size("absent") }
        // The JSON type is still checked first, with the existing error.
        let typed = try config(#"{"groups": "32", "fraction": 2.5}"#)
        XCTAssertThrowsError(try typed.size("groups")) { error in
            XCTAssertEqual(error as? CheckpointError, .configKeyType(path: path, key: "groups", expected: "an integer", found: "a string"))
        }
        XCTAssertThrowsError(try typed.size("fraction")) { error in
            guard case .configKeyType(_, "fraction", _, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testListsAreCheckedEntryByEntryAndByLength() throws {
        let c = try config(#"{"channels": [64, 0, 96], "long": [1, 2, 3, 4, 5], "heads": 4, "bad_heads": [8, 8]}"#)
        assertValueError("channels[1]", "0") { try c.ints("channels", in: 1...1024, count: 1...16) }
        assertValueError("long", "a list of 5") { try c.ints("long", in: 1...8, count: 1...4) }
        XCTAssertEqual(try c.perBlock("heads", in: 1...64, count: 3, default: 8), [4, 4, 4])
        XCTAssertEqual(try c.perBlock("absent", in: 1...64, count: 2, default: 8), [8, 8])
        assertValueError("bad_heads", "a list of 2") { try c.perBlock("bad_heads", in: 1...64, count: 3, default: 8) }
    }

    func testNumbersMustBeFiniteAndPositiveWhereRequired() throws {
        let c = try config(#"{"nan": NaN, "inf": Infinity, "ninf": -Infinity, "zero": 0, "negative": -1e-5, "tiny": 1e-50, "big": 1e300, "eps": 1e-6, "shift": -0.5}"#)
        for key in ["nan", "inf", "ninf", "zero", "negative"] {
            assertValueError(key, key == "nan" ? "NaN" : key == "inf" ? "Infinity" : key == "ninf" ? "-Infinity" : "") {
                try c.float(key, .positive)
            }
        }
        // Positive and finite as a Double, but not once narrowed to the float32 the models use.
        assertValueError("tiny", "1e-50 (0.0 in float32)") { try c.float("tiny", .positive) }
        assertValueError("big", "1e300 (inf in float32)") { try c.float("big", .finite) }
        XCTAssertEqual(try c.double("tiny", .positive), 1e-50)
        XCTAssertEqual(try c.float("eps", .positive), 1e-6)
        XCTAssertEqual(try c.optionalFloat("shift", .finite), -0.5)
        XCTAssertNil(try c.optionalFloat("absent", .finite))
        assertValueError("nan", "NaN") { try c.optionalDouble("nan", .finite) as Any }
        XCTAssertEqual(try c.double("ninf", .notNaN), -.infinity)
        XCTAssertEqual(try c.double("inf", .positiveOrInfinity), .infinity)
    }

    func testRelationsNameTheirKeys() throws {
        let c = try config("{}")
        XCTAssertNoThrow(try c.require(true, "unused"))
        assertThrows(CheckpointError.invalidConfig(path: path, reason: "block_out_channels[0] = 30 is not a multiple of norm_num_groups = 32")) {
            try c.require(30 % 32 == 0, "block_out_channels[0] = 30 is not a multiple of norm_num_groups = 32")
        }
    }

    func testTallySaturatesInsteadOfTrapping() throws {
        var t = ParameterTally()
        t.linear(1 << 40, 1 << 40)
        XCTAssertEqual(t.tensors, 2)
        XCTAssertEqual(t.elements, .max)
        t.add(t, times: .max)
        XCTAssertEqual(t.tensors, .max)
        XCTAssertThrowsError(try t.checkWithinLimits(config: path)) { error in
            guard case .invalidConfig(path, let reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("more than any model has"), reason)
        }
        var small = ParameterTally()
        small.conv(4, 8, kernel: 3)
        small.norm(8)
        small.embedding(10, 8)
        XCTAssertEqual(small, ParameterTally(tensors: 5, elements: 4 * 8 * 9 + 8 + 16 + 80))
        XCTAssertNoThrow(try small.checkWithinLimits(config: path))
    }

    /// A checkpoint holding far fewer tensors than the config implies (more than twice as many
    /// and 64) is refused from its headers, naming the config and the checkpoint; a near miss
    /// passes, left to the key check that names each tensor.
    func testCheckpointMustHoldWhatTheConfigImplies() throws {
        let folder = try makeTemporaryFolder(self)
        try SafeTensorsWriter.write(["w": try Tensor([Float](repeating: 1, count: 6), shape: [2, 3]),
                                     "b": try Tensor([0, 0], shape: [2])], to: folder + "/diffusion_pytorch_model.safetensors")
        let checkpoint = try Checkpoint(folder: folder)
        XCTAssertEqual(try checkpoint.parameterTally(), ParameterTally(tensors: 2, elements: 8))
        var fits = ParameterTally()
        fits.linear(3, 2)
        XCTAssertNoThrow(try checkpoint.checkHolds(fits, config: folder + "/config.json"))
        var nearMiss = fits
        nearMiss.linear(3, 2, bias: false)
        XCTAssertNoThrow(try checkpoint.checkHolds(nearMiss, config: folder + "/config.json"))
        var tooMany = fits
        for _ in 0..<70 { tooMany.linear(3, 2, bias: false) }
        XCTAssertThrowsError(try checkpoint.checkHolds(tooMany, config: folder + "/config.json")) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .configCheckpointMismatch(config: folder + "/config.json", checkpoint: folder + "/diffusion_pytorch_model.safetensors",
                                                     implied: "72 tensors (428 parameters)", found: "2 tensors (8 parameters)"))
            XCTAssertTrue("\(error)".contains("disagree"), "\(error)")
        }
        // As many tensors but larger ones: cheap to build, so left to the key-by-key check,
        // whose message names the mis-shaped tensors.
        var wider = ParameterTally()
        wider.linear(30, 2)
        XCTAssertNoThrow(try checkpoint.checkHolds(wider, config: "c.json"))
    }

    /// A BOOL or integer tensor for a float parameter is a typed error naming the tensor and
    /// the file, found before anything is loaded; it used to be kept as it was (only floats
    /// are cast) and compute as 0/1 weights.
    func testNonFloatingWeightsAreRefused() throws {
        final class Tiny: Module, @unchecked Sendable {
            let layer = Linear(3, 2)
            override init() {
                super.init()
                child("layer", layer)
            }
        }
        let folder = try makeTemporaryFolder(self)
        let file = folder + "/diffusion_pytorch_model.safetensors"
        for dtype in [DType.bool, .i64, .u8, .i32] {
            let weight = try Tensor([1, 0, 1, 0, 1, 0], shape: [2, 3]).to(dtype)
            try SafeTensorsWriter.write(["layer.weight": weight, "layer.bias": try Tensor([0, 0], shape: [2])], to: file)
            let model = Tiny()
            assertThrows(ModuleError.nonFloatingWeight(tensor: "layer.weight", dtype: SafeTensorsDType(dtype).rawValue, file: file)) {
                try model.load(from: Checkpoint(folder: folder))
            }
            XCTAssertNil(model.layer.weight.value, "nothing loads when a tensor is refused")
            assertThrows(ModuleError.nonFloatingWeight(tensor: "layer.weight", dtype: "\(dtype)", file: nil)) {
                try model.load(weights: ["layer.weight": weight, "layer.bias": try Tensor([0, 0], shape: [2])])
            }
        }
        let message = ModuleError.nonFloatingWeight(tensor: "layer.weight", dtype: "BOOL", file: file).description
        XCTAssertTrue(message.contains("layer.weight") && message.contains(file) && message.contains("BOOL"), message)
        // Float weights of any width still load (and are cast as asked).
        try SafeTensorsWriter.write(["layer.weight": try Tensor([Float](repeating: 1, count: 6), shape: [2, 3]).to(.f16),
                                     "layer.bias": try Tensor([0, 0], shape: [2]).to(.bf16)], to: file)
        let model = Tiny()
        try model.load(from: Checkpoint(folder: folder), dtype: .f32)
        XCTAssertEqual(model.layer.weight.value?.dtype, .f32)
    }
}
