import Models
import NN
import Offload
import Schedulers
import Tensor

/// The core every family pipeline adopts (Diffusers' `DiffusionPipeline`): it owns the model
/// components in call order, the scheduler, and the memory toolkit written once for any set of
/// components — model / sequential / group offload, device maps, per-phase casting and page
/// release, attention backends, memory formats, VAE slicing and tiling. A family pipeline
/// subclasses it, takes its typed components from `LoadedComponents`, and says only what a
/// call computes.
open class DiffusionPipeline: @unchecked Sendable {
    public let folder: String
    public let layout: PipelineLayout
    /// The dtype the models compute in.
    public let dtype: DType
    /// The model components by the names Diffusers gives them, in the order a call uses them
    /// (`model_cpu_offload_seq`).
    public let namedComponents: [(name: String, module: Module)]
    /// The model the denoising loop calls (`layout.denoiser`).
    public let denoiser: Module
    public var scheduler: any Scheduler
    /// Set by `enableModelCPUOffload`; every call ends with all components back home.
    var modelOffload: ModelCPUOffload?
    /// Where `applyDeviceMap` put each component or module (Diffusers' `hf_device_map`).
    public internal(set) var hfDeviceMap: DeviceMap?
    /// Whether some weights are still in the checkpoint's dtype (`castWeightsOnLoad: false`).
    var castPending: Bool
    /// Seconds `inPhase` spent converting weights since the call began.
    var phaseCastSeconds = 0.0
    /// Degrade and retry: when a phase runs out of memory against a device's capacity (an
    /// accelerator's, or the host's under a memory budget), it is run once more with the next
    /// plan down — the VAE decode tiled — instead of failing the call. Off by default, as in
    /// Diffusers; `diffuse generate --memory-budget` turns it on.
    public var degradesOnOutOfMemory = false
    /// What the last call retried that way, one sentence each (empty when nothing was).
    public internal(set) var retriedPhases: [String] = []
    /// Told the technique a retry moved the denoiser to (a memory plan gives the allocator the
    /// room the weights no longer take).
    public var onPlanDown: ((BudgetCandidate.Technique) -> Void)?
    /// Where and how the denoiser is group-offloaded by `enableGroupOffload` (all components)
    /// or by a retry's plan down (nil: neither).
    var groupOffload: (device: Device, options: GroupOffloadOptions)?
    /// When a phase ends (prompt encoding, denoising, decoding), the pages of its model's
    /// weights still mapped from the checkpoint are let go, packed copies included, so that the
    /// process holds one phase's weights at a time; the next call reads them again from the
    /// page cache (and packs the convolution weights again). Weights that were converted or
    /// moved to an accelerator are not mapped and stay.
    public var releasesWeightPagesBetweenPhases = true

    public init(_ components: LoadedComponents) throws {
        folder = components.folder
        layout = components.layout
        dtype = components.dtype
        castPending = components.castPending
        namedComponents = components.models
        denoiser = try components.model(components.layout.denoiser, as: Module.self)
        scheduler = try components.schedulerConfig().makeScheduler()
        // Measured faster and leaner on the UNet and the VAE (BENCHMARKS.md, channels_last).
        setMemoryFormat(.channelsLast)
    }

    /// The model components in call order.
    public var components: [Module] { namedComponents.map(\.module) }

    /// The model component called `name`, if the pipeline has one.
    public func component(named name: String) -> Module? { namedComponents.first { $0.name == name }?.module }

    /// Largest side accepted, in pixels (16384: beyond any released model's range, and a
    /// bound that keeps every size product far from overflow).
    public static let maximumImageSide = 16_384

    /// Most images one call may make (prompts × images per prompt).
    public static let maximumBatch = 4_096

    /// Every component's attention computes with `backend`. A slice size is checked against
    /// the denoiser's heads, as Diffusers' `enable_attention_slicing` does; the other
    /// components slice at most all their heads.
    public func setAttentionBackend(_ backend: AttentionBackend) throws {
        for (name, component) in namedComponents {
            if case .sliced(let size) = backend, name != layout.denoiser {
                try component.enableAttentionSlicing(size, capped: true)
            } else {
                try component.setAttentionBackend(backend)
            }
        }
    }

    /// Diffusers' `enable_attention_slicing`: the denoiser's attention a slice of heads at a time.
    public func enableAttentionSlicing(_ size: AttentionSliceSize = .auto) throws { try denoiser.enableAttentionSlicing(size) }

