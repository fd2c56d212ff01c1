import Tensor
import TestSupport
import XCTest

/// Every kernel that splits its work into parts, over sizes that break naive splitting: 1,
/// primes, and just below, at and above multiples of the part counts (16 for the channels-last
/// GroupNorm statistics, the thread count for chunked loops, the attention tiles). The
/// channels-last GroupNorm used to give its trailing parts ranges past the end whenever
/// 15·⌈p/16⌉ > p (81 pixels: the SD 1.5 UNet's last level at 576×576) and trapped.
final class AwkwardSizeTests: XCTestCase {
    /// 1, 2, 3, primes, 15/16/17, 31/32/33, 47/48/49, 80/81/82, 127/128/129, 255/257, 323/324/325.
    static let counts = [1, 2, 3, 5, 7, 11, 13, 15, 16, 17, 23, 31, 32, 33, 47, 48, 49, 63, 64, 65, 80, 81, 82,
                         97, 127, 128, 129, 255, 256, 257, 323, 324, 325, 1009]

    func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float((($0 + seed) * 7919) % 2001) / 1000 - 1 }
    }

    func testPartsTileTheRangeExactly() {
        for count in Self.counts + [0, 4096, 5184] {
            for parts in [1, 2, 3, 7, 15, 16, 17, 64] {
                var next = 0
                for index in 0..<parts {
                    let range = Parallel.part(index, of: parts, splitting: count)
                    XCTAssertEqual(range.lowerBound, next, "part \(index) of \(parts) over \(count)")
                    XCTAssertLessThanOrEqual(range.count, count / parts + 1)
                    XCTAssertGreaterThanOrEqual(range.count, count / parts)
                    next = range.upperBound
                }
                XCTAssertEqual(next, count, "\(parts) parts cover 0..<\(count)")
            }
        }
    }

    func testChunkedLoopsVisitEveryItemOnce() {
        for count in Self.counts {
            for grain in [1, 2, 5, 16, 1000] {
                let seen = UnsafeMutablePointer<Int>.allocate(capacity: count)
                seen.initialize(repeating: 0, count: count)
                defer { seen.deallocate() }
                nonisolated(unsafe) let marks = seen
                Parallel.forEachChunk(count, grain: grain) { range in for i in range { marks[i] += 1 } }
                XCTAssertTrue((0..<count).allSatisfy { seen[$0] == 1 }, "\(count) items, grain \(grain)")
            }
        }
    }

    /// Channels-last GroupNorm (16-part statistics) against the NCHW kernel at every pixel count
    /// of the sweep, as H×W with H = 1 and as close-to-square shapes.
    func testChannelsLastGroupNormAtAwkwardPixelCounts() throws {
        for pixels in Self.counts {
            let side = Int(Double(pixels).squareRoot())
            let shapes = Set([[1, pixels], side * side == pixels ? [side, side] : [pixels, 1]])
            for hw in shapes {
                let x = try Tensor(values(2 * 8 * pixels, seed: pixels), shape: [2, 8] + hw)
                let weight = try Tensor(values(8, seed: 3), shape: [8]), bias = try Tensor(values(8, seed: 4), shape: [8])
                let plain = try x.groupNorm(groups: 4, weight: weight, bias: bias)
                let nhwc = try x.contiguous(.channelsLast).groupNorm(groups: 4, weight: weight, bias: bias)
                XCTAssertLessThan(try relativeL2(nhwc, plain), 1e-5, "\(hw)")
            }
        }
    }

    /// Element-wise kernels (blocked rows), softmax and LayerNorm rows at awkward lengths.
    func testRowAndBlockKernelsAtAwkwardSizes() throws {
        for n in Self.counts {
            let x = try Tensor(values(3 * n, seed: n), shape: [3, n])
            let expected = try x.floats().map { $0 / (1 + Foundation.exp(-$0)) }
            XCTAssertLessThan(maxAbsDifference(try x.silu().floats(), expected), 1e-5, "silu over \(n)")
            let softmax = try x.softmax().floats()
            for row in 0..<3 {
                XCTAssertEqual(Double(softmax[(row * n)..<((row + 1) * n)].reduce(0, +)), 1, accuracy: 1e-4, "softmax row of \(n)")
            }
            let normed = try x.layerNorm(weight: nil, bias: nil).floats()
            XCTAssertTrue(normed.allSatisfy(\.isFinite))
        }
    }

    /// The tiled attention kernel against the reference at query and key lengths around its
    /// tile sizes.
    func testTiledAttentionAtAwkwardLengths() throws {
        for (sq, sk) in [(1, 1), (1, 77), (7, 5), (63, 65), (65, 63), (129, 257), (257, 129), (81, 77), (323, 31)] {
            let q = try Tensor(values(2 * sq * 8, seed: sq), shape: [1, 2, sq, 8])
            let k = try Tensor(values(2 * sk * 8, seed: sk + 1), shape: [1, 2, sk, 8])
            let v = try Tensor(values(2 * sk * 8, seed: sk + 2), shape: [1, 2, sk, 8])
            let reference = try scaledDotProductAttention(query: q, key: k, value: v, kernel: .reference)
            for kernel in [AttentionKernel.memoryEfficient, .auto, .sliced(1)] {
                let out = try scaledDotProductAttention(query: q, key: k, value: v, kernel: kernel)
                XCTAssertLessThan(try relativeL2(out, reference), 1e-5, "\(kernel) at \(sq)×\(sk)")
            }
        }
    }

    /// A negative scale turns each row's largest product into its smallest score: the tiled
    /// kernel must not take the products' maximum for the scores' one.
    func testTiledAttentionWithANegativeScale() throws {
        let (sq, sk) = (65, 600)
        let q = try Tensor(values(2 * sq * 8, seed: 11), shape: [1, 2, sq, 8])
        let k = try Tensor(values(2 * sk * 8, seed: 12), shape: [1, 2, sk, 8])
        let v = try Tensor(values(2 * sk * 8, seed: 13), shape: [1, 2, sk, 8])
        let reference = try scaledDotProductAttention(query: q, key: k, value: v, scale: -30, kernel: .reference)
        let tiled = try scaledDotProductAttention(query: q, key: k, value: v, scale: -30, kernel: .memoryEfficient)
        XCTAssertLessThan(try relativeL2(tiled, reference), 1e-5)
    }

    /// Convolutions on channels-last and NCHW at odd spatial sizes, stride 1 and 2.
    func testConvolutionAtAwkwardSizes() throws {
        for (h, w) in [(1, 1), (1, 7), (3, 5), (9, 9), (17, 15), (33, 1)] {
            let x = try Tensor(values(2 * 4 * h * w, seed: h * w), shape: [2, 4, h, w])
            let weight = try Tensor(values(8 * 4 * 9, seed: 5), shape: [8, 4, 3, 3])
            for stride in [1, 2] {
                let plain = try x.conv2d(weight: weight, stride: stride, padding: 1)
                let nhwc = try x.contiguous(.channelsLast).conv2d(weight: weight, stride: stride, padding: 1)
                XCTAssertEqual(plain.shape, [2, 8, (h - 1) / stride + 1, (w - 1) / stride + 1])
                XCTAssertLessThan(try relativeL2(nhwc, plain), 1e-5, "\(h)×\(w) stride \(stride)")
            }
        }
    }
}
