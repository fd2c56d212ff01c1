import Foundation
import Models
import NN
import Offload
import Schedulers
import Tensor

extension DiffusionPipeline {
    /// The profile (and rehearsal) section of the VAE decode.
    public static let decodeSection = "vae_decode"
    /// What the sections of the denoising steps begin with (`unet_first_step`, `unet_step`).
    public static let denoisingSectionPrefix = "unet"

    /// Runs one phase of a call (prompt encoding, denoising, decoding, the img2img encode) with
    /// `component`'s weights ready. With `releasesWeightPagesBetweenPhases`, when the phase
    /// ends the component's mapped weights let their pages go, packed copies included; and
    /// with `castWeightsOnLoad: false` a component no offload hook casts is converted to the
    /// pipeline's dtype for the phase only — the converted copies are freed after it and the
    /// weights are the mapped checkpoint again — so a call holds one component's converted
    /// weights at a time instead of all of them for the pipeline's life. The host's cached
    /// blocks are given back too.
    func inPhase<T>(of component: Module, _ body: () throws -> T) throws -> T {
        guard releasesWeightPagesBetweenPhases else { return try body() }
        var homes: [(slot: Parameter, home: Tensor)] = []
        defer {
            // Dropping the converted copies (freeing them) is part of converting per phase.
            let restoreStart = Date()
            for (slot, home) in homes { slot.value = home }
            if !homes.isEmpty { phaseCastSeconds += Date().timeIntervalSince(restoreStart) }
            component.releaseMappedWeightPages()
            // The next phase allocates other sizes: blocks this one freed would only sit in RSS.
            Device.cpu.allocator.emptyCache()
        }
        // A resident phase reads all of its model's weights: map them in one go. (Offloaded
        // components bring their groups in as they run; populating them would defeat that.)
        if !component.hasOffloadHooks { component.populateMappedWeightPages() }
        if castPending && !component.hasOffloadHooks {
            let castStart = Date()
            defer { phaseCastSeconds += Date().timeIntervalSince(castStart) }
            // oneDNN's bf16 convolutions convert their f32 and f16 weights straight into the
            // packed copy (autocast), so those stay mapped: converting them here would hold them
            // twice. Where bf16 products run as f32 ones, the packed copy is per call, so the
            // weights are converted here like the rest.
            let keepsConvolutionWeights = dtype == .bf16 && BF16ProductKernels.current == .native
            for slot in pendingCasts(component, keepingConvolutionWeights: keepsConvolutionWeights) {
                guard let home = slot.value else { continue }
                slot.value = try home.to(dtype)
                homes.append((slot, home))
                // The file's pages were read once for the copy.
                if home.storage.isMapped { home.storage.releaseResidentPages() }
            }
        }
        return try body()
    }

    /// The prompt phase, which begins a call (text-to-image and image-to-image alike): starts
    /// the call's conversion clock, runs `encode` (the family's prompt encoding, in the phase of
    /// its text encoders), checks and records what it gave.
    func conditioningPhase<States>(_ options: GenerationOptions, timings: inout GenerationResult.Timings,
                                   encode: () throws -> States, tensors: (States) -> [(name: String, tensor: Tensor)]) throws -> States {
        phaseCastSeconds = 0
        retriedPhases = []
        OpProfile.beginSection("text_encoder")
        let (states, seconds) = try timedPhase(encode)
        timings.textEncoderSeconds = seconds
        let source = options.promptEmbeddings == nil ? "the text encoder's" : "the given"
        for (name, tensor) in tensors(states) { try requireFinite(tensor, "\(source) \(name)") }
        return states
    }

