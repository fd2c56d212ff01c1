import NN
import Offload
import Tensor

extension DiffusionPipeline {
    /// The host plans a memory budget weighs for this pipeline, fastest first: every phase's
    /// model resident, group offloading one block a group, group offloading per leaf module —
    /// each sized from the components' module trees and weights as loaded (mapped), in the
    /// pipeline's dtype; nothing is hooked or read.
    public func budgetCandidates() throws -> [BudgetCandidate] {
        let parts = namedComponents.map { (name: $0.name, model: $0.module) }
        return [try .resident(parts, computeDType: dtype, onePhaseAtATime: releasesWeightPagesBetweenPhases),
                try .grouped(parts, .blockLevel(blocksPerGroup: 1), computeDType: dtype),
                try .grouped(parts, .leafLevel, computeDType: dtype)]
    }
}
