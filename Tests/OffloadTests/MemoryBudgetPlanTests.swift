import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// `--memory-budget`'s plan: the budget text, the choice among candidates, and candidates sized
/// from the same group layout that group offloading installs.
final class MemoryBudgetPlanTests: XCTestCase {
    func testBudgetSizes() throws {
        XCTAssertEqual(try HostMemoryBudget.parse("6GB"), 6_000_000_000)
        XCTAssertEqual(try HostMemoryBudget.parse("512MiB"), 512 << 20)
        let refusals = [
            ("0", "must be more than 0 bytes"), ("0GB", "must be more than 0 bytes"), ("-1GB", "takes a size such as 6GB"),
            ("5 apples", "not '5 apples'"), ("1e999GB", "not '1e999GB'"), ("12", "needs a unit, e.g. 12GB"),
        ]
        for (text, words) in refusals {
            XCTAssertThrowsError(try HostMemoryBudget.parse(text), text) { XCTAssertTrue("\($0)".contains(words), "\(text): \($0)") }
        }
        // Suggestions read back as at least the bytes they round.
        for bytes in [1, 39 << 20, (39 << 20) + 1, 1 << 30, 6_400_000_000] {
            XCTAssertGreaterThanOrEqual(try HostMemoryBudget.parse(HostMemoryBudget.suggestion(bytes)), bytes, "\(bytes)")
            if bytes >= 1 << 20 { XCTAssertLessThanOrEqual(try HostMemoryBudget.parse(HostMemoryBudget.suggestion(bytes, roundingDown: true)), bytes) }
        }
    }

    func testTheFastestCandidateThatFitsIsChosen() throws {
        let candidates = [BudgetCandidate(technique: .resident, weightBytesAtOnce: 1000, largestUnit: "unet", largestUnitBytes: 1000),
                          BudgetCandidate(technique: .groupBlock(blocksPerGroup: 1), weightBytesAtOnce: 300, largestUnit: "unet.b", largestUnitBytes: 150),
                          BudgetCandidate(technique: .groupLeaf, weightBytesAtOnce: 40, largestUnit: "unet.b.0.conv", largestUnitBytes: 20)]
        let roomy = BudgetPlan(budgetBytes: 5000, processBytes: 100, outputBytes: 10, candidates: candidates)
        XCTAssertEqual(roomy.chosen?.technique, .resident)
        XCTAssertEqual(roomy.allocatorLimitBytes, 5000 - 100 - 1000)
        let tight = BudgetPlan(budgetBytes: 500, processBytes: 100, outputBytes: 10, candidates: candidates)
        XCTAssertEqual(tight.chosen?.technique, .groupBlock(blocksPerGroup: 1))
        XCTAssertEqual(tight.allocatorLimitBytes, 100)   // the images are allocations too: within the limit
        let tiny = BudgetPlan(budgetBytes: 149, processBytes: 100, outputBytes: 10, candidates: candidates)
        XCTAssertNil(tiny.chosen)
        XCTAssertEqual(tiny.minimumBudgetBytes, 150)
        XCTAssertThrowsError(try tiny.requireFit()) {
            let message = "\($0)"
            XCTAssertTrue(message.contains("--offload group-leaf") && message.contains("'unet.b.0.conv'") && message.contains("at least 150 B"), message)
        }
    }

