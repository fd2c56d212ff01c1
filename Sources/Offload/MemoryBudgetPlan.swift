import Foundation
import NN
import Tensor

/// A host-memory budget (`--memory-budget`): a size as `MemorySize` reads it, more than zero.
public enum HostMemoryBudget {
    /// Parses `text` ("6GB", "512MiB"), or throws one sentence naming it.
    public static func parse(_ text: String) throws -> Int {
        if let number = Double(text.trimmingCharacters(in: .whitespaces)) {
            throw OffloadError.invalidOption(number <= 0 ? "--memory-budget must be more than 0 bytes, not '\(text)'"
                                             : "--memory-budget needs a unit, e.g. \(text)GB or \(text)MiB, not '\(text)'")
        }
        guard let bytes = try? MemorySize.parse(text) else {
            throw OffloadError.invalidOption("--memory-budget takes a size such as 6GB or 512MiB (a number of at most 9.2e18 bytes and a unit), not '\(text)'")
        }
        guard bytes > 0 else { throw OffloadError.invalidOption("--memory-budget must be more than 0 bytes, not '\(text)'") }
        return bytes
    }

    /// `bytes` rounded to a size `parse` reads back — tenths of a GiB, or whole MiB below one —
    /// up (a budget that holds at least this much) or down (one within what is there).
    public static func suggestion(_ bytes: Int, roundingDown: Bool = false) -> String {
        let rule: FloatingPointRoundingRule = roundingDown ? .down : .up
        let gib = Double(bytes) / 1_073_741_824
        if gib >= 1 { return String(format: "%.1fGiB", (gib * 10).rounded(rule) / 10) }
        return "\(Int((Double(bytes) / 1_048_576).rounded(rule)))MiB"
    }
}

/// One way to run a pipeline on the host that a memory plan weighs: how many weight bytes it
/// holds at once, and the one unit it cannot split further.
public struct BudgetCandidate: Sendable, Equatable {
    public enum Technique: Sendable, Equatable {
        /// Every weight of the running phase's model in memory (each phase holds its own model).
        case resident
        /// Group offloading on the host at block level (`blocksPerGroup` blocks a group), mapped
        /// weights read in place and the next group read ahead.
        case groupBlock(blocksPerGroup: Int)
        /// Group offloading at leaf level: one module's weights at a time, and the next.
        case groupLeaf
        /// Towards an accelerator: each phase's model moved there for its phase (model CPU offload).
        case modelOffload
        /// Towards an accelerator: each leaf module's weights moved there for its forward.
        case sequentialOffload

        /// The technique `--offload` and `--blocks-per-group` name (nil: one a plan does not weigh).
        public init?(offloadOption: String, blocksPerGroup: Int?) {
            switch offloadOption {
            case "none": self = .resident
            case "group-block": self = .groupBlock(blocksPerGroup: blocksPerGroup ?? 1)
            case "group-leaf": self = .groupLeaf
            case "model": self = .modelOffload
            case "sequential": self = .sequentialOffload
            default: return nil
            }
        }
        /// Its `--offload` value.
        public var offloadOption: String {
            switch self {
            case .resident: return "none"
            case .groupBlock: return "group-block"
            case .groupLeaf: return "group-leaf"
            case .modelOffload: return "model"
            case .sequentialOffload: return "sequential"
            }
        }
        /// Its `--blocks-per-group` value, at block level.
        public var blocksPerGroup: Int? {
            if case .groupBlock(let n) = self { return n }
            return nil
        }
    }
    public let technique: Technique
    /// Weight bytes in memory at once, at most, in the compute dtype: the largest phase's
    /// model (resident), or the always-resident group plus the running and the prefetched one.
    public let weightBytesAtOnce: Int
    /// The largest group this technique moves (or the largest model, resident) and its bytes.
    public let largestUnit: String
    public let largestUnitBytes: Int
    /// Whether the VAE decodes in tiles (a plan's choice for images whose decode would not fit).
    public var vaeTiling = false
    /// Images a chunk of the batch runs at once (nil: the whole batch), each image with the
    /// noise it gets in the whole batch: a plan's choice for a batch whose activations do not fit.
    public var imagesPerChunk: Int?
    /// The dtype the plan stores the denoiser's Linear/Conv weights in (layerwise casting), nil
    /// for none: lossy, weighed only where no lossless plan fits.
    public var lossyStorage: DType?
    /// The run's peaks and step time as its rehearsal predicts them (nil: not rehearsed; the
    /// weights, the process and the images are then all a plan weighs).
    public var prediction: RunPrediction?
    /// Why its rehearsal could not complete (an accelerator's capacity ran out): it never fits.
    public var rejection: String?

