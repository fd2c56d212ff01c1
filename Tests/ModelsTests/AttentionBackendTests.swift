import NN
import Tensor
import TestSupport
import XCTest
import Models

/// Attention backends on the tiny UNet against Diffusers' sliced and classic processors
/// (Fixtures/attention, from tools/reference/make_attention_fixtures.py), and their memory.
final class AttentionBackendTests: XCTestCase {
    func makeUNet() throws -> UNet2DConditionModel {
        let folder = Fixtures.path("tiny-sd/unet")
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
        try unet.load(from: Checkpoint(folder: folder))
        return unet
    }

    func testBackendsMatchDiffusers() throws {
        let inputs = try Fixtures.file("tiny-sd/outputs/unet.safetensors")
        let f = try Fixtures.file("attention/sliced-unet.safetensors")
        let unet = try makeUNet()
        func run() throws -> Tensor {
            try unet(inputs.tensor(named: "sample"), timestep: Tensor(int64: [981], shape: []),
                     encoderHiddenStates: inputs.tensor(named: "encoder_hidden_states"))
        }
        try unet.enableAttentionSlicing(.max)
        XCTAssertTrue(unet.attentionKernels.allSatisfy { $0.kernel == .sliced(1) })
        try assertMatches(run(), f.tensor(named: "sliced_max_t981"), "sliced, one head at a time")
        try unet.enableAttentionSlicing(.auto)
        XCTAssertTrue(unet.attentionKernels.allSatisfy { $0.kernel == .sliced(4) }, "auto = half of the 8 heads")
        try assertMatches(run(), f.tensor(named: "sliced_auto_t981"), "sliced, auto")
        try unet.setAttentionBackend(.naive)
        try assertMatches(run(), f.tensor(named: "classic_t981"), "naive (classic processor)")
        try unet.setAttentionBackend(.flash)
        try assertMatches(run(), f.tensor(named: "classic_t981"), "flash")
        XCTAssertTrue(unet.attentionKernels.allSatisfy { $0.kernel == .memoryEfficient })
        unet.disableAttentionSlicing()
        XCTAssertTrue(unet.attentionKernels.allSatisfy { $0.kernel == .auto }, "the default again")
    }

    func testBadSliceSizesAreClearErrors() throws {
        let unet = try makeUNet()
        XCTAssertThrowsError(try unet.enableAttentionSlicing(.heads(0))) { XCTAssertTrue("\($0)".contains("at least 1"), "\($0)") }
        XCTAssertThrowsError(try unet.enableAttentionSlicing(.heads(9))) { XCTAssertTrue("\($0)".contains("smaller or equal to 8"), "\($0)") }
        XCTAssertTrue(unet.attentionKernels.allSatisfy { $0.kernel == .auto }, "a refused size changes nothing")
        XCTAssertNil(AttentionBackend(name: "sliced:x"))
        XCTAssertEqual(AttentionBackend(name: "sliced:2"), .sliced(2))
        XCTAssertEqual(AttentionBackend(name: "sliced"), .sliced(.auto))
        XCTAssertEqual(AttentionBackend(name: "naive"), .naive)
        XCTAssertEqual(AttentionBackend(name: "flash"), .flash)
        XCTAssertThrowsError(try unet.setAttentionBackend(.sliced(0))) { XCTAssertTrue("\($0)".contains("at least 1"), "\($0)") }
    }

    /// Sliced attention holds the scores of one slice; the naive kernel all of them; flash none.
    func testSlicedAttentionHoldsOneSliceOfScores() throws {
        let (b, h, s, d) = (2, 8, 1024, 40)
        let device = Device.accel(31)
        func operand(_ seed: Int) throws -> Tensor {
            try Tensor((0..<(b * h * s * d)).map { Float(($0 * 7 + seed) % 23) / 23 - 0.5 }, shape: [b, h, s, d]).to(device)
        }
        let (q, k, v) = (try operand(1), try operand(2), try operand(3))
        func peak(_ kernel: AttentionKernel) throws -> (Int, [Float]) {
            let base = device.allocator.bytesInUse
            device.allocator.resetPeak()
            let out = try scaledDotProductAttention(query: q, key: k, value: v, kernel: kernel)
            return (device.allocator.peakBytes - base, try out.to(.cpu).floats())
        }
        let (naive, expected) = try peak(.reference)
        let (sliced, slicedOut) = try peak(.sliced(1))
        let (flash, _) = try peak(.memoryEfficient)
        let scores = b * h * s * s * 4
        print("attention peaks: naive \(formatBytes(naive)), sliced(1) \(formatBytes(sliced)), flash \(formatBytes(flash)); all scores \(formatBytes(scores))")
        XCTAssertGreaterThanOrEqual(naive, scores, "the naive kernel holds every score")
        XCTAssertLessThan(sliced, scores / 4, "one head's scores at a time")
        XCTAssertLessThan(flash, scores / 16)
        XCTAssertLessThan(relativeL2(slicedOut, expected), 1e-6)
    }
}
