import Foundation
import Tensor

/// The Euler sampler of rectified-flow models (FLUX, SD3, and the video models), as Diffusers'
/// `FlowMatchEulerDiscreteScheduler`. A sample at time σ is `σ·noise + (1 − σ)·x₀`; the model
/// predicts the velocity v, and a step moves `x + (σᵢ₊₁ − σᵢ)·v`. Timesteps are `σ·1000` in
/// float32; there is no training noise schedule of betas, no model-input scaling and unit
/// initial noise.
///
/// Exactness: every schedule is computed with the precision Diffusers' NumPy and PyTorch code
/// has — float32 where sigmas are given (FLUX passes `np.linspace(1, 1/N, N)`, which is cast to
/// float32 and shifted in float32, Python scalars not promoting it), float64 for the default
/// layout and the Karras/exponential conversions, float32 from the final cast on — so the
/// sigmas and timesteps are bit for bit Diffusers'.
public struct FlowMatchEulerDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public private(set) var timesteps: [Timestep]
    /// σ for each timestep, plus the final one (0, or 1 with `invertSigmas`).
    public private(set) var sigmas: [Float]
    public private(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    public var drawsNoiseEachStep: Bool { config.stochasticSampling }
    /// The index of the next step in `timesteps` (nil until the first step).
    public private(set) var stepIndex: Int?
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    public private(set) var beginIndex: Int?
    /// The fixed shift in use (`config.shift` until `setShift`).
    public private(set) var shift: Double
    /// The training schedule's smallest and largest σ (after the fixed shift).
    public let sigmaMin: Float, sigmaMax: Float

    static let name = "FlowMatchEulerDiscreteScheduler"

    public init(config: SchedulerConfig) throws {
        try SigmaSchedules.validateSigmaOptions(config)
        let train = config.numTrainTimesteps
        guard (1...1_000_000).contains(train) else {
            throw SchedulerError.invalidValue(field: "num_train_timesteps", value: "\(train)", expected: "an integer in 1...1000000",
                                              path: config.sourcePath)
        }
        guard config.shift.isFinite, config.shift > 0 else {
            throw SchedulerError.invalidValue(field: "shift", value: "\(config.shift)", expected: "a finite number > 0", path: config.sourcePath)
        }
        if let terminal = config.shiftTerminal, !(terminal >= 0 && terminal < 1) {
            throw SchedulerError.invalidValue(field: "shift_terminal", value: "\(terminal)", expected: "a number in [0, 1)", path: config.sourcePath)
        }
        self.config = config
        shift = config.shift
        // np.linspace(1, T, T, dtype=float32)[::-1] / T in float32, then the fixed shift in float32.
        let scale = Float(train)
        var trainSigmas = ReferenceNumerics.linspace(1, Double(train), count: train).reversed().map { Float($0) / scale }
        if !config.useDynamicShifting {
            trainSigmas = FlowMatchEulerDiscreteScheduler.shifted(trainSigmas, by: config.shift)
        }
        sigmas = trainSigmas
        timesteps = trainSigmas.map { .continuous($0 * scale) }
        sigmaMax = trainSigmas.first ?? 1
        sigmaMin = trainSigmas.last ?? 1
    }

    /// 1: flow matching starts from unit Gaussian noise.
    public var initNoiseSigma: Float { 1 }

    /// Lays out `count` steps from the training range (`set_timesteps(num_inference_steps)`).
    /// With `use_dynamic_shifting` Diffusers needs `mu`: use `setTimesteps(_:sigmas:mu:timesteps:)`.
    public mutating func setTimesteps(_ count: Int) throws {
        try setTimesteps(count, sigmas: nil, mu: nil, timesteps: nil)
    }

    /// Diffusers' `set_timesteps(num_inference_steps, sigmas=, mu=, timesteps=)`.
    /// - Parameters:
    ///   - count: the step count; nil takes the length of `sigmas` (or `timesteps`).
    ///   - sigmas: one σ per step, cast to float32 (FluxPipeline passes `np.linspace(1, 1/N, N)`);
    ///     nil: `linspace(σmax·T, σmin·T, count)/T` in float64.
    ///   - mu: the resolution-dependent shift (`calculateShift`); required with `use_dynamic_shifting`.
    ///   - timesteps: explicit timesteps (float32), kept as given; without `sigmas` they also give
    ///     the sigmas (`timesteps / T`), which are shifted.
    public mutating func setTimesteps(_ count: Int?, sigmas givenSigmas: [Double]? = nil, mu: Double? = nil,
                                      timesteps givenTimesteps: [Double]? = nil) throws {
        if config.useDynamicShifting {
            guard let mu else {
                throw SchedulerError.invalidArgument("\(Self.name): mu must be passed when use_dynamic_shifting is true (calculateShift gives FluxPipeline's)")
            }
            guard mu.isFinite, config.timeShiftType == .exponential || mu != 0 else {
                throw SchedulerError.invalidArgument("\(Self.name): mu must be finite\(config.timeShiftType == .linear ? " and non-zero for a linear time shift" : ""), got \(mu)")
            }
        }
        if let givenSigmas, let givenTimesteps, givenSigmas.count != givenTimesteps.count {
            throw SchedulerError.invalidArgument("\(Self.name): \(givenSigmas.count) sigmas and \(givenTimesteps.count) timesteps; they must have the same length")
        }
        let steps: Int
        if let count {
            if let given = givenSigmas ?? givenTimesteps, given.count != count {
                throw SchedulerError.invalidArgument("\(Self.name): \(given.count) \(givenSigmas != nil ? "sigmas" : "timesteps") for \(count) steps; they must have the same length")
            }
            steps = count
        } else {
            guard let given = givenSigmas ?? givenTimesteps else {
                throw SchedulerError.invalidArgument("\(Self.name): give a step count, sigmas or timesteps")
            }
            steps = given.count
        }
        guard steps >= 1 else { throw SchedulerError.invalidStepCount(steps, reason: "the step count must be at least 1") }
        if let bad = (givenSigmas ?? []).first(where: { !$0.isFinite }) ?? (givenTimesteps ?? []).first(where: { !$0.isFinite }) {
            throw SchedulerError.invalidArgument("\(Self.name): sigmas and timesteps must be finite, got \(bad)")
        }

        let train = config.numTrainTimesteps
        let explicitTimesteps = givenTimesteps.map { $0.map { Float($0) } }
        var schedule: Schedule
        if let givenSigmas {
            schedule = .single(givenSigmas.map { Float($0) })
        } else if let explicitTimesteps {
            schedule = .single(explicitTimesteps.map { $0 / Float(train) })
        } else {
            let points = ReferenceNumerics.linspace(Double(sigmaMax) * Double(train), Double(sigmaMin) * Double(train), count: steps)
            schedule = .double(points.map { $0 / Double(train) })
        }

        // Shift: dynamic (mu) or the fixed shift, in the schedule's precision.
        if config.useDynamicShifting, let mu {
            schedule = schedule.mapped(
                single: { s in FlowMatchEulerDiscreteScheduler.timeShift(mu: mu, type: config.timeShiftType, s) },
                double: { s in FlowMatchEulerDiscreteScheduler.timeShift(mu: mu, type: config.timeShiftType, s) })
        } else {
            let shift = self.shift
            schedule = schedule.mapped(single: { FlowMatchEulerDiscreteScheduler.shifted($0, by: shift) },
                                       double: { FlowMatchEulerDiscreteScheduler.shifted($0, by: shift) })
        }
        if let terminal = config.shiftTerminal, terminal != 0 {
            schedule = try FlowMatchEulerDiscreteScheduler.stretched(schedule, toTerminal: terminal)
        }
        if config.useKarrasSigmas || config.useExponentialSigmas {
            let values = schedule.doubles
            guard let largest = values.first, let smallest = values.last else { throw SchedulerError.invalidStepCount(steps, reason: "no sigmas") }
            if config.useKarrasSigmas {
                guard smallest >= 0, largest >= 0 else {
                    throw SchedulerError.invalidArgument("\(Self.name): Karras sigmas need non-negative first and last sigmas, got \(largest) and \(smallest)")
                }
                schedule = .double(SigmaSchedules.karras(min: smallest, max: largest, count: steps))
            } else {
                guard smallest > 0, largest > 0 else {
                    throw SchedulerError.invalidArgument("\(Self.name): exponential sigmas need positive first and last sigmas, got \(largest) and \(smallest)")
                }
                schedule = .double(SigmaSchedules.exponential(min: smallest, max: largest, count: steps))
            }
        }

        var final = schedule.floats                               // torch.from_numpy(σ).to(float32)
        let scale = Float(train)
        var times = explicitTimesteps ?? final.map { $0 * scale }
        if config.invertSigmas {
            final = final.map { 1 - $0 }
            times = final.map { $0 * scale }
            final.append(1)
        } else {
            final.append(0)
        }
        sigmas = final
        timesteps = times.map { .continuous($0) }
        numInferenceSteps = steps
        stepIndex = nil
        beginIndex = nil
    }

    /// Replaces the fixed shift for later `setTimesteps` calls (`set_shift`).
    public mutating func setShift(_ value: Double) throws {
        guard value.isFinite, value > 0 else { throw SchedulerError.invalidArgument("\(Self.name): the shift must be finite and positive, got \(value)") }
        shift = value
    }

    /// `sample` unchanged: flow matching does not scale the model input.
    public mutating func scaleModelInput(_ sample: Tensor, timestep: Timestep) throws -> Tensor { sample }

    /// Restarts the run with the current timesteps: clears the step index (the begin index
    /// stays, as in Diffusers).
    public mutating func reset() { stepIndex = nil }

    /// Starts the next run's steps at `index` in `timesteps` (`set_begin_index`).
    public mutating func setBeginIndex(_ index: Int) { beginIndex = index }

    /// One Euler step `x + (σᵢ₊₁ − σᵢ)·v` with the sample upcast to float32, or with
    /// `stochastic_sampling` `(1 − σᵢ₊₁)·(x − σᵢ·v) + σᵢ₊₁·noise` (noise from `noise` or
    /// `generator`). As in Diffusers the products with v are taken in v's dtype (a 0-dim
    /// float32 σ does not promote a bf16 v: PyTorch rounds it to bf16 and rounds the product),
    /// the sums in float32, and the result takes v's dtype. Integer
    /// (`.discrete`) timesteps are refused, as Diffusers refuses step indices.
    public mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, noise: Tensor? = nil) throws -> SchedulerOutput {
        try requireSameShape(modelOutput, sample, ("modelOutput", "sample"))
        if case .discrete = timestep {
            throw SchedulerError.invalidArgument("\(Self.name): step takes one of the scheduler's timesteps (float), not the integer \(timestep)")
        }
        let index = try currentIndex(for: timestep)
        guard index >= 0, index + 1 < sigmas.count else {
            throw SchedulerError.invalidState("\(Self.name): step \(index) is past the end of the \(timesteps.count)-step schedule")
        }
        let (sigma, next) = (sigmas[index], sigmas[index + 1])
        let dtype = modelOutput.dtype
        let v = try hostValues(modelOutput)
        let x = try hostValues(sample)                           // float32 (`sample.to(torch.float32)`)
        let previous: [Float]
        if config.stochasticSampling {
            let drawn = try stepNoise(noise, like: modelOutput, generator: &generator)
            let factor = roundedTo(dtype, sigma)
            let original = elementwise(x, v) { $0 - roundedTo(dtype, factor * $1) }
            let keep = 1 - next
            previous = elementwise(original, drawn) { keep * $0 + next * $1 }
        } else {
            let dt = roundedTo(dtype, next - sigma)
            previous = elementwise(x, v) { $0 + roundedTo(dtype, dt * $1) }
        }
        stepIndex = index + 1
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: dtype))
    }

    /// The flow-matching forward process for image-to-image (`scale_noise`):
    /// `σ·noise + (1 − σ)·sample`, σ of each timestep's position in `timesteps` (one per batch
    /// item, or one for all), or of the step (then begin) index once a begin index is set.
    /// σ takes the sample's dtype and each operation rounds as PyTorch's would.
    public func scaleNoise(_ sample: Tensor, timesteps requested: [Timestep], noise: Tensor) throws -> Tensor {
        let indices: [Int]
        try requireTimesteps(requested)
        if beginIndex == nil {
            indices = try requested.map { t in
                guard let i = SigmaSchedules.index(of: t, in: timesteps) else { throw SchedulerError.timestepNotInSchedule(t, scheduler: Self.name) }
                return i
            }
        } else {
            indices = [Int](repeating: stepIndex ?? beginIndex ?? 0, count: requested.count)
        }
        let dtype = sample.dtype
        let levels = try indices.map { i -> Float in
            guard sigmas.indices.contains(i) else {
                throw SchedulerError.invalidState("\(Self.name): index \(i) is outside the \(sigmas.count) sigmas of the schedule")
            }
            return roundedTo(dtype, sigmas[i])
        }
        try requireSameShape(sample, noise, ("sample", "noise"))
        let batch = sample.rank == 0 ? 1 : sample.shape[0]
        guard levels.count == 1 || levels.count == batch else {
            throw SchedulerError.shapeMismatch("\(levels.count) timesteps for a batch of \(batch)")
        }
        let noisedType = dtype == noise.dtype ? dtype : DType.f32   // σ·noise promotes as PyTorch's tensors do
        let x = try hostValues(sample), e = try hostValues(noise)
        let perItem = batch == 0 ? 0 : x.count / batch
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let s = levels[levels.count == 1 || perItem == 0 ? 0 : i / perItem]
            let scaledNoise = roundedTo(noisedType, s * e[i])
            let scaledSample = roundedTo(dtype, roundedTo(dtype, 1 - s) * x[i])
            out[i] = scaledNoise + scaledSample
        }
        return try makeTensor(out, like: sample, dtype: noisedType)
    }

    /// `scaleNoise`: flow matching's forward process is its `add_noise`.
    public func addNoise(original: Tensor, noise: Tensor, timesteps: [Timestep]) throws -> Tensor {
        try scaleNoise(original, timesteps: timesteps, noise: noise)
    }

    /// The sigmas FluxPipeline (and the other flow pipelines) pass: `np.linspace(1.0, 1/N, N)`
    /// in float64, exactly (`setTimesteps(nil, sigmas: linearSigmas(N), mu: ...)`).
    public static func linearSigmas(count: Int) -> [Double] {
        ReferenceNumerics.linspace(1, 1 / Double(max(count, 1)), count: count)
    }

    /// FluxPipeline's `calculate_shift`: μ linear in the image's token count, `baseShift` at
    /// `baseSequenceLength` and `maxShift` at `maxSequenceLength` (float64, as Python computes it).
    public static func calculateShift(imageSequenceLength: Int, baseSequenceLength: Int = 256, maxSequenceLength: Int = 4096,
                                      baseShift: Double = 0.5, maxShift: Double = 1.15) throws -> Double {
        guard baseSequenceLength != maxSequenceLength else {
            throw SchedulerError.invalidArgument("calculateShift: base and max image sequence lengths are both \(baseSequenceLength); μ would divide by zero")
        }
        let m = (maxShift - baseShift) / Double(maxSequenceLength - baseSequenceLength)
        let b = baseShift - m * Double(baseSequenceLength)
        return Double(imageSequenceLength) * m + b
    }

    /// `calculateShift` with this config's `base_image_seq_len`, `max_image_seq_len`,
    /// `base_shift` and `max_shift`, as FluxPipeline reads them. The token count of a FLUX
    /// image of H×W pixels is (H/16)·(W/16).
    public func calculateShift(imageSequenceLength: Int) throws -> Double {
        try Self.calculateShift(imageSequenceLength: imageSequenceLength, baseSequenceLength: config.baseImageSeqLen,
                                maxSequenceLength: config.maxImageSeqLen, baseShift: config.baseShift, maxShift: config.maxShift)
    }

    // MARK: - Schedule arithmetic

    /// The step index, set on first use from the begin index or `timestep`'s position.
    private mutating func currentIndex(for timestep: Timestep) throws -> Int {
        if let stepIndex { return stepIndex }
        let index: Int
        if let beginIndex {
            index = beginIndex
        } else {
            guard let found = SigmaSchedules.index(of: timestep, in: timesteps) else {
                throw SchedulerError.timestepNotInSchedule(timestep, scheduler: Self.name)
            }
            index = found
        }
        stepIndex = index
        return index
    }

    /// Sigmas as NumPy holds them between the steps of `set_timesteps`: float32 when they
    /// came from the caller (or from explicit timesteps), float64 when laid out here.
    enum Schedule {
        case single([Float])
        case double([Double])

        func mapped(single f: (Float) -> Float, double g: (Double) -> Double) -> Schedule {
            switch self {
            case .single(let values): return .single(values.map(f))
            case .double(let values): return .double(values.map(g))
            }
        }

        var doubles: [Double] {
            switch self {
            case .single(let values): return values.map(Double.init)
            case .double(let values): return values
            }
        }

        var floats: [Float] {
            switch self {
            case .single(let values): return values
            case .double(let values): return values.map { Float($0) }
            }
        }
    }

    /// shift·σ/(1 + (shift − 1)·σ) in float32, the scalars rounded to float32 first (NumPy's
    /// and PyTorch's handling of Python scalars); `shift − 1` is taken in float64.
    static func shifted(_ values: [Float], by shift: Double) -> [Float] { values.map { shifted($0, by: shift) } }

    static func shifted(_ s: Float, by shift: Double) -> Float {
        let a = Float(shift), b = Float(shift - 1)
        return a * s / (1 + b * s)
    }

    static func shifted(_ s: Double, by shift: Double) -> Double { shift * s / (1 + (shift - 1) * s) }

    /// Diffusers' `time_shift(mu, 1.0, σ)`: e^μ/(e^μ + (1/σ − 1)) or μ/(μ + (1/σ − 1)), with e^μ
    /// (or μ) rounded to float32 for a float32 schedule.
    static func timeShift(mu: Double, type: TimeShiftType, _ s: Float) -> Float {
        let m = Float(type == .exponential ? Foundation.exp(mu) : mu)
        return m / (m + (1 / s - 1))
    }

    static func timeShift(mu: Double, type: TimeShiftType, _ s: Double) -> Double {
        let m = type == .exponential ? Foundation.exp(mu) : mu
        return m / (m + (1 / s - 1))
    }

    /// `stretch_shift_to_terminal`: σ' = 1 − (1 − σ)/s with s = (1 − σ_last)/(1 − terminal),
    /// so that the last σ becomes `terminal` (s rounded to the schedule's precision).
    static func stretched(_ schedule: Schedule, toTerminal terminal: Double) throws -> Schedule {
        func refuse(_ last: Double) -> SchedulerError {
            .invalidArgument("\(name): shift_terminal cannot stretch a schedule whose last sigma is \(last) (it must be below 1)")
        }
        switch schedule {
        case .single(let values):
            guard let last = values.last, last != 1 else { throw refuse(Double(values.last ?? 1)) }
            let factor = (1 - last) / Float(1 - terminal)
            return .single(values.map { 1 - (1 - $0) / factor })
        case .double(let values):
            guard let last = values.last, last != 1 else { throw refuse(values.last ?? 1) }
            let factor = (1 - last) / (1 - terminal)
            return .double(values.map { 1 - (1 - $0) / factor })
        }
    }
}

/// `value` rounded to `dtype`'s precision (f16, bf16), kept as a Float; f32 and others unchanged.
private func roundedTo(_ dtype: DType, _ value: Float) -> Float {
    switch dtype {
    case .bf16: return float(fromBF16: bf16Bits(from: value))
    case .f16: return float(fromF16: f16Bits(from: value))
    default: return value
    }
}