    /// Lossy candidates (weights stored in f8e4m3) are chosen only with `lossyAllowed`; without,
    /// a refusal names the budget one would take where that is less than any lossless one's.
    /// Chunk sizes halve down to one image.
    func testLossyCandidatesOnlyWhenAllowed() throws {
        let lossless = BudgetCandidate(technique: .groupLeaf, weightBytesAtOnce: 400, largestUnit: "unet.b.0.conv", largestUnitBytes: 200)
        let lossy = BudgetCandidate(technique: .resident, weightBytesAtOnce: 250, largestUnit: "unet", largestUnitBytes: 250).storing(.f8e4m3fn)
        XCTAssertEqual(lossy.commandLine, "--offload none --storage-dtype f8e4m3fn")
        XCTAssertEqual(lossless.chunked(3).tiled().commandLine, "--offload group-leaf --vae-tiling --images-per-chunk 3")
        let refused = BudgetPlan(budgetBytes: 400, processBytes: 100, outputBytes: 10, candidates: [lossless, lossy])
        XCTAssertNil(refused.chosen)
        XCTAssertEqual(refused.minimumBudgetBytes, 510)
        XCTAssertEqual(refused.minimumLossyBudgetBytes, 360)
        XCTAssertThrowsError(try refused.requireFit()) {
            XCTAssertTrue("\($0)".contains("--allow-lossy (the denoiser's weights stored in f8e4m3fn: 360 B)"), "\($0)")
        }
        let allowed = BudgetPlan(budgetBytes: 400, processBytes: 100, outputBytes: 10, candidates: [lossless, lossy], lossyAllowed: true)
        XCTAssertEqual(allowed.chosen, lossy)
        XCTAssertEqual(allowed.minimumBudgetBytes, 360)
        XCTAssertNil(allowed.minimumLossyBudgetBytes)
        // Lossless first: where one fits, it is chosen even with lossy ones allowed and faster-looking.
        let roomy = BudgetPlan(budgetBytes: 600, processBytes: 100, outputBytes: 10, candidates: [lossless, lossy], lossyAllowed: true)
        XCTAssertEqual(roomy.chosen, lossless)
        // The whole decode before a tiled one (tiling changes the pixels), whatever the order.
        let tiled = BudgetCandidate(technique: .resident, weightBytesAtOnce: 100, largestUnit: "unet", largestUnitBytes: 100).tiled()
        let chunked = lossless.chunked(1)
        XCTAssertEqual(BudgetPlan(budgetBytes: 600, processBytes: 100, outputBytes: 10, candidates: [tiled, chunked, lossy], lossyAllowed: true).chosen, chunked)
        XCTAssertEqual(BudgetPlan(budgetBytes: 300, processBytes: 100, outputBytes: 10, candidates: [chunked, tiled, lossy], lossyAllowed: true).chosen, tiled)
        XCTAssertEqual(BudgetCandidate.chunkSizes(batch: 8), [4, 2, 1])
        XCTAssertEqual(BudgetCandidate.chunkSizes(batch: 5), [3, 2, 1])
        XCTAssertEqual(BudgetCandidate.chunkSizes(batch: 1), [])
    }

    /// The decodes a plan weighs and a retry steps down to: one image at a time in a batch,
    /// then tiles of the VAE's sample size and smaller, only tiles smaller than the image.
    func testTheDecodeLadder() {
        let whole = VAEDecode()
        XCTAssertEqual(VAEDecode.ladder(from: whole, batch: 1, imageSide: 1024, sampleSize: 512, downscale: 8),
                       [whole, VAEDecode(tiling: true), VAEDecode(tiling: true, tileSize: 256), VAEDecode(tiling: true, tileSize: 128)])
        // A batch: one image at a time first, and so in tiles; a tile no smaller than the image decodes whole.
        XCTAssertEqual(VAEDecode.ladder(from: whole, batch: 4, imageSide: 512, sampleSize: 512, downscale: 8),
                       [whole, VAEDecode(slicing: true), VAEDecode(slicing: true, tiling: true, tileSize: 256),
                        VAEDecode(slicing: true, tiling: true, tileSize: 128), VAEDecode(slicing: true, tiling: true, tileSize: 64)])
        // From tiles: smaller ones only, of at least 8 latent pixels.
        let quarter = VAEDecode(tiling: true, tileSize: 256)
        XCTAssertEqual(VAEDecode.ladder(from: quarter, batch: 1, imageSide: 1024, sampleSize: 512, downscale: 8),
                       [quarter, VAEDecode(tiling: true, tileSize: 128), VAEDecode(tiling: true, tileSize: 64)])
        XCTAssertEqual(VAEDecode.ladder(from: whole, batch: 1, imageSide: 64, sampleSize: 512, downscale: 8), [whole])
        XCTAssertEqual(VAEDecode(slicing: true, tiling: true, tileSize: 256).commandLine, " --vae-slicing --vae-tiling --vae-tile-size 256")
        XCTAssertEqual(VAEDecode(tileSize: 256), whole, "a tile size without tiling is none")
    }

