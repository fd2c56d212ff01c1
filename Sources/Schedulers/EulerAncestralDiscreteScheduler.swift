import Foundation
import Tensor

/// Ancestral Euler sampling (k-diffusion's `sample_euler_ancestral`), as Diffusers'
/// `EulerAncestralDiscreteScheduler`: each step goes deterministically to σ_down and adds
/// fresh noise of standard deviation σ_up, with σ_down² + σ_up² = σᵢ₊₁². The noise is drawn
/// from `generator` (one `randn` of the model output's shape per step, the last step
/// included) unless passed to `step`.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public let noiseSchedule: NoiseSchedule
    public private(set) var timesteps: [Timestep]
    /// σ for each timestep, plus 0 (length `timesteps.count + 1`).
    public private(set) var sigmas: [Float]
    public private(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    /// The index of the next step in `timesteps` (nil until the first step or scaling).
    public private(set) var stepIndex: Int?
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    public private(set) var beginIndex: Int?

    private static let name = "EulerAncestralDiscreteScheduler"

    public init(config: SchedulerConfig) throws {
        guard config.predictionType == .epsilon || config.predictionType == .vPrediction else {
            throw SchedulerError.unsupported(field: "prediction_type",
                                             reason: "EulerAncestralDiscreteScheduler supports 'epsilon' and 'v_prediction' only, not '\(config.predictionType.rawValue)'")
        }
        self.config = config
        noiseSchedule = try NoiseSchedule(config: config, terminalFloor: true)
        sigmas = noiseSchedule.sigmas.reversed() + [0]
        timesteps = ReferenceNumerics.linspace(0, Double(config.numTrainTimesteps - 1), count: config.numTrainTimesteps)
            .reversed().map { .continuous(Float($0)) }
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
        let points: [Float]
        switch config.timestepSpacing {
        case .linspace:
            points = ReferenceNumerics.linspace(0, Double(train - 1), count: count).reversed().map { Float($0) }
        case .leading:
            points = TimestepLayout.leading(count, train).reversed().map { Float($0) + Float(config.stepsOffset) }
        case .trailing:
            points = TimestepLayout.trailing(count, train).map { Float($0) - 1 }
        }
        let trainSigmas = noiseSchedule.sigmas.map(Double.init)
        sigmas = points.map { Float(ReferenceNumerics.interpolate(at: Double($0), in: trainSigmas)) } + [0]
        timesteps = points.map { .continuous($0) }
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
        if let noise { try requireSameShape(noise, modelOutput, ("noise", "modelOutput")) }
        let index = try currentIndex(for: timestep)
        let (sigma, next) = try sigmaPair(index)
        let output = try hostValues(modelOutput), x = try hostValues(sample)
        let original: [Float]
        switch config.predictionType {
        case .vPrediction:
            let c = -sigma / (sigma * sigma + 1).squareRoot(), d = sigma * sigma + 1
            original = elementwise(output, x) { $0 * c + $1 / d }
        default:
            original = elementwise(x, output) { $0 - sigma * $1 }
        }
        let up = (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot()
        let down = (next * next - up * up).squareRoot()
        let dt = down - sigma
        let drawn = try noise.map(hostValues) ?? generator.normalFloats(count: modelOutput.count)
        let previous = elementwise(x, original, drawn) { s, o, n in
            (s + (s - o) / sigma * dt) + n * up
        }
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
