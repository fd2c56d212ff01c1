import Foundation
import Models
import Pipelines
import Schedulers
import Tensor
import TestSupport
import XCTest

/// A batch run a few images at a time (`generate(_:imagesPerChunk:progress:)`): every image gets
/// the noise it gets in the whole batch, so the images and latents are the whole batch's; a
/// rehearsal of the chunked run predicts its peaks, which stay below the whole batch's.
final class BatchChunkTests: XCTestCase {
    static let families = ["tiny-sd", "tiny-sdxl", "tiny-flux-dev"]

    /// A fixture pipeline, or (`demo`) the demo pipeline, whose VAE scales by 8.
    func pipeline(_ folder: String) throws -> any TextToImagePipeline {
        try AutoPipeline.textToImage(folder: folder == "demo" ? packageRoot + "/models/demo" : Fixtures.path(folder), dtype: .f32)
    }

    func options(_ pipeline: any TextToImagePipeline, batch: Int, width: Int, height: Int) -> GenerationOptions {
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
        (options.steps, options.width, options.height, options.seed, options.imagesPerPrompt) = (2, width, height, 11, batch)
        options.guidanceScale = pipeline.defaultGuidanceScale
        return options
    }

    /// Chunks of 2 and of 1 against the whole batch of 3, for every family (and the demo
    /// pipeline) at two sizes each.
    func testAChunkedBatchIsTheWholeBatch() throws {
        for folder in Self.families + ["demo"] {
            let pipe = try pipeline(folder)
            for (width, height) in folder == "demo" ? [(64, 64), (72, 72)] : [(32, 32), (40, 24)] {
                let options = options(pipe, batch: 3, width: width, height: height)
                let whole = try pipe.generate(options, progress: nil)
                XCTAssertEqual(whole.images.shape[0], 3)
                for chunk in [2, 1] {
                    var events: [StepEvent] = []
                    let chunked = try pipe.generate(options, imagesPerChunk: chunk, progress: { events.append($0); return true })
                    let label = "\(folder) \(width)×\(height) in chunks of \(chunk)"
                    XCTAssertEqual(chunked.images.shape, whole.images.shape, label)
                    XCTAssertEqual(chunked.latents.shape, whole.latents.shape, label)
                    XCTAssertLessThanOrEqual(maxAbsDifference(try chunked.images.floats(), try whole.images.floats()), 1e-5, label)
                    XCTAssertLessThanOrEqual(maxAbsDifference(try chunked.latents.floats(), try whole.latents.floats()), 1e-5, label)
                    // Progress counts the steps of every chunk, one run of them (PNDM steps once more).
                    let chunks = (3 + chunk - 1) / chunk, steps = whole.timings.stepSeconds.count
                    XCTAssertEqual(events.map(\.step), Array(1...(chunks * steps)), label)
                    XCTAssertEqual(Set(events.map(\.totalSteps)), [chunks * steps], label)
                    XCTAssertEqual(chunked.timings.stepSeconds.count, whole.timings.stepSeconds.count, label)
                }
            }
        }
    }

    /// Chunk by chunk, the noise is the whole batch's `randn`, bit for bit: drawn chunk by chunk
    /// where an image's noise is a whole number of 16-value blocks ([4, 8, 8]), drawn at once
    /// where it is not ([4, 9, 9]: SD 1.5's VAE at 72×72; its last block is drawn again).
    func testBatchNoiseIsTheWholeBatchsDraws() throws {
        for perImage in [[4, 8, 8], [4, 9, 9], [16, 3, 5]] {
            var options = GenerationOptions(prompt: "x")
            options.seed = 1234
            var generator = TorchGenerator(seed: 1234)
            let whole = try generator.randn([5] + perImage).floats()
            for chunk in [1, 2, 3] {
                var noise = try BatchNoise(options, batch: 5, perImage: perImage)
                var drawn: [Float] = []
                for start in stride(from: 0, to: 5, by: chunk) { drawn += try noise.next(min(chunk, 5 - start)).floats() }
                XCTAssertEqual(drawn, whole, "\(perImage) in chunks of \(chunk)")
            }
        }
    }