    /// The plain run's numbers first: a decode one image at a time keeps them, tiles and another
    /// attention kernel change them a little, a lossy storage dtype more; a faster candidate of
    /// a later kind is not chosen over one that fits with the plain numbers.
    func testCandidatesWithThePlainNumbersComeFirst() {
        let base = BudgetCandidate(technique: .resident, weightBytesAtOnce: 100, largestUnit: "unet", largestUnitBytes: 100)
        XCTAssertEqual(base.decoding(VAEDecode(slicing: true)).numbers, .plain)
        XCTAssertEqual(base.chunked(2).numbers, .plain)
        XCTAssertEqual(base.tiled().numbers, .close)
        XCTAssertEqual(base.withMemoryEfficientAttention().numbers, .close)
        XCTAssertEqual(base.withMemoryEfficientAttention().storing(.f8e4m3fn).numbers, .lossy)
        XCTAssertEqual(base.decoding(VAEDecode(slicing: true)).withMemoryEfficientAttention().commandLine, "--offload none --vae-slicing --attention flash")
        func predicted(_ candidate: BudgetCandidate, step: Double) -> BudgetCandidate {
            var copy = candidate
            copy.prediction = RunPrediction(baseResidentBytes: 1 << 20, rehearsedPeakBytes: 0, mappedPeakBytes: 0, outputBytes: 0,
                                            devicePeakBytes: [:], stepSeconds: step)
            return copy
        }
        let slow = predicted(base.decoding(VAEDecode(slicing: true)), step: 2), fast = predicted(base.withMemoryEfficientAttention(), step: 1)
        XCTAssertEqual(BudgetPlan(budgetBytes: 1 << 30, processBytes: 0, outputBytes: 0, candidates: [fast, slow]).chosen, slow)
        XCTAssertEqual(BudgetPlan(budgetBytes: 1 << 30, processBytes: 0, outputBytes: 0, candidates: [fast, predicted(base, step: 3)]).chosen?.numbers, .plain)
        XCTAssertEqual(BudgetPlan(budgetBytes: 1 << 30, processBytes: 0, outputBytes: 0, candidates: [predicted(base.tiled(), step: 3), fast]).chosen, fast)
    }

    /// A step's copies: those the compute thread makes hold it up in full; those a transfer
    /// queue makes ahead overlap the computation, costing only what they take beyond it; a
    /// streamed candidate's accelerator need adds the window it copies ahead to its rehearsed peak.
    func testCopiesAheadOverlapTheComputation() throws {
        let times = OperationTimes(["linear(x)": 0.010])
        func step(waited: Int, ahead: Int) -> Double? {
            var figures = MemoryRehearsal.Figures()
            figures.sectionEntries = ["unet_step": 2]
            figures.operations = ["unet_step": ["linear(x)": 4]]   // 20 ms of computing a step
            figures.transfers = ["unet_step": ["accel:0": 2 * (waited + ahead)]]
            figures.transfersAhead = ["unet_step": ["accel:0": 2 * ahead]]
            return RunPrediction(rehearsal: figures, baseResidentBytes: 0, outputBytes: 0, times: times, bandwidths: ["accel:0": 1e9]).stepSeconds
        }
        XCTAssertEqual(try XCTUnwrap(step(waited: 30_000_000, ahead: 0)), 0.050, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(step(waited: 0, ahead: 15_000_000)), 0.020, accuracy: 1e-9, "hidden behind the computation")
        XCTAssertEqual(try XCTUnwrap(step(waited: 10_000_000, ahead: 30_000_000)), 0.040, accuracy: 1e-9, "the copy engine's 40 ms")

        let prediction = RunPrediction(baseResidentBytes: 0, rehearsedPeakBytes: 0, mappedPeakBytes: 0, outputBytes: 0,
                                       devicePeakBytes: ["accel:0": 5_000_000], stepSeconds: 0.1)
        var copied = BudgetCandidate(technique: .groupLeaf, weightBytesAtOnce: 1, largestUnit: "unet.x", largestUnitBytes: 100_000)
        copied.prediction = prediction
        let streamed = copied.streaming(prefetchBytes: 0)
        XCTAssertEqual(streamed.commandLine, "--offload group-leaf --stream")
        XCTAssertEqual(copied.streaming(prefetchBytes: 1500).commandLine, "--offload group-leaf --stream --prefetch-bytes 2KiB")
        var withPrediction = streamed
        withPrediction.prediction = prediction
        let plan = BudgetPlan(budgetBytes: 1 << 40, processBytes: 0, outputBytes: 0, candidates: [], deviceBudgets: ["accel:0": 5_050_000])
        XCTAssertTrue(plan.fitsDevices(copied))
        XCTAssertFalse(plan.fitsDevices(withPrediction), "5 MB and its largest group, 0.1 MB, do not fit 5.05 MB")
        XCTAssertEqual(plan.deviceNeededBytes(withPrediction, on: "accel:0"), 5_100_000)
        var deeper = copied.streaming(prefetchBytes: 300 * 1024)
        deeper.prediction = prediction
        XCTAssertEqual(plan.deviceNeededBytes(deeper, on: "accel:0"), 5_000_000 + 300 * 1024, "the bytes it copies ahead")
    }

