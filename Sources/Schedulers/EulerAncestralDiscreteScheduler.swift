import Foundation
import Tensor

/// Ancestral Euler sampling (k-diffusion's `sample_euler_ancestral`), as Diffusers'
/// `EulerAncestralDiscreteScheduler`: each step goes deterministically to σ_down and adds
/// fresh noise of standard deviation σ_up, with σ_down² + σ_up² = σᵢ₊₁². The noise is drawn
/// from `generator` (one `randn` of the model output's shape per step, the last step
/// included) unless passed to `step`.
public struct EulerAncestralDiscreteScheduler: SigmaIndexedScheduler {
    public let config: SchedulerConfig
    public let noiseSchedule: NoiseSchedule
    public private(set) var timesteps: [Timestep]
    /// σ for each timestep, plus 0 (length `timesteps.count + 1`).
    public private(set) var sigmas: [Float]
    public internal(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    public var drawsNoiseEachStep: Bool { true }
    /// The index of the next step in `timesteps` (nil until the first step or scaling).
    public internal(set) var stepIndex: Int?
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    public internal(set) var beginIndex: Int?

    static let name = "EulerAncestralDiscreteScheduler"

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

    public mutating func setTimesteps(_ count: Int) throws {
        let points = try TimestepLayout.spaced(count, config: config, roundingLinspace: false).map { Float($0) }
        let trainSigmas = noiseSchedule.sigmas.map(Double.init)
        sigmas = points.map { Float(ReferenceNumerics.interpolate(at: Double($0), in: trainSigmas)) } + [0]
        timesteps = points.map { .continuous($0) }
        startRun(steps: count)
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
        let drawn = try stepNoise(noise, like: modelOutput, generator: &generator)
        let previous = elementwise(x, original, drawn) { s, o, n in
            (s + (s - o) / sigma * dt) + n * up
        }
        stepIndex = index + 1
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: modelOutput.dtype),
                               predOriginalSample: try makeTensor(original, like: sample, dtype: modelOutput.dtype))
    }
}
