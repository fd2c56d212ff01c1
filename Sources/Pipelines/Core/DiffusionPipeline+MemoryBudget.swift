import NN
import Offload
import Tensor

extension DiffusionPipeline {
    /// The host plans a memory budget weighs for this pipeline, fastest first: every phase's
    /// model resident, group offloading one block a group, group offloading per leaf module.
    /// Towards an accelerator (`onAccelerator`) model and sequential offload are weighed too.
    public func budgetCandidates(onAccelerator: Bool = false) throws -> [BudgetCandidate] {
        let techniques: [BudgetCandidate.Technique] = onAccelerator
            ? [.resident, .modelOffload, .groupBlock(blocksPerGroup: 1), .groupLeaf, .sequentialOffload]
            : [.resident, .groupBlock(blocksPerGroup: 1), .groupLeaf]
        return try techniques.map(budgetCandidate)
    }

    /// `technique` on the host, sized from the components' module trees and weights as loaded
    /// (mapped), in the pipeline's dtype; nothing is hooked or read.
    public func budgetCandidate(_ technique: BudgetCandidate.Technique) throws -> BudgetCandidate {
        let parts = namedComponents.map { (name: $0.name, model: $0.module) }
        switch technique {
        case .resident: return try .resident(parts, computeDType: dtype, onePhaseAtATime: releasesWeightPagesBetweenPhases)
        case .groupBlock(let n): return try .grouped(parts, .blockLevel(blocksPerGroup: n), computeDType: dtype)
        case .groupLeaf: return try .grouped(parts, .leafLevel, computeDType: dtype)
        // What the accelerator holds at once: a phase's model; a leaf module's weights.
        case .modelOffload: return try BudgetCandidate.resident(parts, computeDType: dtype, onePhaseAtATime: true).renamed(technique)
        case .sequentialOffload: return try BudgetCandidate.grouped(parts, .leafLevel, computeDType: dtype).renamed(technique)
        }
    }
}