    /// A rehearsed candidate needs its predicted peak and an eighth more, at least 32 MiB more.
    func testHeadroomOverThePrediction() throws {
        func need(_ peak: Int) -> Int {
            var candidate = BudgetCandidate(technique: .resident, weightBytesAtOnce: 1, largestUnit: "unet", largestUnitBytes: 1)
            candidate.prediction = RunPrediction(baseResidentBytes: peak, rehearsedPeakBytes: 0, mappedPeakBytes: 0, outputBytes: 0,
                                                 devicePeakBytes: [:], stepSeconds: nil)
            return BudgetPlan(budgetBytes: .max, processBytes: 0, outputBytes: 0, candidates: [candidate]).neededBytes(candidate)
        }
        XCTAssertEqual(need(100 << 20), (100 << 20) + (32 << 20))
        XCTAssertEqual(need(1 << 30), (1 << 30) + (1 << 27))
    }

    /// The planner's groups are group offloading's: same ids, same bytes, in order, at both
    /// levels, for every denoiser family (and the pipeline's resident figure is its largest
    /// component's weights).
    func testCandidatesAreSizedFromTheGroupsOffloadingMakes() throws {
        for folder in ["tiny-sd", "tiny-sdxl", "tiny-flux-dev"] {
            for dtype in [DType.f32, .bf16] {
                let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/" + folder, dtype: dtype, castWeightsOnLoad: false)
                let candidates = try pipeline.budgetCandidates()
                XCTAssertEqual(candidates.map(\.technique), [.resident, .groupBlock(blocksPerGroup: 1), .groupLeaf])
                let sizes = pipeline.namedComponents.map { component in
                    component.module.namedParameters().reduce(0) { total, slot in
                        guard let w = slot.parameter.value else { return total }
                        return total + (w.dtype.isComputeType ? w.count * dtype.itemSize : w.byteCount)
                    }
                }
                XCTAssertEqual(candidates[0].weightBytesAtOnce, sizes.max(), "\(folder) \(dtype)")
                for (index, type) in [GroupOffloadType.blockLevel(blocksPerGroup: 1), .leafLevel].enumerated() {
                    var largest = 0
                    for (_, module) in pipeline.namedComponents {
                        let layout = module.groupOffloadLayout(type).map(\.id)
                        var options = GroupOffloadOptions(type: type)
                        options.computeDType = dtype
                        let state = try module.applyGroupOffloading(device: .accel(5), options: options)
                        XCTAssertEqual(state.groups.map(\.id), layout, "\(folder) \(type)")
                        largest = max(largest, state.groups.map(\.byteCount).max() ?? 0)
                        try module.removeAllHooks()
                    }
                    XCTAssertEqual(candidates[index + 1].largestUnitBytes, largest, "\(folder) \(dtype) \(type)")
                    XCTAssertGreaterThanOrEqual(candidates[index + 1].weightBytesAtOnce, largest)
                }
            }
        }
    }
}

