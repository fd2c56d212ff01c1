import NN
import Tensor
import TestSupport
import XCTest
import Models

/// VAE tiling and slicing against Diffusers (Fixtures/vae-tiling, from
/// tools/reference/make_vae_tiling_fixtures.py): tiles of 16 px / 8 latent px on the tiny VAE,
/// several tiles both ways with partial last ones, blended in place as Diffusers does.
final class VAETilingTests: XCTestCase {
    func makeVAE() throws -> AutoencoderKL {
        let folder = Fixtures.path("tiny-sd/vae")
        let vae = AutoencoderKL(try AutoencoderKLConfig(ModelConfig(path: folder + "/config.json")))
        try vae.load(from: Checkpoint(folder: folder))
        return vae
    }

    func testTiledEncodeAndDecodeMatchDiffusers() throws {
        let vae = try makeVAE()
        let f = try Fixtures.file("vae-tiling/vae-tiling.safetensors")
        try assertMatches(vae.decode(f.tensor(named: "latents")), f.tensor(named: "plain_decode"), "plain decode")
        try vae.enableTiling(sampleMinSize: 16, latentMinSize: 8, overlapFactor: 0.25)
        let tiled = try vae.decode(f.tensor(named: "latents"))
        try assertMatches(tiled, f.tensor(named: "tiled_decode"), "tiled decode")
        XCTAssertGreaterThan(try relativeL2(tiled, f.tensor(named: "plain_decode")), 1e-3, "tiling really happened")
        let posterior = try vae.encode(f.tensor(named: "image"))
        try assertMatches(posterior.mean, f.tensor(named: "tiled_encode_mean"), "tiled encode mean")
        try assertMatches(posterior.logVariance, f.tensor(named: "tiled_encode_logvar"), "tiled encode log-variance")
        // Below the tile size nothing is tiled.
        let small = try f.tensor(named: "latents").narrowed(axis: 2, start: 0, length: 8).narrowed(axis: 3, start: 0, length: 8).contiguous()
        let untiled = try makeVAE().decode(small)
        XCTAssertEqual(try vae.decode(small).floats(), try untiled.floats())
    }

    func testSlicedDecodeMatchesDiffusers() throws {
        let vae = try makeVAE()
        let f = try Fixtures.file("vae-tiling/vae-tiling.safetensors")
        vae.enableSlicing()
        try assertMatches(vae.decode(f.tensor(named: "latents3")), f.tensor(named: "sliced_decode"), "sliced decode, batch 3")
        try vae.enableTiling(sampleMinSize: 16, latentMinSize: 8)
        try assertMatches(vae.decode(f.tensor(named: "latents3")), f.tensor(named: "sliced_tiled_decode"), "sliced and tiled decode")
        vae.disableSlicing()
        vae.disableTiling()
        XCTAssertNil(vae.tiling)
    }

    /// Tiling bounds the decoder's activations by one tile: decoding latents 4× the tile size
    /// each way peaks far lower on the device than decoding them whole.
    func testTiledDecodePeaksAtATile() throws {
        let latents = try Tensor((0..<(4 * 64 * 64)).map { Float($0 % 17) / 17 - 0.5 }, shape: [1, 4, 64, 64])
        func peak(_ tiled: Bool) throws -> Int {
            let vae = try makeVAE()
            let device = Device.accel(21)
            try vae.moveParameters(to: device)
            if tiled { try vae.enableTiling(sampleMinSize: 32, latentMinSize: 16) }
            let weights = device.allocator.bytesInUse
            device.allocator.resetPeak()
            let out = try vae.decode(latents.to(device))
            XCTAssertEqual(out.shape, [1, 3, 128, 128])
            return device.allocator.peakBytes - weights
        }
        let plain = try peak(false), tiled = try peak(true)
        print("VAE decode 128² activations: plain \(formatBytes(plain)), tiled (32 px tiles) \(formatBytes(tiled))")
        XCTAssertLessThan(tiled, plain / 2, "tiled decode: \(formatBytes(tiled)), plain: \(formatBytes(plain))")
    }

    func testBadTilingOptionsAreClearErrors() throws {
        let vae = try makeVAE()
        XCTAssertThrowsError(try vae.enableTiling(sampleMinSize: 15)) { XCTAssertTrue("\($0)".contains("multiple of 2"), "\($0)") }
        XCTAssertThrowsError(try vae.enableTiling(sampleMinSize: 0))
        XCTAssertThrowsError(try vae.enableTiling(sampleMinSize: 16, overlapFactor: 1)) { XCTAssertTrue("\($0)".contains("overlap"), "\($0)") }
        XCTAssertThrowsError(try vae.enableTiling(sampleMinSize: 16, latentMinSize: 0))
        XCTAssertNil(vae.tiling, "a refused setting changes nothing")
    }
}
