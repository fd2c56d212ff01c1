import NN
import Offload
import Tensor

extension DiffusionPipeline {
    /// The host plans a memory budget weighs for this pipeline, fastest first: every phase's
    /// model resident, group offloading one block a group, group offloading per leaf module.
    public func budgetCandidates() throws -> [BudgetCandidate] {
        try [.resident, .groupBlock(blocksPerGroup: 1), .groupLeaf].map(budgetCandidate)
    }

    /// `technique` on the host, sized from the components' module trees and weights as loaded
    /// (mapped), in the pipeline's dtype; nothing is hooked or read.
    public func budgetCandidate(_ technique: BudgetCandidate.Technique) throws -> BudgetCandidate {
        let parts = namedComponents.map { (name: $0.name, model: $0.module) }
        switch technique {
        case .resident: return try .resident(parts, computeDType: dtype, onePhaseAtATime: releasesWeightPagesBetweenPhases)
        case .groupBlock(let n): return try .grouped(parts, .blockLevel(blocksPerGroup: n), computeDType: dtype)
        case .groupLeaf: return try .grouped(parts, .leafLevel, computeDType: dtype)
        }
    }
}
