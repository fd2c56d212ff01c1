import Foundation
import NN
import Tensor

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
    /// and ordering candidates without one. The plain run's numbers first (`Numbers`): a tiled
    /// decode or another attention kernel only where no candidate with the plain run's numbers
    /// fits, and a lossy storage dtype only where no lossless candidate does.
    public var chosen: BudgetCandidate? {
        for numbers in BudgetCandidate.Numbers.allCases {
            if let best = fastest(candidates.filter { $0.numbers == numbers }) { return best }
        }
        return nil
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
        deviceBudgets.allSatisfy { (deviceNeededBytes(candidate, on: $0.key) ?? 0) <= $0.value }
    }

    /// What `candidate` needs on `device`: its rehearsed peak there, exact where the compute
    /// thread makes every copy. Where a transfer queue copies groups ahead, its copies
    /// interleave with the computation as the threads run (the rehearsal, computing nothing,
    /// saw one interleaving: the demo's real peaks came out 18 % below it and 3 % above), so
    /// the window it may hold ahead — the prefetch bytes, at least the largest group — is
    /// added. Nil: not rehearsed.
    public func deviceNeededBytes(_ candidate: BudgetCandidate, on device: String) -> Int? {
        guard let peak = candidate.prediction?.devicePeakBytes[device] else { return candidate.prediction == nil ? nil : 0 }
        return peak + (candidate.streamPrefetchBytes.map { max($0, candidate.largestUnitBytes) } ?? 0)
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
            let peaks = candidates.compactMap { candidate in deviceNeededBytes(candidate, on: device).map { (candidate, $0) } }
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