    /// The denoising loop every family shares, in the denoiser's phase: `predict` gives the
    /// guided model output for the latents at a timestep (the family's conditioning and
    /// guidance), the scheduler steps; step timings, profile sections, the finiteness check and
    /// progress (with cancellation) are kept here. With `latentDType` other than f32 the
    /// latents are rounded to it after every step, as a pipeline that holds them in the
    /// model's dtype (FLUX's) rounds them.
    func denoisingLoop(_ initial: Tensor, timesteps: [Timestep], latentDType: DType = .f32, timings: inout GenerationResult.Timings,
                       progress: ProgressHandler?, predict: (_ latents: Tensor, _ timestep: Timestep) throws -> Tensor) throws -> Tensor {
        var phaseTimings = timings
        defer { timings = phaseTimings }
        return try inPhase(of: denoiser) {
            defer { denoiserCallEnded() }
            var latents = initial
            let loopStart = Date()
            phaseTimings.denoiseStartedAt = loopStart.timeIntervalSince1970
            for (i, t) in timesteps.enumerated() {
                let stepStart = Date()
                OpProfile.beginSection(i == 0 ? Self.denoisingSectionPrefix + "_first_step" : Self.denoisingSectionPrefix + "_step")
                // The scheduler works on the host; the denoiser computes wherever it was placed.
                let prediction = try retryingStep { try predict(latents, t) }.to(.f32).to(latents.device)
                latents = try scheduler.step(modelOutput: prediction.contiguous(), timestep: t, sample: latents).prevSample
                if latentDType != .f32 { latents = try latents.to(latentDType).to(.f32) }
                try requireFinite(latents, "denoising step \(i + 1) of \(timesteps.count) (timestep \(t.value))")
                let seconds = Date().timeIntervalSince(stepStart)
                phaseTimings.stepSeconds.append(seconds)
                if let progress, !progress(StepEvent(step: i + 1, totalSteps: timesteps.count, timestep: t.value, seconds: seconds)) {
                    throw PipelineError.cancelled
                }
            }
            phaseTimings.denoiseSeconds = Date().timeIntervalSince(loopStart)
            OpProfile.beginSection(nil)
            return latents
        }
    }

    /// A denoising step's model call, run once more a plan down when it runs out of memory and
    /// `degradesOnOutOfMemory` allows it. Where the pipeline's attention holds whole score
    /// matrices (naive, sliced), the plan down is the memory-efficient kernel, and the call runs
    /// again from its start (`AttentionPlannedDown`: the phases before computed with the other
    /// kernel). Otherwise it is a finer offload (`denoiserPlanDown`), whose numbers are the
    /// same: the scheduler has not stepped yet, so the retry sees the same latents.
    private func retryingStep(_ body: () throws -> Tensor) throws -> Tensor {
        do { return try body() } catch let error as OutOfMemoryError {
            if let done = try attentionPlanDown(after: error) {
                retriedPhases.append(done)
                throw AttentionPlannedDown()
            }
            guard let done = try denoiserPlanDown(after: error) else { throw error }
            retriedPhases.append(done)
            return try body()
        }
    }

    /// Every component's attention switched to the memory-efficient kernel (`--attention
    /// flash`: a tile of scores per thread) where one holds whole score matrices; what to say
    /// of it, or nil where none does. The pipeline stays so.
    private func attentionPlanDown(after error: OutOfMemoryError) throws -> String? {
        guard degradesOnOutOfMemory, attentionHoldsScoreMatrices else { return nil }
        try setAttentionBackend(.flash)
        denoiser.executionDevice.allocator.emptyCache()
        return "a denoising step ran out of memory on \(error.device) (\(formatBytes(error.requestedBytes)) asked with "
            + "\(formatBytes(error.bytesInUse)) in use) and the call ran again from its start with --attention flash"
    }

    /// Whether a component's attention holds whole score matrices (naive, sliced).
    var attentionHoldsScoreMatrices: Bool { components.contains { $0.attentionKernels.contains { $0.kernel.holdsScoreMatrices } } }

    /// A call run once more from its start where a denoising step ran out of memory with
    /// attention that holds whole score matrices and the pipeline took the memory-efficient
    /// kernel (`attentionPlanDown`): every phase of the second run, the text encoders' too,
    /// computes as a call with that kernel from the start; what the first said stays said.
    func restartingOnAttentionPlanDown(_ call: () throws -> GenerationResult) throws -> GenerationResult {
        do { return try call() } catch is AttentionPlannedDown {
            let said = retriedPhases
            let result = try call()
            retriedPhases = said + retriedPhases
            return result
        }
    }

    /// The decode phase, which ends a call: the images, the phase's time and the whole call's
    /// conversion time.
    func decodePhase(_ latents: Tensor, timings: inout GenerationResult.Timings) throws -> Tensor {
        OpProfile.beginSection(Self.decodeSection)
        let (images, seconds) = try timedPhase { try decodeDegradingOnOutOfMemory(latents) }
        timings.vaeDecodeSeconds = seconds
        timings.weightCastSeconds = phaseCastSeconds
        return images
    }