    /// Given initial latents are handed out by rows: chunk by chunk, the whole batch's run.
    func testGivenLatentsAreSplitByRows() throws {
        let pipe = try pipeline("tiny-sd")
        var options = options(pipe, batch: 3, width: 32, height: 32)
        var generator = TorchGenerator(seed: 99)
        options.latents = try generator.randn([3] + pipe.initialNoiseShape(options))
        let whole = try pipe.generate(options, progress: nil)
        let chunked = try pipe.generate(options, imagesPerChunk: 2, progress: nil)
        XCTAssertLessThanOrEqual(maxAbsDifference(try chunked.images.floats(), try whole.images.floats()), 1e-5)
        options.latents = try generator.randn([2] + pipe.initialNoiseShape(options))
        XCTAssertThrowsError(try pipe.generate(options, imagesPerChunk: 2, progress: nil)) {
            XCTAssertTrue("\($0)".contains("initial latents have shape [2, 4, 16, 16]; this run needs [3, 4, 16, 16]"), "\($0)")
        }
    }

    /// What a chunked run cannot give the whole batch's images is refused before it computes.
    func testWhatChunksCannotRunIsRefused() throws {
        let pipe = try pipeline("tiny-sd")
        let base = options(pipe, batch: 3, width: 32, height: 32)
        XCTAssertThrowsError(try pipe.generate(base, imagesPerChunk: 0, progress: nil)) {
            XCTAssertTrue("\($0)".contains("at least 1, not 0"), "\($0)")
        }
        var prompts = base
        prompts.prompts = ["a red circle", "a blue square"]
        prompts.negativePrompts = ["", ""]
        XCTAssertThrowsError(try pipe.generate(prompts, imagesPerChunk: 1, progress: nil)) {
            XCTAssertTrue("\($0)".contains("with one prompt, not 2"), "\($0)")
        }
        try pipe.configureScheduler(kind: .eulerAncestralDiscrete)
        XCTAssertThrowsError(try pipe.generate(base, imagesPerChunk: 1, progress: nil)) {
            XCTAssertTrue("\($0)".contains("EulerAncestralDiscreteScheduler draws noise at every step"), "\($0)")
        }
        // A chunk as large as the batch is the plain call.
        try pipe.configureScheduler(kind: .pndm)
        XCTAssertEqual(try pipe.generate(base, imagesPerChunk: 3, progress: nil).images.shape[0], 3)
    }

    /// The rehearsal of a chunked run (its first two chunks) has the real run's host peak, byte
    /// for byte, and that peak is below the whole batch's.
    func testARehearsedChunkedRunHasTheRealPeak() throws {
        for folder in Self.families {
            let pipe = try pipeline(folder)
            let options = options(pipe, batch: 4, width: 64, height: 64)
            func peaks(_ body: () throws -> Void) throws -> (rehearsed: Int, real: Int) {
                let allocator = Device.cpu.allocator
                allocator.emptyCache()
                let rehearsal = MemoryRehearsal(watching: [allocator])
                try rehearsal.run(body)
                let start = allocator.bytesInUse
                allocator.resetPeak()
                try body()
                return (rehearsal.figures.devicePeakBytes["cpu"] ?? 0, allocator.peakBytes - start)
            }
            let whole = try peaks { _ = try pipe.generate(options, progress: nil) }
            let chunked = try peaks { _ = try pipe.generate(options, imagesPerChunk: 1, progress: nil) }
            XCTAssertEqual(chunked.rehearsed, chunked.real, "\(folder): a chunk at a time")
            XCTAssertEqual(whole.rehearsed, whole.real, "\(folder): the whole batch")
            XCTAssertLessThan(chunked.real, whole.real, "\(folder): a chunk holds less than the whole batch")
        }
    }
}
