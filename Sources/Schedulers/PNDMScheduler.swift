import Tensor

/// Pseudo numerical methods for diffusion models (Liu et al. 2022), as Diffusers'
/// `PNDMScheduler`: Runge–Kutta warm-up steps (PRK) followed by linear multistep steps (PLMS).
/// Stable Diffusion 1.x uses it with `skip_prk_steps`: PLMS only, its second step
/// re-evaluating the first timestep (so `timesteps` has `count + 1` entries).
public struct PNDMScheduler: CumulativeAlphaScheduler {
    /// The per-run history.
    public struct State: Sendable {
        /// Steps taken in this run.
        public fileprivate(set) var counter = 0
        /// The last (up to four) model outputs the multistep formula combines.
        fileprivate var ets: [[Float]] = []
        /// PRK: the weighted sum of the current Runge–Kutta stage outputs.
        fileprivate var currentModelOutput: [Float]?
        /// The sample the current PRK cycle (or the first PLMS pair) started from.
        fileprivate var currentSample: [Float]?

        /// How many past model outputs are kept.
        public var storedModelOutputs: Int { ets.count }
    }

    public let config: SchedulerConfig
    public let noiseSchedule: NoiseSchedule
    public private(set) var timesteps: [Timestep]
    public private(set) var numInferenceSteps: Int?
    public var generator = TorchGenerator(seed: 0)
    public var drawsNoiseEachStep: Bool { false }
    /// The Runge–Kutta timesteps of the run (empty with `skip_prk_steps`).
    public private(set) var prkTimesteps: [Int] = []
    /// The linear multistep timesteps of the run.
    public private(set) var plmsTimesteps: [Int] = []
    public private(set) var state = State()
    /// ᾱ used after the last timestep.
    public let finalAlphaCumprod: Float

    private static let name = "PNDMScheduler"
    private let pndmOrder = 4

