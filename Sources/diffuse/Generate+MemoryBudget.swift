import ArgumentParser
import Diffusers
import Foundation

/// The placement and decode choices of a run: what the command line asks for, or what a
/// budget's plan chose.
struct RunSetup: Equatable {
    var offload: String
    var blocksPerGroup: Int?
    /// With group offloading: the groups that follow copied ahead on a transfer queue (`--stream`)
    /// until `prefetchBytes` are on their way (0: one group); on the cpu, `prefetchBytes` bounds
    /// the pages read ahead.
    var stream = false
    var prefetchBytes = 0
    var decode: VAEDecode
    /// `--attention flash` in place of the requested kernel.
    var memoryEfficientAttention: Bool
    /// The batch run this many images at a time (nil: all at once).
    var imagesPerChunk: Int?
    /// `--storage-dtype` of the denoiser's weights (layerwise casting), nil for none.
    var storageDtype: String?

    init(offload: String, blocksPerGroup: Int?, decode: VAEDecode, memoryEfficientAttention: Bool = false, imagesPerChunk: Int?,
         storageDtype: String?) {
        self.offload = offload
        self.blocksPerGroup = blocksPerGroup
        self.decode = decode
        self.memoryEfficientAttention = memoryEfficientAttention
        self.imagesPerChunk = imagesPerChunk
        self.storageDtype = storageDtype
    }

    /// `candidate`'s techniques; a storage dtype the command line fixed stays.
    init(_ candidate: BudgetCandidate, storageDtype: String?) {
        self.init(offload: candidate.technique.offloadOption, blocksPerGroup: candidate.technique.blocksPerGroup, decode: candidate.decode,
                  memoryEfficientAttention: candidate.memoryEfficientAttention, imagesPerChunk: candidate.imagesPerChunk,
                  storageDtype: candidate.lossyStorage.map { "\($0)" } ?? storageDtype)
        stream = candidate.streamPrefetchBytes != nil
        prefetchBytes = candidate.streamPrefetchBytes ?? 0
    }
}

/// `--memory-budget`: the plan chosen for the host budget, applied by `place`.
struct ChosenBudgetPlan {
    let plan: BudgetPlan
    let chosen: BudgetCandidate

    let storageDtype: String?
    var setup: RunSetup { RunSetup(chosen, storageDtype: storageDtype) }
}

extension Generate {
    /// The options a budget cannot be combined with (it chooses placement itself).
    func validateMemoryBudget() throws {
        guard let memoryBudget else { return }
        do { _ = try HostMemoryBudget.parse(memoryBudget) } catch { throw ValidationError("\(error)") }
        if offload != "none" {
            throw ValidationError("--memory-budget chooses the offloading itself: give --memory-budget or --offload \(offload), not both")
        }
        if vaeTiling { throw ValidationError("--memory-budget chooses whether the VAE decodes in tiles: leave out --vae-tiling") }
        if deviceMap != nil {
            throw ValidationError("--memory-budget plans the placement; --device-map places weights by hand: give one or the other")
        }
        _ = try acceleratorBudgets()
        if imagesPerChunk != nil { throw ValidationError("--memory-budget chooses whether the batch runs in chunks: leave out --images-per-chunk") }
        if allowLossy && storageDtype != nil {
            throw ValidationError("--allow-lossy lets the plan store the denoiser's weights in f8e4m3; --storage-dtype \(storageDtype ?? "") fixes their dtype: give one")
        }
        if stream || recordStream || prefetchBytes != nil {
            throw ValidationError("--memory-budget chooses whether group offload copies groups ahead: leave out --stream, --record-stream and --prefetch-bytes")
        }
        if offloadDir != nil || capture {
            throw ValidationError("--memory-budget chooses among plans that read weights in place; leave out --offload-dir and --capture")
        }
    }

