import NN
import Tensor
import TestSupport
import XCTest

/// Every conversion against what PyTorch 2.15 produced for the same values
/// (tools/reference/make_op_fixtures.py → Fixtures/ops/dtypes.safetensors).
final class DTypeConversionTests: XCTestCase {
    var fixture: SafeTensorsFile!

    override func setUpWithError() throws { fixture = try Fixtures.file("ops/dtypes.safetensors") }

    /// Narrowing f32 → bf16/f16/fp8 must give PyTorch's bits (NaN compared as NaN-ness).
    func testNarrowingMatchesPyTorchBitForBit() throws {
        let source = try fixture.tensor(named: "src")
        for (name, dtype) in [("to_bf16", DType.bf16), ("to_f16", .f16), ("to_f8e4m3fn", .f8e4m3fn), ("to_f8e5m2", .f8e5m2)] {
            let expected = try fixture.tensor(named: name)
            XCTAssertEqual(expected.dtype, dtype)
            let ours = try source.to(dtype)
            let (a, e) = (try ours.bytes(), try expected.bytes())
            let size = dtype.itemSize
            let sourceValues = try source.floats()
            var mismatches = 0
            for i in 0..<source.count {
                let x = a[i * size..<(i + 1) * size], y = e[i * size..<(i + 1) * size]
                if x == y { continue }
                // NaN payloads differ between PyTorch's scalar and vector paths; NaN-ness must agree.
                let ourValue = try ours.narrowed(axis: 0, start: i, length: 1).item()
                let theirValue = try expected.narrowed(axis: 0, start: i, length: 1).item()
                if ourValue.isNaN && theirValue.isNaN { continue }
                mismatches += 1
                if mismatches < 5 { XCTFail("\(name)[\(i)]: \(sourceValues[i]) → ours \(Array(x)) PyTorch \(Array(y))") }
            }
            XCTAssertEqual(mismatches, 0, "\(name): \(mismatches) values differ")
        }
    }

    func testWideningIsExact() throws {
        for name in ["bf16", "f16", "f8e4m3fn", "f8e5m2"] {
            let narrow = try fixture.tensor(named: "to_\(name)")
            let expected = try fixture.tensor(named: "\(name)_to_f32").floats()
            let ours = try narrow.to(.f32).floats()
            for (i, (x, y)) in zip(ours, expected).enumerated() where !(x.isNaN && y.isNaN) {
                XCTAssertEqual(x.bitPattern, y.bitPattern, "\(name)_to_f32[\(i)]")
            }
        }
    }

    /// Every float8 byte widens to f32 and bf16 exactly (the table path of `to(_:)` against the
    /// scalar conversion), NaNs included.
    func testEveryFloat8ByteWidens() throws {
        let bytes = (0...255).map { UInt8($0) }
        for dtype in [DType.f8e4m3fn, .f8e5m2] {
            let narrow = try bytes.withUnsafeBytes { try Tensor(bytes: $0, dtype: dtype, shape: [256]) }
            let wide = try narrow.to(.f32).floats()
            let half = try narrow.to(.bf16).to(.f32).floats()
            for (byte, (x, h)) in zip(bytes, zip(wide, half)) {
                let expected = dtype == .f8e4m3fn ? float(fromF8E4M3FN: byte) : float(fromF8E5M2: byte)
                XCTAssertEqual(x.bitPattern, expected.bitPattern, "\(dtype) \(byte) → f32")
                XCTAssertEqual(h.bitPattern, expected.bitPattern, "\(dtype) \(byte) → bf16")
            }
        }
    }

    func testIntegerAndBoolConversions() throws {
        XCTAssertEqual(try fixture.tensor(named: "i64_src").to(.f32).floats(), try fixture.tensor(named: "i64_to_f32").floats())
        let finite = try fixture.tensor(named: "f32_finite_src")
        XCTAssertEqual(try finite.to(.i64).int64s(), try fixture.tensor(named: "f32_to_i64").int64s())
        XCTAssertEqual(try finite.to(.i32).int64s(), try fixture.tensor(named: "f32_to_i32").int64s())
        XCTAssertEqual(try fixture.tensor(named: "u8_src").to(.f32).floats(), try fixture.tensor(named: "u8_to_f32").floats())
        XCTAssertEqual(try fixture.tensor(named: "bool_src").to(.f32).floats(), try fixture.tensor(named: "bool_to_f32").floats())
        XCTAssertEqual(try fixture.tensor(named: "src").to(.bool).bytes(), try fixture.tensor(named: "f32_to_bool").bytes())
    }

    /// Round-to-nearest-even on hand-picked ties, independent of the fixture.
    func testTiesRoundToEven() {
        // 1 + 2^-8 lies halfway between bf16 1.0 and 1.0078125: even mantissa (1.0) wins.
        XCTAssertEqual(bf16Bits(from: 1.00390625), 0x3F80)
        // 1 + 3·2^-8 lies between 1.0078125 (odd) and 1.015625 (even).
        XCTAssertEqual(bf16Bits(from: 1.01171875), 0x3F82)
        XCTAssertEqual(f8e4m3fnBits(from: 1000), 0x7E)       // saturates at 448
        XCTAssertEqual(f8e4m3fnBits(from: -.infinity), 0xFE)
        XCTAssertEqual(f8e5m2Bits(from: 70000), 0x7C)         // overflows to inf
        XCTAssertEqual(float(fromF8E4M3FN: 0x7E), 448)
        XCTAssertTrue(float(fromF8E4M3FN: 0x7F).isNaN)
    }
}
