import Foundation
import Tensor

/// The Euler sampler of Karras et al. (2022, algorithm 2), as Diffusers'
/// `EulerDiscreteScheduler`. Works in sigma space: the model input is divided by √(σ² + 1)
/// and each step moves the sample along the ODE derivative from σᵢ to σᵢ₊₁. Timesteps are
/// float32 and may be fractional; sigmas between training timesteps are interpolated.
public struct EulerDiscreteScheduler: SigmaIndexedScheduler {
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
    public internal(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    public var drawsNoiseEachStep: Bool { churn.churn > 0 }
    /// Stochastic churn (`step(s_churn=, s_tmin=, s_tmax=, s_noise=)`).
    public var churn = Churn()
    /// The index of the next step in `timesteps` (nil until the first step or scaling).
    public internal(set) var stepIndex: Int?
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    public internal(set) var beginIndex: Int?

    static let name = "EulerDiscreteScheduler"

    public init(config: SchedulerConfig) throws {
        try SigmaSchedules.validateSigmaOptions(config)
        guard config.predictionType != .flowPrediction else {
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction' for EulerDiscreteScheduler", path: config.sourcePath)
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

    public mutating func setTimesteps(_ count: Int) throws {
        let points = try TimestepLayout.spaced(count, config: config, roundingLinspace: false).map { Float($0) }
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
        sigmas = schedule.map { Float($0) } + [noiseSchedule.finalSigma(config.finalSigmasType)]
        if config.timestepType == .continuous && config.predictionType == .vPrediction {
            timesteps = sigmas.dropLast().map { .continuous(0.25 * Foundation.log($0)) }
        } else if let fractional {
            timesteps = fractional.map { .continuous(Float($0)) }
        } else {
            timesteps = points.map { .continuous($0) }
        }
        startRun(steps: count)
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
            let drawn = try stepNoise(noise, like: modelOutput, generator: &generator)
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
                                              expected: "'epsilon', 'sample' or 'v_prediction'", path: config.sourcePath)
        }
        let dt = next - sigmaHat
        let previous = elementwise(x, original) { $0 + ($0 - $1) / sigmaHat * dt }
        stepIndex = index + 1
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: modelOutput.dtype),
                               predOriginalSample: try makeTensor(original, like: sample, dtype: modelOutput.dtype))
    }
}