    /// With `--memory-budget` on an accelerator: `--max-memory N=SIZE`, the budget of `accel:N`
    /// (the run's device), by device name.
    func acceleratorBudgets() throws -> [String: Int] {
        guard let maxMemory else { return [:] }
        guard device.hasPrefix("accel:"), let index = device.split(separator: ":").last else {
            throw ValidationError("with --memory-budget, --max-memory N=SIZE is the budget of the run's accel:N device: add --device accel:N")
        }
        var budgets: [String: Int] = [:]
        for entry in maxMemory.split(separator: ",") where !entry.isEmpty {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0] == index else {
                throw ValidationError("with --memory-budget and --device \(device), --max-memory takes \(index)=SIZE (the host's budget is --memory-budget), not '\(entry)'")
            }
            guard let bytes = Int(parts[1]) ?? (try? MemorySize.parse(parts[1])), bytes > 0 else {
                throw ValidationError("--max-memory \(index)= takes bytes or a size such as 8GB or 512MiB, more than 0 bytes, not '\(parts[1])'")
            }
            budgets[device] = bytes
        }
        return budgets
    }

    /// With `--memory-budget`: every candidate rehearsed and the fastest whose predicted peak
    /// fits chosen, or the refusal naming the smallest budget that would do — before any weight
    /// is read. Prints the plan in a few lines (not with --quiet).
    func planMemoryBudget(devices: DeviceSet, target: Device, seed: UInt64) throws -> ChosenBudgetPlan? {
        guard let memoryBudget else { return nil }
        let plan = try rehearsedPlan(budget: try HostMemoryBudget.parse(memoryBudget), devices: devices, target: target, seed: seed)
        let chosen = try plan.requireFit()
        if !quiet { FileHandle.standardError.write(Data(planLines(plan, chosen: chosen).utf8)) }
        return ChosenBudgetPlan(plan: plan, chosen: chosen, storageDtype: storageDtype)
    }

    /// Each candidate — resident, group offload by blocks, per leaf (towards an accelerator,
    /// model and sequential offload, and group offload copying one group or two of the largest
    /// ahead where copies take time) — sized from the module trees and rehearsed, its peaks and
    /// step time predicted. Each decodes as asked and, in a batch, one image at a time (the
    /// same numbers, one image's activations). Where none fits: the memory-efficient attention
    /// kernel in place of one that holds whole score matrices, then tiled decodes, tiles ever
    /// smaller (`VAEDecode.ladder`), until one fits. A batch is weighed in chunks too (half, a
    /// quarter, … down to one image at a time) while no candidate fits, only one with other
    /// numbers does (tiles, attention), or no resident one does though its weights would: a
    /// chunk holds less of the batch's activations, and a chunked resident run may beat a
    /// whole-batch offloaded one. Lossless plans come first: only where none fits are the same
    /// plans with the denoiser's weights stored in f8e4m3 weighed — chosen with
    /// `--allow-lossy`, else named in the refusal.
    func rehearsedPlan(budget: Int, devices: DeviceSet, target: Device, seed: UInt64) throws -> BudgetPlan {
        let processBytes = ProcessMemory.residentBytes ?? 0
        let (sizedCandidates, outputBytes, chunkable, decodes) = try sized(target: target) { pipeline in
            (try pipeline.budgetCandidates(onAccelerator: !target.isCPU), pictureBytes(pipeline), image == nil && family.imageLatents == nil
                && (try? pipeline.refuseChunking(try generationOptions(pipeline, seed: seed))) != nil, try decodeLadder(pipeline))
        }
        let deviceBudgets = try acceleratorBudgets()
        func plan(_ candidates: [BudgetCandidate]) -> BudgetPlan {
            BudgetPlan(budgetBytes: budget, processBytes: processBytes, outputBytes: outputBytes, candidates: candidates,
                       lossyAllowed: allowLossy, deviceBudgets: deviceBudgets)
        }
        // What no rehearsal can lower — the process, the images, the fewest weights a plan holds
        // at once — already past the budget: refused as it stands, nothing rehearsed.
        let bound = plan(sizedCandidates)
        if bound.chosen == nil { return bound }
        let times = OperationTimes.load(from: Self.operationTimesFile)
        let scoresWhole = AttentionBackend(name: attention)?.holdsScoreMatrices == true
        // Towards an accelerator whose copies take time: group offloading with the groups that
        // follow copied ahead as well — one group (Diffusers' `use_stream`), and until two of
        // the largest are on their way (the copy engine busy across a forward's end too).
        let copiesTakeTime = !target.isCPU && (target.allocator.copyBytesPerSecond ?? 0) > 0
        func prefetchDepths(_ techniques: [BudgetCandidate]) -> [BudgetCandidate] {
            guard copiesTakeTime else { return techniques }
            return techniques.flatMap { candidate in
                candidate.technique.isGrouped
                    ? [candidate, candidate.streaming(prefetchBytes: 0), candidate.streaming(prefetchBytes: 2 * candidate.largestUnitBytes)] : [candidate]
            }
        }
        var candidates: [BudgetCandidate] = []
        func rehearse(_ some: [BudgetCandidate]) throws {
            candidates += try rehearsed(some, devices: devices, target: target, seed: seed, times: times)
        }
        /// `techniques` rehearsed on the whole batch, then in ever smaller chunks while that may help.
        func weigh(_ techniques: [BudgetCandidate], chunks: Bool) throws {
            let residentCanFit = bound.fits(techniques[0])
            for size in [nil] + (chunks && chunkable ? BudgetCandidate.chunkSizes(batch: batch) : []) {
                if size != nil {
                    let current = plan(candidates)
                    let residentFits = current.candidates.contains { $0.technique == .resident && $0.lossyStorage == techniques[0].lossyStorage && current.fits($0) }
                    // Smaller chunks may let a plan with the plain decode and kernels fit.
                    guard current.chosen == nil || current.chosen?.numbers == .close || (residentCanFit && !residentFits) else { break }
                }
                let chunked = prefetchDepths(techniques).map { candidate in size.map(candidate.chunked) ?? candidate }
                let rungs = decodes(size ?? batch)
                let plain = rungs.filter { !$0.tiling }, tiles = rungs.filter(\.tiling)
                var weighed = candidates.count
                try rehearse(chunked.flatMap { candidate in plain.map(candidate.decoding) })
                // Where none fits, a rung down at a time, where the phase it lowers is the one the
                // rung above peaks in (the denoiser's attention, the decode).
                let flash = scoresWhole ? chunked.map { $0.decoding(plain.last ?? VAEDecode()).withMemoryEfficientAttention() } : []
                for rung in [flash] + tiles.map({ tile in chunked.map { $0.decoding(tile) } + flash.map { $0.decoding(tile) } }) where !rung.isEmpty {
                    let current = plan(candidates)
                    guard current.chosen == nil else { break }
                    let above = candidates[weighed...].min { current.neededBytes($0) < current.neededBytes($1) }?.prediction?.peakSection
                    guard rung[0].decode.tiling ? above == DiffusionPipeline.decodeSection : above?.hasPrefix(DiffusionPipeline.denoisingSectionPrefix) == true else { continue }
                    weighed = candidates.count
                    try rehearse(rung)
                }
            }
        }
        try weigh(sizedCandidates, chunks: true)
        if plan(candidates).chosen == nil && storageDtype == nil {
            var lossy = requestedSetup
            lossy.storageDtype = "\(BudgetCandidate.lossyStorageDType)"
            let stored = try sized(target: target, setup: lossy) { try $0.budgetCandidates(onAccelerator: !target.isCPU) }.map { $0.storing(BudgetCandidate.lossyStorageDType) }
            // Without --allow-lossy, the whole batch only: enough to name what it would take.
            try weigh(stored, chunks: allowLossy)
        }
        if times.measuredCount > 0 { try? times.save(to: Self.operationTimesFile) }
        // The run starts from the process the last rehearsal left, which may have grown since
        // a candidate's own rehearsal (each loads the pipeline's module trees again).
        let start = ProcessMemory.residentBytes ?? 0
        for index in candidates.indices { candidates[index].prediction = candidates[index].prediction?.startingFrom(start) }
        return plan(candidates)
    }

    /// The VAE decodes a plan weighs for a batch (or chunk) of `images`, from the one asked for
    /// down (`VAEDecode.ladder`).
    func decodeLadder(_ pipeline: any TextToImagePipeline) throws -> (Int) -> [VAEDecode] {
        let vae = try pipeline.autoencoder()
        let side = pipeline.defaultImageSize, requested = requestedSetup.decode
        let imageSide = max(width ?? side, height ?? side)
        let (sampleSize, downscale) = (vae.config.sampleSize, vae.config.downscaleFactor)
        return { images in VAEDecode.ladder(from: requested, batch: images, imageSide: imageSide, sampleSize: sampleSize, downscale: downscale) }
    }

    /// `candidates` each rehearsed, or rejected where a device's capacity ran out in the rehearsal.
    private func rehearsed(_ candidates: [BudgetCandidate], devices: DeviceSet, target: Device, seed: UInt64,
                           times: OperationTimes) throws -> [BudgetCandidate] {
        try candidates.map { candidate in
            var candidate = candidate
            do {
                candidate.prediction = try rehearse(RunSetup(candidate, storageDtype: storageDtype), devices: devices, target: target, seed: seed, times: times)
            } catch let error as OutOfMemoryError {
                candidate.rejection = "with \(candidate.commandLine) \(error)"
            }
            return candidate
        }
    }

    /// `body` of the pipeline as the options load it, loaded inside a throwaway rehearsal: its
    /// module trees and sizes are real, no weight is read or converted, and it is gone before
    /// anything else runs.
    func sized<T>(target: Device, setup: RunSetup? = nil, _ body: (any TextToImagePipeline) throws -> T) throws -> T {
        try MemoryRehearsal(watching: []).run { try body(try loadPipeline(target: target, setup: setup ?? requestedSetup).pipeline) }
    }

    /// The run with `setup` rehearsed from its load on (`MemoryRehearsal`: every allocation the
    /// real run makes, nothing computed, no weight read), and what it will take predicted.
    /// With `times` the denoising steps' operations are timed where the table lacks them.
    func rehearse(_ setup: RunSetup, devices: DeviceSet, target: Device, seed: UInt64, times: OperationTimes?) throws -> RunPrediction {
        let allocators = devices.allDevices.map(\.allocator)
        for allocator in allocators { allocator.emptyCache() }
        let base = ProcessMemory.residentBytes ?? 0
        let rehearsal = MemoryRehearsal(watching: allocators, times: times, timedSectionPrefix: DiffusionPipeline.denoisingSectionPrefix)
        let outputBytes = try rehearsal.run { () throws -> Int in
            let (pipeline, _) = try loadPipeline(target: target, setup: setup)
            _ = try place(pipeline, on: target, setup: setup, rehearsing: true)
            _ = try call(pipeline, try generationOptions(pipeline, seed: seed), imagesPerChunk: setup.imagesPerChunk, progress: nil)
            return pictureBytes(pipeline)
        }
        // The process the run starts from is the one after the rehearsal (its pipeline gone):
        // the libraries' pages and oneDNN's kernels it brought in stay. Its allocations are
        // not the run's: the devices' peak windows start again.
        let start = max(base, ProcessMemory.residentBytes ?? 0)
        for allocator in allocators { allocator.resetPeak() }
        var bandwidths: [String: Double] = [:]
        for device in devices.allDevices { if let bandwidth = device.allocator.copyBytesPerSecond { bandwidths[device.description] = bandwidth } }
        let prediction = RunPrediction(rehearsal: rehearsal.figures, baseResidentBytes: start, outputBytes: outputBytes, times: times, bandwidths: bandwidths)
        guard let images = setup.imagesPerChunk, images < batch else { return prediction }
        return prediction.steppingChunks(Double(batch) / Double(images))
    }

    /// Where this machine's operation times are kept: `$DIFFUSE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/swift-diffusers`, else `~/.cache/swift-diffusers`.
    static var operationTimesFile: String {
        let environment = ProcessInfo.processInfo.environment
        let folder = environment["DIFFUSE_CACHE_DIR"]
            ?? environment["XDG_CACHE_HOME"].map { $0 + "/swift-diffusers" }
            ?? NSHomeDirectory() + "/.cache/swift-diffusers"
        return OperationTimes.cacheFile(in: folder)
    }

    /// The plan in a few lines: the choice, its predicted peak and step, the limit enforced.
    func planLines(_ plan: BudgetPlan, chosen: BudgetCandidate) -> String {
        let step = chosen.prediction?.stepSeconds.map { String(format: ", %.2f s a step", $0) } ?? ""
        let limit = plan.allocatorLimitBytes.map(formatBytes) ?? "-"
        return "plan: \(chosen.commandLine) within --memory-budget \(formatBytes(plan.budgetBytes)): predicted peak \(formatBytes(plan.neededBytes(chosen)))\(step); "
            + "\(limit) left for computing (enforced)\n"
    }

    /// Without `--memory-budget`: a cpu run that cannot fit the memory the machine has available
    /// is refused before any weight is read — first on its weights alone, then on its
    /// rehearsed peak (a batch or size whose activations cannot fit). Other placements, and
    /// runs that write group files or capture graphs, are left to their own checks.
    func refuseWhatCannotFit(devices: DeviceSet, target: Device, seed: UInt64) throws {
        guard memoryBudget == nil, device == "cpu", deviceMap == nil, let available = ProcessMemory.availableBytes() else { return }
        guard let technique = BudgetCandidate.Technique(offloadOption: offload, blocksPerGroup: blocksPerGroup) else { return }
        let process = ProcessMemory.residentBytes ?? 0
        let (candidate, outputBytes) = try sized(target: target) { (try $0.budgetCandidate(technique), pictureBytes($0)) }
        let weightsOnly = BudgetPlan(budgetBytes: process + available, processBytes: process, outputBytes: outputBytes, candidates: [candidate])
        guard weightsOnly.chosen != nil else {
            throw ValidationError("this run holds \(formatBytes(candidate.weightBytesAtOnce)) of weights at once with \(candidate.commandLine) "
                                  + "(\(formatBytes(weightsOnly.minimumBudgetBytes)) with the process and its images), more than the "
                                  + "\(formatBytes(available)) of memory available: give --memory-budget \(HostMemoryBudget.suggestion(available, roundingDown: true)) "
                                  + "to let a plan fit, or a finer --offload")
        }
        guard !capture else { return }
        let prediction = try rehearse(requestedSetup, devices: devices, target: target, seed: seed, times: nil)
        let needed = prediction.processPeakResidentBytes
        guard needed > process + available else { return }
        throw ValidationError("this run would need about \(formatBytes(needed)) (its rehearsed peak with \(candidate.commandLine)), more than the "
                              + "\(formatBytes(process + available)) this process has with the memory available: give a smaller size or batch, "
                              + "or --memory-budget \(HostMemoryBudget.suggestion(process + available, roundingDown: true)) to let a plan fit")
    }

    /// The 8-bit pictures and their encoded files the command makes from the images (the f32
    /// images are the call's, rehearsed with it). Sizes and batch are bounded: no overflow.
    func pictureBytes(_ pipeline: any TextToImagePipeline) -> Int {
        let side = pipeline.defaultImageSize
        return (width ?? side) * (height ?? side) * batch * 3 * 2
    }

    /// Runs `body`; under a budget, the host allocator's out-of-memory error becomes the
    /// sentence that says which budget ran out.
    func withBudgetMessage<T>(_ plan: ChosenBudgetPlan?, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as OutOfMemoryError where plan != nil && error.device == "cpu" {
            // The limit when it ran out (a retry a plan down may have raised the plan's).
            let left = (error.capacityBytes ?? plan?.plan.allocatorLimitBytes).map(formatBytes) ?? "-"
            throw ValidationError("the run needed more than the \(left) that --memory-budget \(memoryBudget ?? "") leaves for computing "
                                  + "after its weights (it asked for \(formatBytes(error.requestedBytes)) with \(formatBytes(error.bytesInUse)) in use): "
                                  + "give a larger budget, or a smaller size or batch")
        }
    }
}
