import Tensor
import XCTest

/// Views never copy; bad shapes and arguments end in typed errors, never traps.
final class ViewAndErrorTests: XCTestCase {
    func testViewsShareStorage() throws {
        let x = try Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let views = [try x.reshaped([6, 4]), try x.permuted(2, 0, 1), try x.transposed(0, 2),
                     try x.narrowed(axis: 1, start: 1, length: 2), try x.sliced(axis: 2, 0..<4, step: 2),
                     try x.unsqueezed(0), try x.narrowed(axis: 0, start: 0, length: 1).squeezed(0),
                     try x.reshaped([2, 3, 1, 4]).expanded(to: [2, 3, 5, 4])]
        for v in views { XCTAssertTrue(v.storage === x.storage) }
        XCTAssertEqual(try x.sliced(axis: 2, 0..<4, step: 2).contiguous().floats(), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22])
        XCTAssertEqual(try x.permuted(2, 0, 1).contiguous().floats()[0..<6], [0, 4, 8, 12, 16, 20])
        // A transposed tensor reshaped where strides allow stays a view; otherwise it copies.
        let t = try x.transposed(1, 2)                  // [2, 4, 3]
        XCTAssertTrue(try t.reshaped([2, 4, 3, 1]).storage === x.storage)
        let merged = try t.reshaped([2, 12])
        XCTAssertFalse(merged.storage === x.storage)
        XCTAssertEqual(try merged.floats()[0..<4], [0, 4, 8, 1])
        XCTAssertEqual(try x.reshaped([-1, 8]).shape, [3, 8])
    }

    func testClamp() throws {
        let x = try Tensor([-40, -1, 0.5, 25, .nan], shape: [5])
        let clamped = try x.clamped(to: -30...20).floats()
        XCTAssertEqual(Array(clamped.prefix(4)), [-30, -1, 0.5, 20])
        XCTAssertTrue(clamped[4].isNaN, "NaN stays NaN, as torch.clamp")
        XCTAssertEqual(try x.to(.bf16).clamped(to: 0...1).dtype, .bf16)
        XCTAssertThrowsError(try CPUBackend.shared.clamp(x, lower: 1, upper: 0))
    }

    func testChunkSplitConcat() throws {
        let x = try Tensor((0..<12).map(Float.init), shape: [2, 6])
        let parts = try x.chunked(3, axis: 1)
        XCTAssertEqual(parts.map(\.shape), [[2, 2], [2, 2], [2, 2]])
        XCTAssertEqual(try parts[1].contiguous().floats(), [2, 3, 8, 9])
        let pieces = try x.split(sizes: [1, 5], axis: 1)
        XCTAssertEqual(try Tensor.concat(pieces, axis: 1).floats(), try x.floats())
        XCTAssertThrowsError(try x.chunked(4, axis: 1))
        XCTAssertThrowsError(try x.split(sizes: [2, 2], axis: 1))
    }

    func testBadArgumentsThrowTypedErrors() throws {
        let x = try Tensor.zeros([2, 3, 4])
        let cases: [(String, () throws -> Any)] = [
            ("reshape to a wrong size", { try x.reshaped([5, 5]) }),
            ("two unknown dims", { try x.reshaped([-1, -1]) }),
            ("bad permutation", { try x.permuted(0, 0, 1) }),
            ("axis out of range", { try x.transposed(0, 3) }),
            ("narrow past the end", { try x.narrowed(axis: 2, start: 3, length: 2) }),
            ("expand a non-1 dim", { try x.expanded(to: [2, 5, 4]) }),
            ("squeeze a non-1 dim", { try x.squeezed(1) }),
            ("broadcast mismatch", { try x + Tensor.zeros([5]) }),
            ("matmul inner mismatch", { try x.matmul(Tensor.zeros([3, 4])) }),
            ("matmul rank 1", { try Tensor.zeros([4]).matmul(Tensor.zeros([4, 2])) }),
            ("linear mismatch", { try x.linear(weight: Tensor.zeros([5, 3])) }),
            ("conv rank", { try x.conv2d(weight: Tensor.zeros([1, 3, 1, 1])) }),
            ("conv channels", { try Tensor.zeros([1, 3, 4, 4]).conv2d(weight: Tensor.zeros([2, 4, 3, 3])) }),
            ("conv kernel too big", { try Tensor.zeros([1, 3, 2, 2]).conv2d(weight: Tensor.zeros([2, 3, 3, 3])) }),
            ("conv zero stride", { try Tensor.zeros([1, 3, 4, 4]).conv2d(weight: Tensor.zeros([2, 3, 1, 1]), stride: 0) }),
            ("group norm groups", { try x.groupNorm(groups: 2, weight: nil, bias: nil) }),
            ("layer norm weight", { try x.layerNorm(weight: Tensor.zeros([3]), bias: nil) }),
            ("attention rank", { try scaledDotProductAttention(query: x, key: x, value: x) }),
            ("embedding index", { try Tensor.embedding(Tensor(int64: [11], shape: [1]), weight: Tensor.zeros([10, 4])) }),
            ("embedding float ids", { try Tensor.embedding(Tensor.zeros([1]), weight: Tensor.zeros([10, 4])) }),
            ("values do not fill shape", { try Tensor([1, 2, 3], shape: [2, 2]) }),
            ("negative shape", { try Tensor.empty([2, -1]) }),
            ("fp8 compute", { try Tensor.zeros([4], dtype: .f8e4m3fn).silu() }),
            ("integer compute", { try Tensor.zeros([4], dtype: .i64).softmax() }),
            ("item of many", { try x.item() }),
            ("unsqueeze axis out of range", { try x.unsqueezed(5) }),
        ]
        for (label, body) in cases {
            XCTAssertThrowsError(try body(), label) { error in
                XCTAssertTrue(error is TensorError || error is OutOfMemoryError, "\(label): \(error)")
                XCTAssertFalse(String(describing: error).isEmpty)
            }
        }
    }
}
