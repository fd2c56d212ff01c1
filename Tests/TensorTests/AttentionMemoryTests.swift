import Tensor
import TestSupport
import XCTest

/// The memory-efficient kernel never holds the score matrix: at 4096 query tokens × 8 heads
/// its scratch (peak minus operands and output) must stay under 1/16 of the reference kernel's,
/// as the allocator of a dedicated device reports it.
final class AttentionMemoryTests: XCTestCase {
    func testTiledKernelScratchIsASmallFractionOfTheReference() throws {
        let device = Device.accel(0)
        let (b, h, s, d) = (1, 8, 4096, 40)
        func random(_ seed: Int) throws -> Tensor {
            var state = UInt64(seed)
            let values = (0..<(b * h * s * d)).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
            }
            return try Tensor(values, shape: [b, h, s, d], device: device)
        }
        let q = try random(1), k = try random(2), v = try random(3)
        let operands = device.allocator.bytesInUse
        let outputBytes = b * h * s * d * 4

        func scratch(_ kernel: AttentionKernel) throws -> (Int, Tensor) {
            device.allocator.resetPeak()
            let out = try scaledDotProductAttention(query: q, key: k, value: v, kernel: kernel)
            return (device.allocator.peakBytes - operands - outputBytes, out)
        }
        let (tiled, tiledOut) = try scratch(.memoryEfficient)
        let (reference, referenceOut) = try scratch(.reference)
        // The reference holds at least the [1, 8, 4096, 4096] f32 score matrix.
        XCTAssertGreaterThanOrEqual(reference, h * s * s * 4)
        XCTAssertLessThan(tiled * 16, reference, "tiled scratch \(formatBytes(tiled)) vs reference \(formatBytes(reference))")
        print("attention scratch at 4096 tokens x 8 heads: tiled \(formatBytes(tiled)), reference \(formatBytes(reference))")
        XCTAssertLessThan(relativeL2(try tiledOut.floats(), try referenceOut.floats()), 1e-5)
        // Everything the kernels allocated is released again.
        withExtendedLifetime((tiledOut, referenceOut)) {}
    }
}
