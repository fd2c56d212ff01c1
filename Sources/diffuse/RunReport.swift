import Diffusers
import Foundation

/// The `--report` JSON: options as resolved, device map, timings, memory and outputs.
struct RunReport: Encodable {
    struct Timings: Encodable {
        let load_s: Double, text_encoder_s: Double, denoise_s: Double, steps_s: [Double]
        let vae_encode_s: Double, vae_decode_s: Double, total_s: Double
        /// Converting weights to the compute dtype inside the phases, not counted in the phase figures.
        let weight_cast_s: Double
        /// Wall-clock instants (seconds since 1970): the command's start and the first
        /// denoising step's, so that a harness can time process start to first step.
        let started_at: Double, first_step_at: Double?
    }
    struct DeviceMemory: Encodable {
        /// cached_bytes: freed blocks an accelerator keeps for reuse at the end of the run.
        let peak_bytes: Int, capacity_bytes: Int?, cached_bytes: Int
    }
    struct Memory: Encodable {
        let devices: [String: DeviceMemory]
        let process_peak_rss_bytes: Int?
    }
    struct Transfers: Encodable {
        let bytes: Int, count: Int, wait_s: Double
        /// The same per component and hook.
        let by_hook: [HookFigures]
    }
    struct HookFigures: Encodable {
        let component: String, hook: String, bytes: Int, count: Int, wait_s: Double
    }
    /// The UNet graph `--capture` planned (absent without it).
    struct Capture: Encodable {
        let arena_bytes: Int, eager_peak_bytes: Int, output_bytes: Int, operations: Int, activations: Int, in_place: Int
    }
    /// `--profile`: per phase ("text_encoder", "unet_first_step", "unet_step", "vae_decode", …),
    /// summed over its entries (`unet_step` is every step after the first).
    struct ProfileSection: Encodable {
        let wall_s: Double, entries: Int, other_s: Double
        let seconds: [String: Double], calls: [String: Int], operations: [String: Double]
    }
    let options: [String: String]
    let device_map: [String: String]
    var capture: Capture?
    var profile: [String: ProfileSection]?
    /// `--memory-budget`'s plan (absent without it).
    var plan: Plan?
    let timings: Timings
    let memory: Memory
    let transfers: Transfers
    let outputs: [String]
    /// What the pipeline said about the call (an option Diffusers takes and ignores, ...).
    let notes: [String]

    init(options: [String: String], startedAt: Date, loadSeconds: Double, result: GenerationResult, totalSeconds: Double, outputs: [String],
         devices: [Device], components: [String], placement: String, transfers hooks: [HookTransfers], deviceMap: DeviceMap? = nil) {
        self.options = options
        notes = result.notes
        // Every entry of the resolved map (module paths under a component included), and each
        // component the map leaves out where it runs.
        var map = Dictionary(uniqueKeysWithValues: components.map { ($0, placement) })
        if let deviceMap {
            for key in map.keys where deviceMap.target(for: key) == nil && !deviceMap.keys.contains(where: { $0.hasPrefix(key + ".") }) {
                map[key] = "cpu"
            }
            for key in map.keys where deviceMap.keys.contains(where: { $0.hasPrefix(key + ".") }) { map[key] = nil }
            for entry in deviceMap.entries { map[entry.prefix] = entry.target.description }
        }
        device_map = map
        let t = result.timings
        timings = Timings(load_s: loadSeconds, text_encoder_s: t.textEncoderSeconds, denoise_s: t.denoiseSeconds,
                          steps_s: t.stepSeconds, vae_encode_s: t.vaeEncodeSeconds, vae_decode_s: t.vaeDecodeSeconds,
                          total_s: totalSeconds, weight_cast_s: t.weightCastSeconds, started_at: startedAt.timeIntervalSince1970, first_step_at: t.denoiseStartedAt)
        memory = Memory(devices: Dictionary(uniqueKeysWithValues: devices.map {
                            ($0.description, DeviceMemory(peak_bytes: $0.allocator.peakBytes, capacity_bytes: $0.allocator.capacity,
                                                          cached_bytes: $0.allocator.bytesCached))
                        }),
                        process_peak_rss_bytes: ProcessMemory.peakResidentBytes)
        let statistics = hooks.map(\.statistics)
        transfers = Transfers(bytes: statistics.reduce(0) { $0 + $1.bytesMoved }, count: statistics.reduce(0) { $0 + $1.transfers },
                              wait_s: statistics.reduce(0) { $0 + $1.waitSeconds },
                              by_hook: hooks.map {
                                  HookFigures(component: $0.component, hook: $0.hook, bytes: $0.statistics.bytesMoved,
                                              count: $0.statistics.transfers, wait_s: $0.statistics.waitSeconds)
                              })
        self.outputs = outputs
    }

    static func profileSections(_ profile: OpProfile) -> [String: ProfileSection] {
        profile.sections.mapValues { section in
            ProfileSection(wall_s: section.wallSeconds, entries: section.entries, other_s: section.otherSeconds,
                           seconds: Dictionary(uniqueKeysWithValues: section.seconds.map { ($0.key.rawValue, $0.value) }),
                           calls: Dictionary(uniqueKeysWithValues: section.calls.map { ($0.key.rawValue, $0.value) }),
                           operations: section.operations)
        }
    }

    /// The file's bytes (staged and committed with the run's other outputs).
    func bytes() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(self))
    }
}

/// What one strategy's hooks on one component moved (`--report`'s `transfers.by_hook`).
struct HookTransfers {
    let component: String, hook: String, statistics: TransferStatistics
    init(_ component: String, _ hook: String, _ statistics: TransferStatistics) {
        self.component = component
        self.hook = hook
        self.statistics = statistics
    }
}