/// Degrade and retry: a VAE decode that runs out of an accelerator's capacity is run again
/// tiled, and gives the image of a call that tiled from the start.
final class DegradeAndRetryTests: XCTestCase {
    func testADecodeOutOfMemoryIsRetriedTiled() throws {
        var options = GenerationOptions.tinyOneStep()
        options.seed = 5
        func call(capacity: Int?, tiled: Bool, degrades: Bool) throws -> (images: [Float], peak: Int, retried: [String]) {
            try tinySDCall(options, on: Device.accel(3, capacity: capacity), degrades: degrades) { pipeline in
                if tiled { try pipeline.enableVAETiling() }
            } check: { pipeline in
                XCTAssertEqual(try pipeline.autoencoder().tiling != nil, tiled, "tiling as it was after the call")
            }
        }
        let whole = try call(capacity: nil, tiled: false, degrades: false)
        let tiled = try call(capacity: nil, tiled: true, degrades: false)
        XCTAssertLessThan(tiled.peak, whole.peak, "the tiled decode needs less")
        XCTAssertNotEqual(tiled.images, whole.images, "tiling changes the numbers (Diffusers' blend), so the test can tell them apart")
        // A capacity between the two: the whole decode cannot fit, the tiled one can.
        let retried = try assertRetriedOnce(at: (whole.peak + tiled.peak) / 2, giving: tiled.images) {
            try call(capacity: $0, tiled: false, degrades: $1)
        }
        XCTAssertTrue(retried.contains("the VAE decode ran out of memory on accel:3"), retried)
    }

    /// A batch's decode that runs out of memory is run again one image at a time: the whole
    /// batch's images, bit for bit (a call that sliced from the start).
    func testABatchDecodeOutOfMemoryIsRetriedOneImageAtATime() throws {
        var options = GenerationOptions.tinyOneStep()
        options.seed = 6
        options.imagesPerPrompt = 3
        // Larger images without guidance: the decode, not the steps, peaks.
        (options.width, options.height, options.guidanceScale) = (128, 128, 1)
        func call(capacity: Int?, sliced: Bool, degrades: Bool) throws -> (images: [Float], peak: Int, retried: [String]) {
            try tinySDCall(options, on: Device.accel(6, capacity: capacity), degrades: degrades) { pipeline in
                if sliced { try pipeline.enableVAESlicing() }
            } check: { pipeline in
                XCTAssertEqual(try pipeline.autoencoder().useSlicing, sliced, "slicing as it was after the call")
                XCTAssertNil(try pipeline.autoencoder().tiling)
            }
        }
        let whole = try call(capacity: nil, sliced: false, degrades: false)
        let sliced = try call(capacity: nil, sliced: true, degrades: false)
        XCTAssertLessThan(sliced.peak, whole.peak, "one image at a time needs less")
        XCTAssertEqual(sliced.images, whole.images)
        let retried = try assertRetriedOnce(at: (whole.peak + sliced.peak) / 2, giving: sliced.images) {
            try call(capacity: $0, sliced: false, degrades: $1)
        }
        XCTAssertTrue(retried.hasSuffix("and was run again with --vae-slicing"), retried)
    }

    /// The tiny SD pipeline on `device`, set up by `configure`, called with `options`
    /// (degrading when `degrades`): its images, the device's peak and what it said of retries;
    /// `check` looks at the pipeline after the call.
    func tinySDCall(_ options: GenerationOptions, on device: Device, degrades: Bool, configure: (any TextToImagePipeline) throws -> Void,
                    check: (any TextToImagePipeline) throws -> Void) throws -> (images: [Float], peak: Int, retried: [String]) {
        let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd")
        try pipeline.to(device)
        try configure(pipeline)
        pipeline.degradesOnOutOfMemory = degrades
        let result = try pipeline.generate(options, progress: nil)
        try check(pipeline)
        return (try result.images.floats(), device.allocator.peakBytes, pipeline.retriedPhases)
    }

