import NN
import Tensor
import XCTest

/// The README's Swift example, kept compiling and running.
final class ReadmeExampleTests: XCTestCase {
    func testReadmeExample() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/checkpoints/unet-sharded").path
        let unet = try Checkpoint(folder: folder)
        var names = 0
        try unet.forEachShard { _, tensors in
            for (_, weight) in tensors { XCTAssertEqual(weight.dtype, .f32); names += 1 }
        }
        XCTAssertEqual(names, 208)

        let accel = Device.accel(0, capacity: 2_000_000_000)
        let x = try Tensor([Float](repeating: 1, count: 2 * 4 * 64 * 64), shape: [2, 4, 64, 64]).to(accel)
        let y = try x.conv2d(weight: try Tensor.zeros([320, 4, 3, 3], device: accel), padding: 1).silu()
        XCTAssertEqual(y.shape, [2, 320, 64, 64])
        XCTAssertGreaterThanOrEqual(accel.allocator.peakBytes, accel.allocator.bytesInUse)
    }
}
