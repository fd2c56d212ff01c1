import NN
import Tensor
import TestSupport
import XCTest
import Models

/// Channels-last on the tiny VAE: no per-convolution reorder buffers, so the decode's peak on
/// the device is lower than the contiguous run's, for the same image.
final class ChannelsLastModelTests: XCTestCase {
    func testVAEDecodePeaksLowerInChannelsLast() throws {
        let folder = Fixtures.path("tiny-sd/vae")
        let vae = AutoencoderKL(try AutoencoderKLConfig(ModelConfig(path: folder + "/config.json")))
        try vae.load(from: Checkpoint(folder: folder))
        let device = Device.accel(40)
        try vae.moveParameters(to: device)
        let latents = try Tensor((0..<(4 * 32 * 32)).map { Float(($0 * 7919) % 2001) / 1000 - 1 }, shape: [1, 4, 32, 32])
        var peaks: [MemoryFormat: Int] = [:]
        var images: [MemoryFormat: Tensor] = [:]
        for format in MemoryFormat.allCases {
            vae.setMemoryFormat(format)
            _ = try vae.decode(latents)   // packs the convolution weights for this format's primitives
            let before = device.allocator.bytesInUse
            let (image, peak) = try device.allocator.measuringPeak { try vae.decode(latents) }
            peaks[format] = peak - before
            images[format] = image
            XCTAssertEqual(image.memoryFormat, format)
        }
        let contiguous = try XCTUnwrap(peaks[.contiguous]), channelsLast = try XCTUnwrap(peaks[.channelsLast])
        XCTAssertLessThan(channelsLast, contiguous * 9 / 10, "channels-last peak \(channelsLast) vs contiguous \(contiguous)")
        XCTAssertLessThan(try relativeL2(XCTUnwrap(images[.channelsLast]), XCTUnwrap(images[.contiguous])), 1e-5)
    }
}
