import Foundation
import Tensor

/// The Euler sampler of Karras et al. (2022, algorithm 2), as Diffusers'
/// `EulerDiscreteScheduler`. Works in sigma space: the model input is divided by √(σ² + 1)
/// and each step moves the sample along the ODE derivative from σᵢ to σᵢ₊₁. Timesteps are
/// float32 and may be fractional; sigmas between training timesteps are interpolated.
public struct EulerDiscreteScheduler: Scheduler {
    /// The "churn" of Karras et al.: extra noise raising σ to σ̂ = σ·(1 + γ) before a step,
    /// γ = min(churn/(steps), √2 − 1) for σ in [tMin, tMax]. Off by default (churn 0).
    public struct Churn: Sendable, Equatable {
        public var churn: Double = 0
        public var tMin: Double = 0
        public var tMax: Double = .infinity
        public var noise: Double = 1
        public init(churn: Double = 0, tMin: Double = 0, tMax: Double = .infinity, noise: Double = 1) {
            self.churn = churn; self.tMin = tMin; self.tMax = tMax; self.noise = noise
        }
    }

    public let config: SchedulerConfig
    public let noiseSchedule: NoiseSchedule
    public private(set) var timesteps: [Timestep]
    /// σ for each timestep, plus the final σ (length `timesteps.count + 1`).
    public private(set) var sigmas: [Float]
    public private(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    /// Stochastic churn (`step(s_churn=, s_tmin=, s_tmax=, s_noise=)`).
    public var churn = Churn()
    /// The index of the next step in `timesteps` (nil until the first step or scaling).
    public private(set) var stepIndex: Int?
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    public private(set) var beginIndex: Int?

    private static let name = "EulerDiscreteScheduler"

    public init(config: SchedulerConfig) throws {
        try SigmaSchedules.validateSigmaOptions(config)
        guard config.predictionType != .flowPrediction else {
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction' for EulerDiscreteScheduler")
        }
        self.config = config
        noiseSchedule = try NoiseSchedule(config: config, terminalFloor: true)
        let train = noiseSchedule.sigmas
        sigmas = train.reversed() + [0]
        if config.timestepType == .continuous && config.predictionType == .vPrediction {
            timesteps = train.reversed().map { .continuous(0.25 * Foundation.log($0)) }
        } else {
            timesteps = ReferenceNumerics.linspace(0, Double(config.numTrainTimesteps - 1), count: config.numTrainTimesteps)
                .reversed().map { .continuous(Float($0)) }
        }
    }

    /// The standard deviation of the initial noise: max σ, or √(max σ² + 1) with `leading`.
    public var initNoiseSigma: Float {
        let largest = sigmas.max() ?? 0
        switch config.timestepSpacing {
        case .linspace, .trailing: return largest
        case .leading: return (largest * largest + 1).squareRoot()
        }
    }

    public mutating func setTimesteps(_ count: Int) throws {
        let train = config.numTrainTimesteps
        try TimestepLayout.validate(count, numTrainTimesteps: train)
        var points: [Float]
        switch config.timestepSpacing {
        case .linspace:
            points = ReferenceNumerics.linspace(0, Double(train - 1), count: count).reversed().map { Float($0) }
        case .leading:
            points = TimestepLayout.leading(count, train).reversed().map { Float($0) + Float(config.stepsOffset) }
        case .trailing:
            points = TimestepLayout.trailing(count, train).map { Float($0) - 1 }
        }
        let trainSigmas = noiseSchedule.sigmas
        let trainDouble = trainSigmas.map(Double.init)
        let logSigmas = trainSigmas.map { Foundation.log($0) }
        var schedule: [Double]
        switch config.interpolationType {
        case .linear:
            schedule = points.map { ReferenceNumerics.interpolate(at: Double($0), in: trainDouble) }
        case .logLinear:
            let first = Foundation.log(trainSigmas[trainSigmas.count - 1]), last = Foundation.log(trainSigmas[0])
            schedule = ReferenceNumerics.torchLinspace(Double(first), Double(last), count: count + 1)
                .map { Double(Foundation.exp($0)) }
        }
        var fractional: [Double]? = nil
        if config.useKarrasSigmas || config.useExponentialSigmas, let largest = schedule.first, let smallest = schedule.last {
            let low = config.sigmaMin ?? smallest, high = config.sigmaMax ?? largest
            schedule = config.useKarrasSigmas
                ? SigmaSchedules.karras(min: low, max: high, count: count)
                : SigmaSchedules.exponential(min: low, max: high, count: count)
            fractional = schedule.map { SigmaSchedules.timestep(forSigma: $0, logSigmas: logSigmas) }
        }
        let last: Float
        switch config.finalSigmasType {
        case .zero: last = 0
        case .sigmaMin:
            let a = noiseSchedule.alphasCumprod[0]
            last = ((1 - a) / a).squareRoot()
        }
        sigmas = schedule.map { Float($0) } + [last]
        if config.timestepType == .continuous && config.predictionType == .vPrediction {
            timesteps = sigmas.dropLast().map { .continuous(0.25 * Foundation.log($0)) }
        } else if let fractional {
            timesteps = fractional.map { .continuous(Float($0)) }
        } else {
            timesteps = points.map { .continuous($0) }
        }
        numInferenceSteps = count
        stepIndex = nil
        beginIndex = nil
    }

    public mutating func reset() { stepIndex = nil }

    public mutating func setBeginIndex(_ index: Int) { beginIndex = index }

    private mutating func currentIndex(for timestep: Timestep) throws -> Int {
        if let stepIndex { return stepIndex }
        if let beginIndex {
            stepIndex = beginIndex
            return beginIndex
        }
        guard let index = SigmaSchedules.index(of: timestep, in: timesteps) else {
            throw SchedulerError.timestepNotInSchedule(timestep, scheduler: Self.name)
        }
        stepIndex = index
        return index
    }

    private func sigmaPair(_ index: Int) throws -> (Float, Float) {
        guard index >= 0, index + 1 < sigmas.count else {
            throw SchedulerError.invalidState("\(Self.name): step \(index) is past the end of the \(timesteps.count)-step schedule")
        }
        return (sigmas[index], sigmas[index + 1])
    }

    public mutating func scaleModelInput(_ sample: Tensor, timestep: Timestep) throws -> Tensor {
        let (sigma, _) = try sigmaPair(try currentIndex(for: timestep))
        let divisor = (sigma * sigma + 1).squareRoot()
        return try makeTensor(elementwise(try hostValues(sample)) { $0 / divisor }, like: sample)
    }

    public mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, noise: Tensor? = nil) throws -> SchedulerOutput {
        try requireSameShape(modelOutput, sample, ("modelOutput", "sample"))
        let index = try currentIndex(for: timestep)
        let (sigma, next) = try sigmaPair(index)
        let output = try hostValues(modelOutput)
        var x = try hostValues(sample)

        let inRange = churn.tMin <= Double(sigma) && Double(sigma) <= churn.tMax
        let gamma = inRange ? min(churn.churn / Double(sigmas.count - 1), 2.0.squareRoot() - 1) : 0
        let sigmaHat = sigma * Float(gamma + 1)
        if gamma > 0 {
            let drawn: [Float]
            if let noise {
                try requireSameShape(noise, modelOutput, ("noise", "modelOutput"))
                drawn = try hostValues(noise)
            } else {
                drawn = generator.normalFloats(count: modelOutput.count)
            }
            let scale = Float(churn.noise), spread = (sigmaHat * sigmaHat - sigma * sigma).squareRoot()
            x = elementwise(x, drawn) { $0 + $1 * scale * spread }
        }
        let original: [Float]
        switch config.predictionType {
        case .sample:
            original = output
        case .epsilon:
            original = elementwise(x, output) { $0 - sigmaHat * $1 }
        case .vPrediction:
            let c = -sigma / (sigma * sigma + 1).squareRoot(), d = sigma * sigma + 1
            original = elementwise(output, x) { $0 * c + $1 / d }
        case .flowPrediction:
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction'")
        }
        let dt = next - sigmaHat
        let previous = elementwise(x, original) { $0 + ($0 - $1) / sigmaHat * dt }
        stepIndex = index + 1
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: modelOutput.dtype),
                               predOriginalSample: try makeTensor(original, like: sample, dtype: modelOutput.dtype))
    }

    public func addNoise(original: Tensor, noise: Tensor, timesteps: [Timestep]) throws -> Tensor {
        let indices = try noiseIndices(timesteps, schedule: self.timesteps, stepIndex: stepIndex,
                                       beginIndex: beginIndex, scheduler: Self.name)
        let levels = try indices.map { try sigmaPair($0).0 }
        return try batchwise(original, noise, count: levels.count) { x, e, item in x + e * levels[item] }
    }
}

/// The sigma indices Diffusers' `add_noise` uses: the timesteps' own positions, or the step
/// (then begin) index when a begin index is set.
func noiseIndices(_ timesteps: [Timestep], schedule: [Timestep], stepIndex: Int?, beginIndex: Int?,
                  scheduler: String, missing: ((Timestep) -> Int)? = nil) throws -> [Int] {
    try requireTimesteps(timesteps)
    if beginIndex != nil, let index = stepIndex ?? beginIndex {
        return [Int](repeating: index, count: timesteps.count)
    }
    return try timesteps.map { t in
        if let index = SigmaSchedules.index(of: t, in: schedule) { return index }
        if let missing { return missing(t) }
        throw SchedulerError.timestepNotInSchedule(t, scheduler: scheduler)
    }
}