    /// This candidate's sizes under another technique that holds as much at once.
    public func renamed(_ technique: Technique) -> BudgetCandidate {
        BudgetCandidate(technique: technique, weightBytesAtOnce: weightBytesAtOnce, largestUnit: largestUnit, largestUnitBytes: largestUnitBytes)
    }

    public init(technique: Technique, weightBytesAtOnce: Int, largestUnit: String, largestUnitBytes: Int) {
        self.technique = technique
        self.weightBytesAtOnce = weightBytesAtOnce
        self.largestUnit = largestUnit
        self.largestUnitBytes = largestUnitBytes
    }

    /// The options that select this candidate's techniques.
    public var commandLine: String {
        "--offload \(technique.offloadOption)" + (technique.blocksPerGroup.map { " --blocks-per-group \($0)" } ?? "")
            + (vaeTiling ? " --vae-tiling" : "") + (imagesPerChunk.map { " --images-per-chunk \($0)" } ?? "")
            + (lossyStorage.map { " --storage-dtype \($0)" } ?? "")
    }

    /// This candidate with the VAE tiled (and no prediction yet).
    public func tiled() -> BudgetCandidate {
        var copy = self
        copy.vaeTiling = true
        copy.prediction = nil
        return copy
    }

    /// This candidate run `images` at a time (and no prediction yet).
    public func chunked(_ images: Int) -> BudgetCandidate {
        var copy = self
        copy.imagesPerChunk = images
        copy.prediction = nil
        return copy
    }

    /// The storage dtype of lossy plans: f8e4m3, Diffusers' `enable_layerwise_casting` default.
    public static let lossyStorageDType = DType.f8e4m3fn

    /// This candidate, sized with the denoiser's weights in `storage`, marked lossy.
    public func storing(_ storage: DType) -> BudgetCandidate {
        var copy = self
        copy.lossyStorage = storage
        return copy
    }

    /// The chunk sizes a plan weighs for a batch of `batch`, largest first: half the batch, a
    /// quarter, … down to one image (rounded up, each size once).
    public static func chunkSizes(batch: Int) -> [Int] {
        var sizes: [Int] = [], size = batch
        while size > 1 {
            size = (size + 1) / 2
            sizes.append(size)
        }
        return sizes
    }

    /// Group offloading of every component at `type` (Diffusers' layout), each weight in the
    /// dtype it arrives in for `computeDType`: per component the always-resident groups plus
    /// the two largest others (the running group and the one read ahead); the largest component.
    public static func grouped(_ components: [(name: String, model: Module)], _ type: GroupOffloadType,
                               computeDType: DType) throws -> BudgetCandidate {
        var atOnce = 0, largest = ("", 0)
        for (name, model) in components {
            var always = 0, moving: [Int] = []
            for unit in model.groupOffloadLayout(type) {
                let bytes = try unit.slots.reduce(0) { $0 + ParameterGroup.arrivingByteCount(try $1.parameter.tensor($1.path), computeDType) }
                if case .whileForward = unit.runs { always += bytes } else { moving.append(bytes) }
                if bytes > largest.1 { largest = ("\(name).\(unit.id)", bytes) }
            }
            atOnce = max(atOnce, always + moving.sorted(by: >).prefix(2).reduce(0, +))
        }
        let technique: Technique
        switch type {
        case .blockLevel(let n): technique = .groupBlock(blocksPerGroup: n)
        case .leafLevel: technique = .groupLeaf
        }
        return BudgetCandidate(technique: technique, weightBytesAtOnce: atOnce, largestUnit: largest.0, largestUnitBytes: largest.1)
    }