    /// `decodeLatents`, retried once a rung down (`VAEDecode.ladder`: one image at a time for a
    /// batch, else tiles of the VAE's sample size, else smaller ones) when it runs out of memory
    /// and `degradesOnOutOfMemory` allows it: the result is that decode's, as if the call had
    /// enabled it from the start; slicing and tiling as they were afterwards.
    func decodeDegradingOnOutOfMemory(_ latents: Tensor) throws -> Tensor {
        do { return try decodeLatents(latents) } catch let error as OutOfMemoryError {
            let vae = try autoencoder()
            let current = VAEDecode(slicing: vae.useSlicing, tiling: vae.tiling != nil, tileSize: vae.tiling?.sampleMinSize)
            let side = max(latents.shape[2], latents.shape[3]) * vae.config.downscaleFactor
            guard degradesOnOutOfMemory, let down = VAEDecode.ladder(from: current, batch: latents.shape[0], imageSide: side,
                                                                       sampleSize: vae.config.sampleSize,
                                                                       downscale: vae.config.downscaleFactor).dropFirst().first else { throw error }
            let tiling = vae.tiling
            if down.slicing { vae.enableSlicing() }
            if down.tiling { try vae.enableTiling(sampleMinSize: down.tileSize) }
            defer {
                if !current.slicing { vae.disableSlicing() }
                vae.restoreTiling(tiling)
            }
            let images = try decodeLatents(latents)
            retriedPhases.append("the VAE decode ran out of memory on \(error.device) (\(formatBytes(error.requestedBytes)) asked with "
                                 + "\(formatBytes(error.bytesInUse)) in use) and was run again with\(down.commandLine)")
            return images
        }
    }

    /// Latents → images in [0, 1] (f32), as `vae.decode(latents / scaling_factor + shift)`
    /// then `(x / 2 + 0.5).clamp(0, 1)`. In f16, a family that honours `force_upcast` (SDXL's
    /// `needs_upcasting`) decodes in f32 when the VAE asks for it.
    public func decodeLatents(_ latents: Tensor) throws -> Tensor {
        let vae = try autoencoder()
        var z = try latents.scaled(by: 1 / vae.config.scalingFactor)
        if let shift = vae.config.shiftFactor { z = try z + shift }
        let decoded = try inPhase(of: vae) {
            guard dtype == .f16 && vae.config.forceUpcast && upcastsForcedVAE else { return try vae.decode(z.to(dtype)) }
            return try converting(vae, to: .f32) { try vae.decode(z.to(.f32)) }
        }
        try requireFinite(decoded, "the VAE decoder's output")
        return try decoded.to(.f32).to(latents.device).scaled(by: 0.5, adding: 0.5).clamped(to: 0...1)
    }

    /// Runs `body` (a phase) and returns its result and seconds, less what its weight
    /// conversions took (those count in `Timings.weightCastSeconds`).
    func timedPhase<T>(_ body: () throws -> T) rethrows -> (result: T, seconds: Double) {
        let start = Date(), castBefore = phaseCastSeconds
        let result = try body()
        return (result, Date().timeIntervalSince(start) - (phaseCastSeconds - castBefore))
    }

    /// Runs `body` with `module`'s floating-point weights converted to `target` (Diffusers'
    /// `vae.to(dtype=torch.float32)` for `force_upcast`), then puts the weights back.
    func converting<T>(_ module: Module, to target: DType, _ body: () throws -> T) throws -> T {
        var homes: [(slot: Parameter, home: Tensor)] = []
        defer { for (slot, home) in homes { slot.value = home } }
        for (_, slot) in module.namedParameters() {
            guard let value = slot.value, value.dtype.isComputeType, value.dtype != target else { continue }
            homes.append((slot, value))
            slot.value = try value.to(target)
        }
        return try body()
    }

    /// The weights of `module` not in the pipeline's dtype that a cast must convert: layers
    /// under layerwise casting keep their storage dtype (their hooks upcast per forward), and
    /// float8 weights are always such storage.
    func pendingCasts(_ module: Module, keepingConvolutionWeights: Bool = false) -> [Parameter] {
        if module.hooks.contains(where: { $0.name == OffloadHookName.layerwiseCasting }) { return [] }
        let kept = keepingConvolutionWeights ? (module as? Conv2d)?.weight : nil
        var slots = module.parameters.map(\.parameter).filter { slot in
            guard slot !== kept, let value = slot.value else { return false }
            return value.dtype.isComputeType && value.dtype != dtype
        }
        for (_, child) in module.children { slots += pendingCasts(child, keepingConvolutionWeights: keepingConvolutionWeights) }
        return slots
    }
}

/// Thrown out of a call whose pipeline switched to the memory-efficient attention kernel
/// mid-call, for `restartingOnAttentionPlanDown` to run the call again.
struct AttentionPlannedDown: Error {}
