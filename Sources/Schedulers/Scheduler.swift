import Tensor

/// What one denoising step produces.
public struct SchedulerOutput: Sendable {
    /// x at the next (less noisy) timestep: the sample to feed the model next.
    public let prevSample: Tensor
    /// The scheduler's estimate of the clean sample x₀, where the class computes one
    /// (DDIM, Euler, Euler ancestral).
    public let predOriginalSample: Tensor?

    public init(prevSample: Tensor, predOriginalSample: Tensor? = nil) {
        self.prevSample = prevSample
        self.predOriginalSample = predOriginalSample
    }
}

/// A diffusion sampler as Diffusers' `SchedulerMixin`: it lays out inference timesteps and
/// turns model outputs into ever less noisy samples.
///
/// A denoising loop:
/// ```swift
/// var scheduler = try config.makeScheduler()
/// try scheduler.setTimesteps(25)
/// var x = try noise.scaled(by: scheduler.initNoiseSigma)
/// for t in scheduler.timesteps {
///     let input = try scheduler.scaleModelInput(x, timestep: t)
///     let eps = try unet(input, t)
///     x = try scheduler.step(modelOutput: eps, timestep: t, sample: x).prevSample
/// }
/// ```
///
/// Schedulers are values whose run state (PNDM's past model outputs, DPM-Solver's history,
/// the Euler step index) is explicit: `setTimesteps` starts a run, `reset()` restarts it with
/// the same timesteps, and a copy taken mid-run continues independently.
/// Tensors are read on their device and results are created there; the arithmetic is float32.
public protocol Scheduler: Sendable {
    /// The configuration the scheduler was built from.
    var config: SchedulerConfig { get }
    /// The inference timesteps of the current run (training timesteps before `setTimesteps`).
    var timesteps: [Timestep] { get }
    /// The step count given to `setTimesteps` (nil before).
    var numInferenceSteps: Int? { get }
    /// The standard deviation of the initial noise: multiply unit Gaussian latents by it.
    var initNoiseSigma: Float { get }
    /// Model evaluations per entry of `timesteps` (Diffusers' `order`; 1 for these classes).
    var order: Int { get }
    /// Source of the noise that stochastic steps draw when none is passed (Euler ancestral,
    /// DDIM with `eta > 0`, SDE variants of DPM-Solver). Set it to the generator that drew the
    /// initial latents to continue that stream, as Diffusers' pipelines do.
    var generator: TorchGenerator { get set }
    /// Whether a step draws noise from `generator` (Euler ancestral, DDIM with `eta > 0`,
    /// Euler with churn, the SDE variants, stochastic flow sampling): such a run's images
    /// depend on the whole batch's draws at every step, not only on its initial noise.
    var drawsNoiseEachStep: Bool { get }

    /// Lays out `count` inference steps and starts a new run.
    mutating func setTimesteps(_ count: Int) throws
    /// The model input for `sample` at `timestep` (Euler divides by √(σ² + 1); others return it).
    mutating func scaleModelInput(_ sample: Tensor, timestep: Timestep) throws -> Tensor
    /// One denoising step. `noise` replaces the generator's draw where the step is stochastic
    /// (ignored otherwise); its shape must equal `modelOutput`'s.
    mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, noise: Tensor?) throws -> SchedulerOutput
    /// The forward process: `original` noised to `timesteps` (one per batch item, or one for
    /// all), for image-to-image.
    func addNoise(original: Tensor, noise: Tensor, timesteps: [Timestep]) throws -> Tensor
    /// Restarts the run with the current timesteps (clears histories and the step index).
    mutating func reset()
    /// Where stepping starts in `timesteps` (image-to-image skips the first ones); schedulers
    /// that index their sigmas use it, the others ignore it.
    mutating func setBeginIndex(_ index: Int)
}

extension Scheduler {
    /// One deterministic step (noise drawn from `generator` where the class needs it).
    public mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor) throws -> SchedulerOutput {
        try step(modelOutput: modelOutput, timestep: timestep, sample: sample, noise: nil)
    }

    /// `addNoise` with one timestep for the whole batch.
    public func addNoise(original: Tensor, noise: Tensor, timestep: Timestep) throws -> Tensor {
        try addNoise(original: original, noise: noise, timesteps: [timestep])
    }

    public var order: Int { 1 }

    public mutating func setBeginIndex(_ index: Int) {}

    /// The timesteps of an image-to-image run, as Diffusers' img2img pipelines choose them
    /// (`get_timesteps`): after `setTimesteps(steps)`, the last `⌊steps·strength⌋` steps'
    /// worth of `timesteps`; the begin index is set to where they start. Noise the encoded
    /// image to the first of them with `addNoise`, then step through them.
    /// - Parameter steps: the step count given to `setTimesteps` (the pipeline's
    ///   `num_inference_steps`).
    public mutating func imageToImageTimesteps(steps: Int, strength: Double) throws -> [Timestep] {
        guard strength >= 0, strength <= 1 else {
            throw SchedulerError.invalidArgument("strength must be in [0, 1], got \(strength)")
        }
        let initial = min(Int(Double(steps) * strength), steps)
        let start = max(steps - initial, 0) * order
        setBeginIndex(start)
        return Array(timesteps.dropFirst(start))
    }
}