    /// Every weight of a model in memory: the largest component (`onePhaseAtATime`, when
    /// each phase lets the previous one's weights go) or all of them together.
    public static func resident(_ components: [(name: String, model: Module)], computeDType: DType,
                                onePhaseAtATime: Bool) throws -> BudgetCandidate {
        var total = 0, largest = ("", 0)
        for (name, model) in components {
            let bytes = try model.namedParameters().reduce(0) { $0 + ParameterGroup.arrivingByteCount(try $1.parameter.tensor($1.path), computeDType) }
            total += bytes
            if bytes > largest.1 { largest = (name, bytes) }
        }
        return BudgetCandidate(technique: .resident, weightBytesAtOnce: onePhaseAtATime ? largest.1 : total,
                               largestUnit: largest.0, largestUnitBytes: largest.1)
    }

}

/// The plan a host budget gets: the fastest candidate whose predicted peak fits (each
/// candidate rehearsed: `RunPrediction`), or, for candidates not rehearsed, the first whose
/// weights, the process as it stands and the call's outputs fit; and what is left for the
/// computation, which the host allocator then enforces, so that a computation needing more
/// fails with an out-of-memory error instead of the kernel killing the process.
public struct BudgetPlan: Sendable, Equatable {
    public let budgetBytes: Int
    /// The process's resident set when planning (code, libraries, tokenizers, mapped headers).
    public let processBytes: Int
    /// What the call must hold at its end: the decoded batch and its pictures.
    public let outputBytes: Int
    /// Fastest first where not rehearsed (the order they were given in).
    public let candidates: [BudgetCandidate]
    /// Whether lossy candidates (`lossyStorage`) may be chosen (`--allow-lossy`).
    public let lossyAllowed: Bool
    /// Budgets of accelerators by name (`accel:0`, `--max-memory 0=8GB`): a rehearsed
    /// candidate fits only where its peak on each is within (device peaks are rehearsed exactly).
    public let deviceBudgets: [String: Int]

    /// The fastest candidate that fits: least predicted step time, the given order (simplest
    /// first) breaking ties — times within 2 % of each other, closer than a timing can tell —
    /// and ordering candidates without one. The plain run's numbers first: a tiled decode
    /// (Diffusers' blend changes the pixels a little) only where no candidate decoding whole
    /// fits, and a lossy storage dtype only where no lossless candidate does.
    public var chosen: BudgetCandidate? {
        let lossless = candidates.filter { $0.lossyStorage == nil }
        return fastest(lossless.filter { !$0.vaeTiling }) ?? fastest(lossless.filter(\.vaeTiling))
            ?? fastest(candidates.filter { $0.lossyStorage != nil })
    }

    private func fastest(_ candidates: [BudgetCandidate]) -> BudgetCandidate? {
        var best: BudgetCandidate?
        for candidate in candidates where fits(candidate) {
            guard let current = best else { best = candidate; continue }
            let (x, y) = (candidate.prediction?.stepSeconds ?? .infinity, current.prediction?.stepSeconds ?? .infinity)
            if x.isFinite && x < y * 0.98 { best = candidate }
        }
        return best
    }

    public init(budgetBytes: Int, processBytes: Int, outputBytes: Int, candidates: [BudgetCandidate], lossyAllowed: Bool = false,
                deviceBudgets: [String: Int] = [:]) {
        self.budgetBytes = budgetBytes
        self.processBytes = processBytes
        self.outputBytes = outputBytes
        self.candidates = candidates
        self.lossyAllowed = lossyAllowed
        self.deviceBudgets = deviceBudgets
    }

    /// The bytes `candidate` needs: its predicted process peak, or (not rehearsed) its weights
    /// at once, the process and the outputs.
    /// A rehearsed candidate's need includes an eighth more than its prediction, and at least
    /// 32 MiB: the process's memory outside the allocators' accounts that the model misses
    /// (BENCHMARKS.md, "Predicted before it runs": up to 7 % on resident runs; on the demo
    /// pipeline at 256² about 30 MB, a fifth of its peak, whatever the technique), so that the
    /// run stays under the budget, not just its prediction.
    public static let minimumHeadroomBytes = 32 << 20

    public func neededBytes(_ candidate: BudgetCandidate) -> Int {
        guard let prediction = candidate.prediction else { return processBytes + outputBytes + candidate.weightBytesAtOnce }
        let peak = prediction.processPeakResidentBytes
        return peak + max(peak / 8, Self.minimumHeadroomBytes)
    }

    /// Whether `candidate` fits the budget (and, lossy, may be chosen).
    public func fits(_ candidate: BudgetCandidate) -> Bool { allowed(candidate) && neededBytes(candidate) <= budgetBytes }

