import ArgumentParser
import Diffusers
import Foundation

/// `diffuse plan` (the options of `generate`): the run rehearsed — every allocation it would
/// make, nothing computed, no weight read — and its peaks and step time predicted. With
/// `--memory-budget` every candidate plan is rehearsed and the chosen one and those rejected
/// are printed; without, the run as asked is weighed against the memory available.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Predict a run's peak memory and step time, and with --memory-budget choose its plan, without loading weights.")

    @OptionGroup var request: Generate

    @Flag(help: "Print the plan as one JSON object.")
    var json = false

    func validate() throws {
        if request.deviceMap != nil { throw ValidationError("diffuse plan does not rehearse --device-map placements; plan the run with --offload or --memory-budget") }
        if request.capture { throw ValidationError("diffuse plan does not rehearse --capture (its arena is planned on the run's second step); leave it out") }
    }

    func run() throws {
        let seed = try request.resolvedSeed()
        let devices = try request.makeDevices()
        let target = try devices.device(named: request.device)
        let plan: BudgetPlan
        if let memoryBudget = request.memoryBudget {
            plan = try request.rehearsedPlan(budget: try HostMemoryBudget.parse(memoryBudget), devices: devices, target: target, seed: seed)
        } else {
            plan = try asked(devices: devices, target: target, seed: seed)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(RunReport.Plan(plan, retried: [])), as: UTF8.self))
            return
        }
        print(text(plan))
    }

    /// The run as its options ask for it, against the memory this process may grow to.
    private func asked(devices: DeviceSet, target: Device, seed: UInt64) throws -> BudgetPlan {
        let process = ProcessMemory.residentBytes ?? 0
        let budget = process + (ProcessMemory.availableBytes() ?? 0)
        let technique = BudgetCandidate.Technique(offloadOption: request.offload, blocksPerGroup: request.blocksPerGroup)
        let (sized, outputBytes) = try request.sized(target: target) { pipeline in (try technique.map(pipeline.budgetCandidate), request.pictureBytes(pipeline)) }
        let times = OperationTimes.load(from: Generate.operationTimesFile)
        var candidate = sized ?? BudgetCandidate(technique: .resident, weightBytesAtOnce: 0, largestUnit: "-", largestUnitBytes: 0)
        let setup = request.requestedSetup
        candidate.decode = setup.decode
        candidate.imagesPerChunk = request.imagesPerChunk
        candidate.streamPrefetchBytes = setup.stream ? setup.prefetchBytes : nil
        candidate.prediction = try request.rehearse(setup, devices: devices, target: target, seed: seed, times: times)
        if times.measuredCount > 0 { try? times.save(to: Generate.operationTimesFile) }
        return BudgetPlan(budgetBytes: budget, processBytes: process, outputBytes: outputBytes, candidates: [candidate])
    }

    private func text(_ plan: BudgetPlan) -> String {
        var lines: [String] = []
        let head = request.memoryBudget.map { "within --memory-budget \($0) (\(formatBytes(plan.budgetBytes)))" }
            ?? "within the \(formatBytes(plan.budgetBytes)) this process may grow to (the memory available)"
        if let chosen = plan.chosen {
            lines.append("chosen \(head): \(chosen.commandLine)")
        } else {
            lines.append("nothing fits \(head); the smallest plan needs \(formatBytes(plan.minimumBudgetBytes)) (--memory-budget \(HostMemoryBudget.suggestion(plan.minimumBudgetBytes)))")
        }
        for candidate in plan.candidates {
            let mark = candidate == plan.chosen ? "*" : plan.fits(candidate) ? " " : "x"
            let step = candidate.prediction?.stepSeconds.map { String(format: "%.2f s a step", $0) } ?? "step time not predicted"
            let devices = (candidate.prediction?.devicePeakBytes ?? [:]).filter { $0.key != "cpu" }.sorted { $0.key < $1.key }
                .map { ", \($0.key) \(formatBytes($0.value))" }.joined()
            lines.append("\(mark) \(candidate.commandLine): peak RSS \(formatBytes(plan.neededBytes(candidate)))\(devices), \(step)")
        }
        return lines.joined(separator: "\n")
    }
}
