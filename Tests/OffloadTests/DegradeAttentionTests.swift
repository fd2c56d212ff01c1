import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

extension DegradeAndRetryTests {
    /// A denoising step that runs out of memory with a naive attention kernel (whole score
    /// matrices) is not retried alone: the pipeline switches to the memory-efficient kernel and
    /// the call runs again from its start, so it gives the images of a call that used that
    /// kernel from the start, bit for bit — here the capacity shrinks after the first step, so
    /// the prompt encoding and the step before the failing one must run again too.
    func testAStepOutOfMemoryWithWholeScoreMatricesRerunsTheLoopMemoryEfficiently() throws {
        var options = GenerationOptions.tinyOneStep()
        options.seed = 21
        options.steps = 3
        (options.width, options.height) = (128, 128)
        func call(_ backend: AttentionBackend, limitAfterFirstStep limit: Int?, degrades: Bool) throws -> (images: [Float], peak: Int, retried: [String]) {
            let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd")
            let device = Device.accel(7)
            try pipeline.to(device)
            try pipeline.enableVAETiling()   // the decode stays below the steps' peak
            try pipeline.setAttentionBackend(backend)
            pipeline.degradesOnOutOfMemory = degrades
            defer { device.allocator.limitCapacity(to: nil) }
            var stepsSeen = 0, loopSteps = 0
            let result = try pipeline.generate(options) { event in
                stepsSeen += 1
                loopSteps = event.totalSteps
                if event.step == 1, let limit { device.allocator.limitCapacity(to: limit) }
                return true
            }
            if !pipeline.retriedPhases.isEmpty {
                XCTAssertEqual(stepsSeen, 1 + loopSteps, "the first step, then (the second failing) every step again")
                XCTAssertFalse(pipeline.components.contains { $0.attentionKernels.contains { $0.kernel.holdsScoreMatrices } }, "the pipeline stays memory-efficient")
            }
            return (try result.images.floats(), device.allocator.peakBytes, pipeline.retriedPhases)
        }
        let naive = try call(.naive, limitAfterFirstStep: nil, degrades: false)
        let flash = try call(.flash, limitAfterFirstStep: nil, degrades: false)
        XCTAssertLessThan(flash.peak, naive.peak, "a tile of scores instead of whole matrices")
        XCTAssertTrue(flash.images != naive.images, "the kernels round differently, so the test can tell them apart")
        let limit = (naive.peak + flash.peak) / 2
        XCTAssertThrowsError(try call(.naive, limitAfterFirstStep: limit, degrades: false)) { XCTAssertTrue($0 is OutOfMemoryError, "\($0)") }
        let retried = try call(.naive, limitAfterFirstStep: limit, degrades: true)
        XCTAssertTrue(retried.images == flash.images, "the call that used the memory-efficient kernel from the start, bit for bit")
        XCTAssertEqual(retried.retried.count, 1, "\(retried.retried)")
        XCTAssertTrue(retried.retried.first?.hasSuffix("and the call ran again from its start with --attention flash") == true, "\(retried.retried)")
    }

    /// The same in a batch run in chunks: the second chunk runs out, the pipeline takes the
    /// memory-efficient kernel, and every chunk runs again with it — the images of a chunked
    /// call that used that kernel from the start, bit for bit, and the retry said once.
    func testAChunkOutOfMemoryWithWholeScoreMatricesRerunsEveryChunk() throws {
        var options = GenerationOptions.tinyOneStep()
        options.seed = 22
        options.steps = 2
        options.imagesPerPrompt = 2
        (options.width, options.height) = (128, 128)
        func call(_ backend: AttentionBackend, limit: Int?, degrades: Bool) throws -> (images: [Float], peak: Int, retried: [String]) {
            let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd")
            let device = Device.accel(8)
            try pipeline.to(device)
            try pipeline.enableVAETiling()
            try pipeline.setAttentionBackend(backend)
            pipeline.degradesOnOutOfMemory = degrades
            defer { device.allocator.limitCapacity(to: nil) }
            // The limit from the end of the first chunk's steps on.
            let result = try pipeline.generate(options, imagesPerChunk: 1) { event in
                if event.step == event.totalSteps / 2, let limit { device.allocator.limitCapacity(to: limit) }
                return true
            }
            return (try result.images.floats(), device.allocator.peakBytes, pipeline.retriedPhases)
        }
        let naive = try call(.naive, limit: nil, degrades: false)
        let flash = try call(.flash, limit: nil, degrades: false)
        XCTAssertLessThan(flash.peak, naive.peak)
        XCTAssertTrue(Array(flash.images.prefix(flash.images.count / 2)) != Array(naive.images.prefix(naive.images.count / 2)),
                      "the first chunk's image tells the kernels apart")
        let limit = (naive.peak + flash.peak) / 2
        XCTAssertThrowsError(try call(.naive, limit: limit, degrades: false)) { XCTAssertTrue($0 is OutOfMemoryError, "\($0)") }
        let retried = try call(.naive, limit: limit, degrades: true)
        XCTAssertTrue(retried.images == flash.images, "every chunk with the memory-efficient kernel, bit for bit")
        XCTAssertEqual(retried.retried.count, 1, "\(retried.retried)")
    }
}