    /// Whether `candidate` could run at all: its rehearsal completed, it is lossless or lossy
    /// plans are allowed, and its rehearsed accelerator peaks are within their budgets.
    private func allowed(_ candidate: BudgetCandidate) -> Bool {
        candidate.rejection == nil && (candidate.lossyStorage == nil || lossyAllowed) && fitsDevices(candidate)
    }

    /// Whether `candidate`'s rehearsed peak on every budgeted accelerator is within its budget
    /// (a candidate not rehearsed: not known yet, so not refused on it).
    public func fitsDevices(_ candidate: BudgetCandidate) -> Bool {
        guard let peaks = candidate.prediction?.devicePeakBytes else { return true }
        return deviceBudgets.allSatisfy { (peaks[$0.key] ?? 0) <= $0.value }
    }

    /// The smallest budget any candidate that may be chosen fits in.
    public var minimumBudgetBytes: Int {
        candidates.filter(allowed).map(neededBytes).min() ?? processBytes + outputBytes
    }

    /// The smallest budget a lossy candidate, not allowed, would fit in, where that is less than
    /// any lossless one's (nil where none was weighed).
    public var minimumLossyBudgetBytes: Int? {
        guard !lossyAllowed, let lossy = candidates.filter({ $0.rejection == nil && $0.lossyStorage != nil && fitsDevices($0) }).map(neededBytes).min() else { return nil }
        return lossy < minimumBudgetBytes ? lossy : nil
    }

    /// Bytes the host allocator may hold under the chosen plan: the budget less what it does not
    /// hold — the process, mapped weight pages (counted there, not by the allocator), outputs.
    public var allocatorLimitBytes: Int? {
        chosen.map { $0.prediction?.hostAllocatorLimit(within: budgetBytes) ?? budgetBytes - processBytes - $0.weightBytesAtOnce }
    }

    /// The chosen plan, or the sentence that refuses the run before any weight loads.
    public func requireFit() throws -> BudgetCandidate {
        if let chosen { return chosen }
        if !candidates.isEmpty, let reason = candidates.first?.rejection, candidates.allSatisfy({ $0.rejection != nil }) {
            throw OffloadError.invalidOption("no plan can run within these limits: \(reason)")
        }
        // An accelerator budget that even the plan holding least there exceeds.
        for (device, budget) in deviceBudgets.sorted(by: { $0.key < $1.key }) {
            let peaks = candidates.compactMap { candidate in candidate.prediction?.devicePeakBytes[device].map { (candidate, $0) } }
            guard let least = peaks.min(by: { $0.1 < $1.1 }), least.1 > budget else { continue }
            throw OffloadError.invalidOption(
                "no plan fits \(device) within \(formatBytes(budget)): the least any plan holds there is \(formatBytes(least.1)) (with \(least.0.commandLine)); "
                + "give --max-memory \(device.split(separator: ":").last ?? "")=\(HostMemoryBudget.suggestion(least.1)) or more, or a smaller size or batch")
        }
        let smallest = candidates.filter(allowed).min { neededBytes($0) < neededBytes($1) }
        let unit = smallest.map { candidate in
            candidate.prediction == nil
                ? " (with \(candidate.commandLine): \(formatBytes(candidate.weightBytesAtOnce)) of weights at once, its largest group '\(candidate.largestUnit)')"
                : " (with \(candidate.commandLine), whose largest group is '\(candidate.largestUnit)', \(formatBytes(candidate.largestUnitBytes)))"
        } ?? ""
        let what = candidates.contains { $0.prediction != nil }
            ? "the smallest plan's predicted peak\(unit), with the process (\(formatBytes(processBytes))) and its images (\(formatBytes(outputBytes))), is"
            : "the process (\(formatBytes(processBytes))), its images (\(formatBytes(outputBytes))) and the fewest weights any plan holds at once\(unit) need at least"
        throw OffloadError.invalidOption(
            "a memory budget of \(formatBytes(budgetBytes)) cannot hold this run: \(what) "
            + "\(formatBytes(minimumBudgetBytes)); give --memory-budget \(HostMemoryBudget.suggestion(minimumBudgetBytes)) or more, "
            + (minimumLossyBudgetBytes.map { "--allow-lossy (the denoiser's weights stored in \(BudgetCandidate.lossyStorageDType): \(formatBytes($0))), " } ?? "")
            + "or a smaller size or batch")
    }
}