    /// At `capacity` the call runs out of memory; degrading, it retries one phase within the
    /// capacity and gives `expected`, bit for bit: the call planned that way from the start.
    /// Returns what it said of the retry.
    func assertRetriedOnce(at capacity: Int, giving expected: [Float],
                           _ call: (_ capacity: Int, _ degrades: Bool) throws -> (images: [Float], peak: Int, retried: [String]),
                           file: StaticString = #filePath, line: UInt = #line) throws -> String {
        XCTAssertThrowsError(try call(capacity, false), file: file, line: line) { XCTAssertTrue($0 is OutOfMemoryError, "\($0)", file: file, line: line) }
        let retried = try call(capacity, true)
        XCTAssertEqual(retried.images, expected, "the retried call is the one planned that way, bit for bit", file: file, line: line)
        XCTAssertEqual(retried.retried.count, 1, "\(retried.retried)", file: file, line: line)
        XCTAssertLessThanOrEqual(retried.peak, capacity, file: file, line: line)
        return retried.retried.first ?? ""
    }
}

extension DegradeAndRetryTests {
    /// A denoising step that runs out of an accelerator's capacity with the denoiser grouped by
    /// blocks is run again grouped per leaf module, and the call gives the image of a call
    /// planned per leaf from the start (group offloading is lossless: the plain image too).
    func testAStepOutOfMemoryIsRetriedOnePlanDown() throws {
        var options = GenerationOptions.tinyOneStep()
        options.seed = 9
        func call(_ type: GroupOffloadType, capacity: Int?, degrades: Bool) throws -> (images: [Float], peak: Int, retried: [String]) {
            let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd")
            let device = Device.accel(4, capacity: capacity)
            try pipeline.enableVAETiling()   // the decode stays below the steps' peak
            try pipeline.enableGroupOffload(device: device, options: GroupOffloadOptions(type: type))
            pipeline.degradesOnOutOfMemory = degrades
            var movedTo: [BudgetCandidate.Technique] = []
            pipeline.onPlanDown = { movedTo.append($0) }
            let result = try pipeline.generate(options, progress: nil)
            XCTAssertEqual(movedTo, pipeline.retriedPhases.isEmpty ? [] : [.groupLeaf])
            return (try result.images.floats(), device.allocator.peakBytes, pipeline.retriedPhases)
        }
        let block = try call(.blockLevel(blocksPerGroup: 1), capacity: nil, degrades: false)
        let leaf = try call(.leafLevel, capacity: nil, degrades: false)
        XCTAssertLessThan(leaf.peak, block.peak, "per leaf holds fewer weights at once")
        XCTAssertEqual(leaf.images, block.images)
        let retried = try assertRetriedOnce(at: (block.peak + leaf.peak) / 2, giving: leaf.images) {
            try call(.blockLevel(blocksPerGroup: 1), capacity: $0, degrades: $1)
        }
        XCTAssertTrue(retried.hasPrefix("a denoising step ran out of memory on accel:4"), retried)
    }
}

extension DegradeAndRetryTests {
    /// On the host, a resident denoiser whose step runs past the allocator's limit is
    /// group-offloaded one block a group and the step runs again (here the plan down lifts the
    /// limit, as a budget gives the allocator the weights' room): the plain image, bit for bit.
    func testAResidentStepPastTheHostLimitIsRetriedGroupOffloaded() throws {
        var options = GenerationOptions.tinyOneStep()
        options.seed = 13
        let host = Device.cpu.allocator
        let reference = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd")
        let before = host.bytesInUse
        let (plain, peak) = try host.measuringPeak { try reference.generate(options, progress: nil).images.floats() }
        let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd")
        pipeline.degradesOnOutOfMemory = true
        var moved: [BudgetCandidate.Technique] = []
        pipeline.onPlanDown = { moved.append($0); host.limitCapacity(to: nil) }
        host.limitCapacity(to: host.bytesInUse + (peak - before) / 2)
        defer { host.limitCapacity(to: nil) }
        let images = try pipeline.generate(options, progress: nil).images.floats()
        XCTAssertEqual(moved, [.groupBlock(blocksPerGroup: 1)])
        XCTAssertEqual(images, plain)
        XCTAssertTrue(pipeline.retriedPhases.first?.contains("a denoising step ran out of memory on cpu") == true, "\(pipeline.retriedPhases)")
        XCTAssertTrue(pipeline.denoiser.hasOffloadHooks, "the denoiser stays one plan down")
    }
}