    /// Every component's convolutions compute in `format` (`Module.setMemoryFormat`), as
    /// `pipe.unet.to(memory_format=torch.channels_last)` and the same for the VAE.
    /// Pipelines start channels-last: it measured faster with lower peaks on both models.
    public func setMemoryFormat(_ format: MemoryFormat) {
        for component in components { component.setMemoryFormat(format) }
    }

    /// The pipeline's VAE (`vae`), for the VAE's own memory switches.
    public func autoencoder() throws -> AutoencoderKL {
        guard let vae = component(named: "vae") as? AutoencoderKL else {
            throw PipelineError.invalidOption("\(layout.className) has no AutoencoderKL vae to slice or tile")
        }
        return vae
    }

    /// Diffusers' `enable_vae_slicing`: the VAE decodes (and encodes) a batch one image at a time.
    public func enableVAESlicing() throws { try autoencoder().enableSlicing() }

    /// Diffusers' `enable_vae_tiling`: the VAE works on overlapping tiles of `sampleMinSize`
    /// pixels (nil: its config's `sample_size`), blended as Diffusers blends them.
    public func enableVAETiling(sampleMinSize: Int? = nil) throws { try autoencoder().enableTiling(sampleMinSize: sampleMinSize) }

    /// Replaces the scheduler by `kind` built from the pipeline's scheduler config, as
    /// `XScheduler.from_config(pipe.scheduler.config)` does.
    public func useScheduler(_ kind: SchedulerKind) throws {
        try configureScheduler(kind: kind)
    }

    /// Rebuilds the scheduler from the pipeline's scheduler config, as Diffusers'
    /// `OtherScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=..., timestep_spacing=...)`:
    /// `kind` nil keeps the pipeline's class; nil options keep the config's values.
    /// Throws `PipelineError.invalidOption` for Karras sigmas on a class that has none.
    public func configureScheduler(kind: SchedulerKind? = nil, karrasSigmas: Bool? = nil, timestepSpacing: TimestepSpacing? = nil) throws {
        var config = try SchedulerConfig(contentsOf: folder + "/scheduler/scheduler_config.json", kind: kind)
        // Diffusers would swap the class in and step garbage: a noise-predicting UNet's output
        // is no flow-matching velocity, and the reverse.
        guard config.kind.hasNoiseSchedule != usesFlowMatching else {
            throw PipelineError.invalidOption(usesFlowMatching
                ? "the \(config.kind.commandLineName) scheduler steps noise predictions; this pipeline's model predicts a flow-matching velocity (use flow-match)"
                : "the \(config.kind.commandLineName) scheduler steps a flow-matching velocity; this pipeline's model predicts noise (use pndm, ddim, euler, euler-a or dpm++)")
        }
        if let karrasSigmas {
            guard !karrasSigmas || config.kind.supportsKarrasSigmas else {
                throw PipelineError.invalidOption(
                    "the \(config.kind.commandLineName) scheduler has no Karras sigmas (euler and dpm++ do); pick one with --scheduler")
            }
            config.useKarrasSigmas = karrasSigmas
        }
        if let timestepSpacing { config.timestepSpacing = timestepSpacing }
        scheduler = try config.makeScheduler()
    }

    /// Whether the denoiser predicts a flow-matching velocity (FLUX) rather than noise, so
    /// that only a flow-matching scheduler can step it.
    open var usesFlowMatching: Bool { false }

    /// Whether an f16 call decodes in f32 when the VAE's config says `force_upcast` (Diffusers'
    /// SDXL pipelines do; its SD 1.x/2.x pipelines decode in the pipeline's dtype).
    open var upcastsForcedVAE: Bool { false }

    /// Ends the denoiser's call: nothing kept on its device for a next step during the VAE
    /// decode. Families with more per-call state (a captured graph) end that too.
    open func denoiserCallEnded() {
        try? denoiser.endCall()
    }

    /// Throws `PipelineError.nonFinite` naming `stage` when `tensor` holds NaN or infinity.
    func requireFinite(_ tensor: Tensor, _ stage: @autoclosure () -> String) throws {
        if MemoryRehearsal.skipsWork { return }   // a rehearsal's values are garbage
        let bad = try tensor.nonFiniteCount()
        guard bad == 0 else { throw PipelineError.nonFinite(stage: stage(), count: bad, total: tensor.count) }
    }
}
