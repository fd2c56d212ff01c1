import Tensor

/// Denoising diffusion implicit models (Song et al. 2020), as Diffusers' `DDIMScheduler`.
/// With `eta = 0` (the default) sampling is deterministic; `eta > 0` adds noise drawn from
/// `generator` (or passed to `step`).
public struct DDIMScheduler: CumulativeAlphaScheduler {
    public let config: SchedulerConfig
    public let noiseSchedule: NoiseSchedule
    public private(set) var timesteps: [Timestep]
    public private(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    public var drawsNoiseEachStep: Bool { eta > 0 }
    /// η of the DDIM paper: 0 is DDIM, 1 is DDPM-like ancestral sampling (`step(eta=)`).
    public var eta: Double = 0
    /// Recompute ε from the clipped x₀ (`step(use_clipped_model_output=)`).
    public var useClippedModelOutput = false
    /// ᾱ used after the last timestep.
    public let finalAlphaCumprod: Float

    private static let name = "DDIMScheduler"

    public init(config: SchedulerConfig) throws {
        guard config.predictionType != .flowPrediction else {
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction' for DDIMScheduler", path: config.sourcePath)
        }
        self.config = config
        noiseSchedule = try NoiseSchedule(config: config, terminalFloor: false)
        finalAlphaCumprod = noiseSchedule.finalAlphaCumprod(setAlphaToOne: config.setAlphaToOne)
        timesteps = noiseSchedule.trainingTimesteps
    }

    public mutating func setTimesteps(_ count: Int) throws {
        let values = try TimestepLayout.spaced(count, config: config, roundingLinspace: true).map { Int($0) }
        timesteps = values.map { .discrete($0) }
        numInferenceSteps = count
    }

    public mutating func reset() {}

    public mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, noise: Tensor? = nil) throws -> SchedulerOutput {
        guard let count = numInferenceSteps else { throw SchedulerError.timestepsNotSet(scheduler: Self.name) }
        try requireSameShape(modelOutput, sample, ("modelOutput", "sample"))
        let cumulative = noiseSchedule.alphasCumprod
        guard let t = timestep.integerValue, cumulative.indices.contains(t) else {
            throw SchedulerError.timestepOutOfRange(timestep, numTrainTimesteps: config.numTrainTimesteps)
        }
        let previousTimestep = t - config.numTrainTimesteps / count
        let alphaT = cumulative[t]
        let alphaPrevious = previousTimestep >= 0 ? cumulative[previousTimestep] : finalAlphaCumprod
        let betaT = 1 - alphaT
        let rootAlpha = alphaT.squareRoot(), rootBeta = betaT.squareRoot()
        let output = try hostValues(modelOutput), x = try hostValues(sample)

        var original: [Float], epsilon: [Float]
        switch config.predictionType {
        case .epsilon:
            original = elementwise(x, output) { ($0 - rootBeta * $1) / rootAlpha }
            epsilon = output
        case .sample:
            original = output
            epsilon = elementwise(x, output) { ($0 - rootAlpha * $1) / rootBeta }
        case .vPrediction:
            original = elementwise(x, output) { rootAlpha * $0 - rootBeta * $1 }
            epsilon = elementwise(output, x) { rootAlpha * $0 + rootBeta * $1 }
        case .flowPrediction:
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction' for DDIMScheduler", path: config.sourcePath)
        }
        if config.thresholding {
            original = try dynamicThreshold(original, shape: sample.shape, ratio: config.dynamicThresholdingRatio,
                                            maxValue: config.sampleMaxValue)
        } else if config.clipSample {
            let range = Float(config.clipSampleRange)
            original = elementwise(original) { min(max($0, -range), range) }
        }

        let betaPrevious = 1 - alphaPrevious
        let variance = betaPrevious / betaT * (1 - alphaT / alphaPrevious)
        let deviation = Float(eta) * variance.squareRoot()
        if useClippedModelOutput {
            epsilon = elementwise(x, original) { ($0 - rootAlpha * $1) / rootBeta }
        }
        let direction = (1 - alphaPrevious - deviation * deviation).squareRoot()
        let rootAlphaPrevious = alphaPrevious.squareRoot()
        var previous = elementwise(original, epsilon) { rootAlphaPrevious * $0 + direction * $1 }
        if eta > 0 {
            let drawn = try stepNoise(noise, like: modelOutput, generator: &generator)
            previous = elementwise(previous, drawn) { $0 + deviation * $1 }
        }
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: modelOutput.dtype),
                               predOriginalSample: try makeTensor(original, like: sample, dtype: modelOutput.dtype))
    }
}
