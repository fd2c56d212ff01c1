import ArgumentParser
import Diffusers
import Foundation

/// `--memory-budget`: the plan chosen for the host budget, applied by `place` as the
/// `--offload` words it stands for.
struct ChosenBudgetPlan {
    let plan: BudgetPlan
    let chosen: BudgetCandidate

    var offload: String { chosen.technique.offloadOption }
    var blocksPerGroup: Int? { chosen.technique.blocksPerGroup }
}

extension Generate {
    /// The options a budget cannot be combined with (it chooses placement itself).
    func validateMemoryBudget() throws {
        guard let memoryBudget else { return }
        do { _ = try HostMemoryBudget.parse(memoryBudget) } catch { throw ValidationError("\(error)") }
        if offload != "none" {
            throw ValidationError("--memory-budget chooses the offloading itself: give --memory-budget or --offload \(offload), not both")
        }
        if deviceMap != nil || maxMemory != nil {
            throw ValidationError("--memory-budget plans host memory; --device-map and --max-memory place weights by hand: give one or the other")
        }
        if device != "cpu" { throw ValidationError("--memory-budget plans a run on the cpu; leave out --device \(device)") }
    }

    /// With `--memory-budget`: the fastest candidate that fits, or the refusal naming the
    /// smallest budget that would — before any weight is read. Prints the plan in a few lines
    /// (not with --quiet).
    func planMemoryBudget(_ pipeline: any TextToImagePipeline) throws -> ChosenBudgetPlan? {
        guard let memoryBudget else { return nil }
        let budget = try HostMemoryBudget.parse(memoryBudget)
        let plan = BudgetPlan(budgetBytes: budget, processBytes: ProcessMemory.residentBytes ?? 0,
                              outputBytes: outputBytes(pipeline), candidates: try pipeline.budgetCandidates())
        let chosen = try plan.requireFit()
        if !quiet {
            let limit = plan.allocatorLimitBytes.map(formatBytes) ?? "-"
            FileHandle.standardError.write(Data("""
                plan: \(chosen.commandLine) within --memory-budget \(formatBytes(budget)): weights at once \(formatBytes(chosen.weightBytesAtOnce)), \
                process \(formatBytes(plan.processBytes)), images \(formatBytes(plan.outputBytes)); \(limit) left for computing (enforced)

                """.utf8))
        }
        return ChosenBudgetPlan(plan: plan, chosen: chosen)
    }

    /// Without `--memory-budget`: the run as asked (resident or group offload on the cpu) is
    /// refused before any weight is read when its weights, the process and its images alone
    /// exceed the memory the machine has available — such a run could only thrash or be
    /// killed. Other placements are left to their own checks.
    func refuseWhatCannotFit(_ pipeline: any TextToImagePipeline) throws {
        guard memoryBudget == nil, device == "cpu", deviceMap == nil, let available = ProcessMemory.availableBytes() else { return }
        guard let technique = BudgetCandidate.Technique(offloadOption: offload, blocksPerGroup: blocksPerGroup) else { return }
        let candidate = try pipeline.budgetCandidate(technique)
        let process = ProcessMemory.residentBytes ?? 0
        let plan = BudgetPlan(budgetBytes: process + available, processBytes: process, outputBytes: outputBytes(pipeline),
                              candidates: [candidate])
        guard plan.chosen == nil else { return }
        throw ValidationError("this run holds \(formatBytes(candidate.weightBytesAtOnce)) of weights at once with \(candidate.commandLine) "
                              + "(\(formatBytes(plan.minimumBudgetBytes)) with the process and its images), more than the "
                              + "\(formatBytes(available)) of memory available: give --memory-budget \(HostMemoryBudget.suggestion(available, roundingDown: true)) "
                              + "to let a plan fit, or a finer --offload")
    }

    /// The decoded batch in f32 and its 8-bit pictures (3 channels, 4 + 1 bytes a value): what
    /// the call holds at its end. Sizes and batch are bounded, so this cannot overflow.
    private func outputBytes(_ pipeline: any TextToImagePipeline) -> Int {
        let side = pipeline.defaultImageSize
        return (width ?? side) * (height ?? side) * batch * 3 * 5
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

extension RunReport {
    /// `--memory-budget`'s plan: the budget, what it weighed, the candidates and the choice.
    struct Plan: Encodable {
        struct Candidate: Encodable {
            let technique: String, weight_bytes_at_once: Int, largest_unit: String, largest_unit_bytes: Int, fits: Bool
        }
        let budget_bytes: Int, process_bytes: Int, output_bytes: Int, minimum_budget_bytes: Int
        let allocator_limit_bytes: Int?
        let chosen: String?
        let candidates: [Candidate]
        /// Phases that ran out of memory under the plan and were run again a plan down.
        let retried: [String]

        init(_ plan: BudgetPlan, retried: [String]) {
            self.retried = retried
            budget_bytes = plan.budgetBytes
            process_bytes = plan.processBytes
            output_bytes = plan.outputBytes
            minimum_budget_bytes = plan.minimumBudgetBytes
            allocator_limit_bytes = plan.allocatorLimitBytes
            chosen = plan.chosen?.commandLine
            candidates = plan.candidates.map {
                Candidate(technique: $0.commandLine, weight_bytes_at_once: $0.weightBytesAtOnce, largest_unit: $0.largestUnit,
                          largest_unit_bytes: $0.largestUnitBytes,
                          fits: plan.fits($0))
            }
        }
    }
}
