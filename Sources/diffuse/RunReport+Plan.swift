import Diffusers
import Foundation

extension RunReport {
    /// A memory plan as `diffuse plan --json` prints it and `--report` holds it under "plan":
    /// whether a candidate fits, the chosen techniques and their predicted peaks and step time,
    /// every candidate weighed, and the smallest budget that would do.
    struct Plan: Encodable {
        struct Techniques: Encodable {
            let offload: String, blocks_per_group: Int?
            /// Group offload copying the groups that follow ahead (`--stream`), until `prefetch_bytes` are on their way (0: one group).
            let stream: Bool, prefetch_bytes: Int?
            let vae_slicing: Bool, vae_tiling: Bool, vae_tile_size: Int?
            /// "flash" where the plan put the memory-efficient kernel in place of the requested one, else "requested".
            let attention: String
            let images_per_chunk: Int?, storage_dtype: String?
        }
        struct Predicted: Encodable {
            let process_peak_rss_bytes: Int, devices: [String: Int], step_s: Double?, step_s_by_class: [String: Double], mapped_peak_bytes: Int
            /// The phase the process peaks in (`vae_decode`, `unet_step`, …).
            let peak_section: String?
        }
        struct Candidate: Encodable {
            let techniques: Techniques, command_line: String
            let weight_bytes_at_once: Int, largest_unit: String, largest_unit_bytes: Int
            let predicted: Predicted?, needed_bytes: Int, fits: Bool, rejection: String?
        }
        let fits: Bool
        let chosen: Techniques?
        /// The options that ask for the chosen plan by hand.
        let chosen_command_line: String?
        let predicted: Predicted?
        let candidates: [Candidate]
        let minimum_budget_bytes: Int
        /// With lossy plans weighed and not allowed: the smallest budget one would fit in, where less than any lossless one.
        let minimum_lossy_budget_bytes: Int?
        let budget_bytes: Int, process_bytes: Int, output_bytes: Int
        let allocator_limit_bytes: Int?
        /// Phases that ran out of memory under the plan and were run again a plan down.
        let retried: [String]

        init(_ plan: BudgetPlan, retried: [String]) {
            func techniques(_ candidate: BudgetCandidate) -> Techniques {
                Techniques(offload: candidate.technique.offloadOption, blocks_per_group: candidate.technique.blocksPerGroup,
                           stream: candidate.streamPrefetchBytes != nil, prefetch_bytes: candidate.streamPrefetchBytes,
                           vae_slicing: candidate.decode.slicing, vae_tiling: candidate.decode.tiling, vae_tile_size: candidate.decode.tileSize,
                           attention: candidate.memoryEfficientAttention ? "flash" : "requested",
                           images_per_chunk: candidate.imagesPerChunk, storage_dtype: candidate.lossyStorage.map { "\($0)" })
            }
            func predicted(_ prediction: RunPrediction?) -> Predicted? {
                prediction.map { Predicted(process_peak_rss_bytes: $0.processPeakResidentBytes, devices: $0.devicePeakBytes,
                                           step_s: $0.stepSeconds, step_s_by_class: $0.stepSecondsByClass, mapped_peak_bytes: $0.mappedPeakBytes,
                                           peak_section: $0.peakSection) }
            }
            let chosen = plan.chosen
            fits = chosen != nil
            self.chosen = chosen.map(techniques)
            chosen_command_line = chosen?.commandLine
            self.predicted = predicted(chosen?.prediction)
            candidates = plan.candidates.map {
                Candidate(techniques: techniques($0), command_line: $0.commandLine, weight_bytes_at_once: $0.weightBytesAtOnce,
                          largest_unit: $0.largestUnit, largest_unit_bytes: $0.largestUnitBytes, predicted: predicted($0.prediction),
                          needed_bytes: plan.neededBytes($0), fits: plan.fits($0), rejection: $0.rejection)
            }
            minimum_budget_bytes = plan.minimumBudgetBytes
            minimum_lossy_budget_bytes = plan.minimumLossyBudgetBytes
            budget_bytes = plan.budgetBytes
            process_bytes = plan.processBytes
            output_bytes = plan.outputBytes
            allocator_limit_bytes = plan.allocatorLimitBytes
            self.retried = retried
        }
    }
}