    public init(config: SchedulerConfig) throws {
        guard config.predictionType == .epsilon || config.predictionType == .vPrediction else {
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'\(config.predictionType.rawValue)'",
                                              expected: "'epsilon' or 'v_prediction' for PNDMScheduler", path: config.sourcePath)
        }
        self.config = config
        noiseSchedule = try NoiseSchedule(config: config, terminalFloor: false, allowRescale: false)
        finalAlphaCumprod = noiseSchedule.finalAlphaCumprod(setAlphaToOne: config.setAlphaToOne)
        timesteps = noiseSchedule.trainingTimesteps
    }

    public mutating func setTimesteps(_ count: Int) throws {
        let train = config.numTrainTimesteps
        let base = try TimestepLayout.spaced(count, config: config, roundingLinspace: true).reversed().map { Int($0) }
        if config.skipPRKSteps {
            prkTimesteps = []
            plmsTimesteps = (base.dropLastPython(1) + Array(base.dropLastPython(1).suffixPython(1)) + base.suffixPython(1)).reversed()
        } else {
            guard count >= pndmOrder else {
                throw SchedulerError.invalidStepCount(count, reason: "PNDM's Runge-Kutta warm-up needs at least \(pndmOrder) steps (or skip_prk_steps)")
            }
            let half = train / count / 2
            let warm = base.suffixPython(pndmOrder).flatMap { [$0, $0 + half] }
            let doubled = warm.dropLast().flatMap { [$0, $0] }
            prkTimesteps = Array(doubled.dropFirst().dropLast()).reversed()
            plmsTimesteps = base.dropLastPython(3).reversed()
        }
        timesteps = (prkTimesteps + plmsTimesteps).map { .discrete($0) }
        numInferenceSteps = count
        state = State()
    }

    public mutating func reset() { state = State() }

    public mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, noise: Tensor? = nil) throws -> SchedulerOutput {
        guard let count = numInferenceSteps else { throw SchedulerError.timestepsNotSet(scheduler: Self.name) }
        try requireSameShape(modelOutput, sample, ("modelOutput", "sample"))
        guard let t = timestep.integerValue else { throw SchedulerError.timestepNotInSchedule(timestep, scheduler: Self.name) }
        let output = try hostValues(modelOutput), x = try hostValues(sample)
        try requireHistoryFits(state.ets.map(Optional.some) + [state.currentModelOutput, state.currentSample],
                               count: output.count, scheduler: Self.name)
        let previous: [Float]
        if state.counter < prkTimesteps.count && !config.skipPRKSteps {
            previous = try rungeKuttaStep(output, t, x, count)
        } else {
            previous = try multistepStep(output, t, x, count)
        }
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: modelOutput.dtype))
    }

    private mutating func rungeKuttaStep(_ output: [Float], _ t: Int, _ x: [Float], _ count: Int) throws -> [Float] {
        let diffToPrevious = state.counter % 2 == 1 ? 0 : config.numTrainTimesteps / count / 2
        let previousTimestep = t - diffToPrevious
        let current = prkTimesteps[state.counter / 4 * 4]
        var modelOutput = output
        let sixth = Float(1.0 / 6.0), third = Float(1.0 / 3.0)
        switch state.counter % 4 {
        case 0:
            state.currentModelOutput = elementwise(output) { sixth * $0 + 0 }
            state.ets.append(output)
            state.currentSample = x
        case 1, 2:
            let sum = state.currentModelOutput ?? [Float](repeating: 0, count: output.count)
            state.currentModelOutput = elementwise(sum, output) { $0 + third * $1 }
        default:
            let sum = state.currentModelOutput ?? [Float](repeating: 0, count: output.count)
            modelOutput = elementwise(sum, output) { $0 + sixth * $1 }
            state.currentModelOutput = nil
        }
        let start = state.currentSample ?? x
        let previous = try previousSample(start, current, previousTimestep, modelOutput)
        state.counter += 1
        return previous
    }

    private mutating func multistepStep(_ output: [Float], _ t: Int, _ x: [Float], _ count: Int) throws -> [Float] {
        if !config.skipPRKSteps && state.ets.count < 3 {
            throw SchedulerError.invalidState("PNDMScheduler: linear multistep steps need the Runge-Kutta warm-up (12 steps) first")
        }
        let ratio = config.numTrainTimesteps / count
        var current = t, previousTimestep = t - ratio
        if state.counter != 1 {
            state.ets = state.ets.suffixPython(3)
            state.ets.append(output)
        } else {
            previousTimestep = t
            current = t + ratio
        }
        var sample = x
        let combined: [Float]
        let ets = state.ets
        switch ets.count {
        case 1 where state.counter == 0:
            combined = output
            state.currentSample = x
        case 1 where state.counter == 1:
            combined = elementwise(output, ets[0]) { ($0 + $1) / 2 }
            sample = state.currentSample ?? x
            state.currentSample = nil
        case 2:
            combined = elementwise(ets[1], ets[0]) { (3 * $0 - $1) / 2 }
        case 3:
            combined = elementwise(ets[2], ets[1], ets[0]) { (23 * $0 - 16 * $1 + 5 * $2) / 12 }
        default:
            let n = ets.count
            let w = Float(1.0 / 24.0)
            combined = elementwise(ets[n - 1], ets[n - 2], ets[n - 3], ets[n - 4]) {
                w * (55 * $0 - 59 * $1 + 37 * $2 - 9 * $3)
            }
        }
        let previous = try previousSample(sample, current, previousTimestep, combined)
        state.counter += 1
        return previous
    }

    /// x_{t−δ} from x_t (formula 9 of the PNDM paper).
    private func previousSample(_ sample: [Float], _ t: Int, _ previousTimestep: Int, _ modelOutput: [Float]) throws -> [Float] {
        let cumulative = noiseSchedule.alphasCumprod
        guard cumulative.indices.contains(t) else {
            throw SchedulerError.timestepOutOfRange(.discrete(t), numTrainTimesteps: config.numTrainTimesteps)
        }
        guard previousTimestep < cumulative.count else {
            throw SchedulerError.timestepOutOfRange(.discrete(previousTimestep), numTrainTimesteps: config.numTrainTimesteps)
        }
        let alphaT = cumulative[t]
        let alphaPrevious = previousTimestep >= 0 ? cumulative[previousTimestep] : finalAlphaCumprod
        let betaT = 1 - alphaT, betaPrevious = 1 - alphaPrevious
        var output = modelOutput
        if config.predictionType == .vPrediction {
            let a = alphaT.squareRoot(), b = betaT.squareRoot()
            output = elementwise(modelOutput, sample) { a * $0 + b * $1 }
        }
        let sampleCoefficient = (alphaPrevious / alphaT).squareRoot()
        let denominator = alphaT * betaPrevious.squareRoot() + (alphaT * betaT * alphaPrevious).squareRoot()
        let difference = alphaPrevious - alphaT
        return elementwise(sample, output) { sampleCoefficient * $0 - difference * $1 / denominator }
    }
}
