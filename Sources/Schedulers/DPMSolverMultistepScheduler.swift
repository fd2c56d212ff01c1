import Foundation
import Tensor

/// DPM-Solver and DPM-Solver++ multistep samplers (Lu et al. 2022), as Diffusers'
/// `DPMSolverMultistepScheduler`. The defaults are "DPM++ 2M": `dpmsolver++`, order 2,
/// midpoint, lower-order final steps. The SDE variants add noise drawn from `generator`
/// (or passed to `step`).
public struct DPMSolverMultistepScheduler: Scheduler {
    /// The per-run history.
    public struct State: Sendable {
        /// The last `solver_order` converted model outputs, oldest first (nil before filled).
        fileprivate var modelOutputs: [[Float]?]
        /// How many lower-order warm-up steps have been taken (capped at the solver order).
        public fileprivate(set) var lowerOrderCount = 0
        /// The index of the next step in `timesteps` (nil until the first step).
        public fileprivate(set) var stepIndex: Int?

        init(order: Int) { modelOutputs = [[Float]?](repeating: nil, count: order) }

        /// How many past model outputs are held.
        public var storedModelOutputs: Int { modelOutputs.compactMap { $0 }.count }
    }

    public let config: SchedulerConfig
    public let noiseSchedule: NoiseSchedule
    public private(set) var timesteps: [Timestep]
    /// σ for each timestep, plus the final σ (length `timesteps.count + 1`).
    public private(set) var sigmas: [Float]
    public private(set) var numInferenceSteps: Int?
    public var initNoiseSigma: Float { 1 }
    public var generator = TorchGenerator(seed: 0)
    public var drawsNoiseEachStep: Bool { config.algorithmType.isStochastic }
    public private(set) var state: State
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    public private(set) var beginIndex: Int?
    /// λₜ = log αₜ − log σₜ of the training timesteps.
    private let lambdas: [Float]

    private static let name = "DPMSolverMultistepScheduler"

    public init(config: SchedulerConfig) throws {
        try SigmaSchedules.validateSigmaOptions(config)
        if !config.algorithmType.predictsData && config.finalSigmasType == .zero {
            throw SchedulerError.conflictingOptions(
                "final_sigmas_type 'zero' is not supported with algorithm_type '\(config.algorithmType.rawValue)'; use 'sigma_min'")
        }
        if config.algorithmType == .sdeDpmsolver && config.solverOrder == 3 {
            throw SchedulerError.conflictingOptions("solver_order 3 is not available with algorithm_type 'sde-dpmsolver'")
        }
        if config.predictionType == .flowPrediction && !config.algorithmType.predictsData {
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction' with algorithm_type '\(config.algorithmType.rawValue)'", path: config.sourcePath)
        }
        guard (1...3).contains(config.solverOrder) else {
            throw SchedulerError.invalidValue(field: "solver_order", value: "\(config.solverOrder)", expected: "an integer in 1...3", path: config.sourcePath)
        }
        if config.useDynamicShifting {
            throw SchedulerError.unsupported(field: "use_dynamic_shifting", reason: "dynamic shifting (set_timesteps(mu=)) is not implemented")
        }
        self.config = config
        noiseSchedule = try NoiseSchedule(config: config, terminalFloor: true)
        lambdas = noiseSchedule.alphasCumprod.map { Foundation.log($0.squareRoot()) - Foundation.log((1 - $0).squareRoot()) }
        sigmas = noiseSchedule.sigmas
        timesteps = ReferenceNumerics.linspace(0, Double(config.numTrainTimesteps - 1), count: config.numTrainTimesteps)
            .reversed().map { .discrete(Int(Float($0))) }
        state = State(order: config.solverOrder)
    }

    public mutating func setTimesteps(_ count: Int) throws {
        let train = config.numTrainTimesteps
        try TimestepLayout.validate(count, numTrainTimesteps: train)
        let clipped = lambdas.reversed().filter { Double($0) < config.lambdaMinClipped }.count
        let last = train - clipped
        guard last >= 1 else {
            throw SchedulerError.invalidValue(field: "lambda_min_clipped", value: "\(config.lambdaMinClipped)",
                                              expected: "a bound that leaves some timesteps", path: config.sourcePath)
        }
        var points: [Double]
        switch config.timestepSpacing {
        case .linspace:
            points = Array(ReferenceNumerics.linspace(0, Double(last - 1), count: count + 1).map(ReferenceNumerics.round)
                .reversed().dropLast())
        case .leading:
            let ratio = last / (count + 1)
            points = Array((0...count).map { Double($0 * ratio) }.reversed().dropLast()).map { $0 + Double(config.stepsOffset) }
        case .trailing:
            points = TimestepLayout.trailing(count, train, from: last).map { $0 - 1 }
        }
        let trainSigmas = noiseSchedule.sigmas
        let logSigmas = trainSigmas.map { Foundation.log($0) }
        let roundTimesteps = config.betaSchedule != .squaredcosCapV2
        var schedule: [Double]
        if config.useKarrasSigmas {
            schedule = SigmaSchedules.karras(min: Double(trainSigmas[0]), max: Double(trainSigmas[trainSigmas.count - 1]), count: count)
            points = schedule.map { SigmaSchedules.timestep(forSigma: $0, logSigmas: logSigmas) }
            if roundTimesteps { points = points.map(ReferenceNumerics.round) }
        } else if config.useLuLambdas {
            let low = Double(logSigmas[0]), high = Double(logSigmas[logSigmas.count - 1])
            schedule = ReferenceNumerics.linspace(0, 1, count: count).map { Foundation.exp(high + $0 * (low - high)) }
            points = schedule.map { SigmaSchedules.timestep(forSigma: $0, logSigmas: logSigmas) }
            if roundTimesteps { points = points.map(ReferenceNumerics.round) }
        } else if config.useExponentialSigmas {
            schedule = SigmaSchedules.exponential(min: Double(trainSigmas[0]), max: Double(trainSigmas[trainSigmas.count - 1]), count: count)
            points = schedule.map { SigmaSchedules.timestep(forSigma: $0, logSigmas: logSigmas) }
        } else if config.useFlowSigmas {
            let shift = config.flowShift
            let levels = ReferenceNumerics.linspace(1, 1 / Double(train), count: count + 1).map { 1 - $0 }
            schedule = Array(levels.map { shift * $0 / (1 + (shift - 1) * $0) }.reversed().dropLast())
            points = schedule.map { $0 * Double(train) }
        } else {
            let trainDouble = trainSigmas.map(Double.init)
            schedule = points.map { ReferenceNumerics.interpolate(at: $0, in: trainDouble) }
        }
        sigmas = schedule.map { Float($0) } + [noiseSchedule.finalSigma(config.finalSigmasType)]
        timesteps = points.map { .discrete(ReferenceNumerics.truncatedInt($0)) }
        numInferenceSteps = timesteps.count
        state = State(order: config.solverOrder)
        beginIndex = nil
    }

    public mutating func reset() { state = State(order: config.solverOrder) }

    public mutating func setBeginIndex(_ index: Int) { beginIndex = index }

    public mutating func scaleModelInput(_ sample: Tensor, timestep: Timestep) throws -> Tensor { sample }

    /// (αₜ, σₜ) of a noise level: 1/√(σ² + 1) and σ·αₜ, or 1 − σ and σ with flow sigmas.
    private func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        if config.useFlowSigmas { return (1 - sigma, sigma) }
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    private func lambda(_ pair: (alpha: Float, sigma: Float)) -> Float {
        Foundation.log(pair.alpha) - Foundation.log(pair.sigma)
    }

    public mutating func step(modelOutput: Tensor, timestep: Timestep, sample: Tensor, noise: Tensor? = nil) throws -> SchedulerOutput {
        guard numInferenceSteps != nil else { throw SchedulerError.timestepsNotSet(scheduler: Self.name) }
        let index: Int
        if let current = state.stepIndex {
            index = current
        } else {
            index = beginIndex ?? SigmaSchedules.index(of: timestep, in: timesteps) ?? timesteps.count - 1
        }
        guard index >= 0, index + 1 < sigmas.count else {
            throw SchedulerError.invalidState("\(Self.name): step \(index) is past the end of the \(timesteps.count)-step schedule")
        }
        let count = timesteps.count
        let lowerOrderFinal = index == count - 1
            && (config.eulerAtFinal || (config.lowerOrderFinal && count < 15) || config.finalSigmasType == .zero)
        let lowerOrderSecond = index == count - 2 && config.lowerOrderFinal && count < 15

        let converted = try convertModelOutput(modelOutput, sample: sample, index: index)
        let x = try hostValues(sample)
        guard converted.count == x.count else {
            throw SchedulerError.shapeMismatch("modelOutput \(modelOutput.shape) does not fit sample \(sample.shape)")
        }
        try requireHistoryFits(state.modelOutputs, count: converted.count, scheduler: Self.name)
        state.modelOutputs.removeFirst()
        state.modelOutputs.append(converted)
        var drawn: [Float]?
        if config.algorithmType.isStochastic {
            if let noise {
                guard noise.count == converted.count else {
                    throw SchedulerError.shapeMismatch("noise \(noise.shape) does not fit sample \(sample.shape)")
                }
                drawn = try hostValues(noise)
            } else {
                drawn = generator.normalFloats(count: converted.count)
            }
        }
        let order = config.solverOrder
        let terms: [(Float, [Float])]
        if order == 1 || state.lowerOrderCount < 1 || lowerOrderFinal {
            terms = firstOrderTerms(index, x, converted, drawn)
        } else if order == 2 || state.lowerOrderCount < 2 || lowerOrderSecond {
            terms = try secondOrderTerms(index, x, drawn)
        } else {
            terms = try thirdOrderTerms(index, x, drawn)
        }
        if state.lowerOrderCount < order { state.lowerOrderCount += 1 }
        state.stepIndex = index + 1
        let previous = linearCombination(terms)
        return SchedulerOutput(prevSample: try makeTensor(previous, like: sample, dtype: modelOutput.dtype))
    }

    /// The model output as the solver needs it: x₀ for the ++ algorithms, ε otherwise.
    private func convertModelOutput(_ modelOutput: Tensor, sample: Tensor, index: Int) throws -> [Float] {
        var output = modelOutput
        if config.varianceType != nil && config.predictionType == .epsilon {
            guard output.rank >= 2, output.shape[1] >= 3 else {
                throw SchedulerError.shapeMismatch("a learned-variance model output needs at least 3 channels, got \(output.shape)")
            }
            output = try output.narrowed(axis: 1, start: 0, length: 3)
        }
        let m = try hostValues(output), x = try hostValues(sample)
        guard m.count == x.count else {
            throw SchedulerError.shapeMismatch("modelOutput \(output.shape) does not fit sample \(sample.shape)")
        }
        let (alphaT, sigmaT) = alphaSigma(sigmas[index])
        let threshold = { (values: [Float]) throws -> [Float] in
            try dynamicThreshold(values, shape: sample.shape, ratio: self.config.dynamicThresholdingRatio,
                                 maxValue: self.config.sampleMaxValue)
        }
        if config.algorithmType.predictsData {
            var x0: [Float]
            switch config.predictionType {
            case .epsilon: x0 = elementwise(x, m) { ($0 - sigmaT * $1) / alphaT }
            case .sample: x0 = m
            case .vPrediction: x0 = elementwise(x, m) { alphaT * $0 - sigmaT * $1 }
            case .flowPrediction:
                let s = sigmas[index]
                x0 = elementwise(x, m) { $0 - s * $1 }
            }
            if config.thresholding { x0 = try threshold(x0) }
            return x0
        }
        var epsilon: [Float]
        switch config.predictionType {
        case .epsilon: epsilon = m
        case .sample: epsilon = elementwise(x, m) { ($0 - alphaT * $1) / sigmaT }
        case .vPrediction: epsilon = elementwise(m, x) { alphaT * $0 + sigmaT * $1 }
        case .flowPrediction:
            throw SchedulerError.invalidValue(field: "prediction_type", value: "'flow_prediction'",
                                              expected: "'epsilon', 'sample' or 'v_prediction'", path: config.sourcePath)
        }
        if config.thresholding {
            var x0 = elementwise(x, epsilon) { ($0 - sigmaT * $1) / alphaT }
            x0 = try threshold(x0)
            epsilon = elementwise(x, x0) { ($0 - alphaT * $1) / sigmaT }
        }
        return epsilon
    }

    private func firstOrderTerms(_ i: Int, _ x: [Float], _ m: [Float], _ noise: [Float]?) -> [(Float, [Float])] {
        let t = alphaSigma(sigmas[i + 1]), s = alphaSigma(sigmas[i])
        let h = lambda(t) - lambda(s)
        switch config.algorithmType {
        case .dpmsolverPlusPlus:
            return [(t.sigma / s.sigma, x), (-(t.alpha * (Foundation.exp(-h) - 1)), m)]
        case .dpmsolver:
            return [(t.alpha / s.alpha, x), (-(t.sigma * (Foundation.exp(h) - 1)), m)]
        case .sdeDpmsolverPlusPlus:
            return [(t.sigma / s.sigma * Foundation.exp(-h), x), (t.alpha * (1 - Foundation.exp(-2 * h)), m),
                    (t.sigma * (1 - Foundation.exp(-2 * h)).squareRoot(), noise ?? [])]
        case .sdeDpmsolver:
            return [(t.alpha / s.alpha, x), (-(2 * (t.sigma * (Foundation.exp(h) - 1))), m),
                    (t.sigma * (Foundation.exp(2 * h) - 1).squareRoot(), noise ?? [])]
        }
    }

    private func history(_ back: Int) throws -> [Float] {
        let outputs = state.modelOutputs
        guard outputs.count > back, let m = outputs[outputs.count - 1 - back] else {
            throw SchedulerError.invalidState("\(Self.name): a multistep update needs \(back + 1) past model outputs")
        }
        return m
    }

    private func secondOrderTerms(_ i: Int, _ x: [Float], _ noise: [Float]?) throws -> [(Float, [Float])] {
        guard i >= 1 else { throw SchedulerError.invalidState("\(Self.name): a second-order step needs a previous step") }
        let t = alphaSigma(sigmas[i + 1]), s0 = alphaSigma(sigmas[i]), s1 = alphaSigma(sigmas[i - 1])
        let m0 = try history(0), m1 = try history(1)
        let h = lambda(t) - lambda(s0), h0 = lambda(s0) - lambda(s1)
        let r0 = h0 / h
        let inverse = 1 / r0
        let d1 = elementwise(m0, m1) { inverse * ($0 - $1) }
        let e = Foundation.exp(-h), ePlus = Foundation.exp(h), e2 = Foundation.exp(-2 * h)
        let midpoint = config.solverType == .midpoint
        switch config.algorithmType {
        case .dpmsolverPlusPlus:
            let c = t.alpha * (e - 1)
            return [(t.sigma / s0.sigma, x), (-c, m0), (midpoint ? -(0.5 * c) : t.alpha * ((e - 1) / h + 1), d1)]
        case .dpmsolver:
            let c = t.sigma * (ePlus - 1)
            return [(t.alpha / s0.alpha, x), (-c, m0), (midpoint ? -(0.5 * c) : -(t.sigma * ((ePlus - 1) / h - 1)), d1)]
        case .sdeDpmsolverPlusPlus:
            let c = t.alpha * (1 - e2)
            return [(t.sigma / s0.sigma * e, x), (c, m0),
                    (midpoint ? 0.5 * c : t.alpha * ((1 - e2) / (-2 * h) + 1), d1),
                    (t.sigma * (1 - e2).squareRoot(), noise ?? [])]
        case .sdeDpmsolver:
            let c = t.sigma * (ePlus - 1)
            return [(t.alpha / s0.alpha, x), (-(2 * c), m0),
                    (midpoint ? -c : -(2 * (t.sigma * ((ePlus - 1) / h - 1))), d1),
                    (t.sigma * (Foundation.exp(2 * h) - 1).squareRoot(), noise ?? [])]
        }
    }

    private func thirdOrderTerms(_ i: Int, _ x: [Float], _ noise: [Float]?) throws -> [(Float, [Float])] {
        guard i >= 2 else { throw SchedulerError.invalidState("\(Self.name): a third-order step needs two previous steps") }
        let t = alphaSigma(sigmas[i + 1]), s0 = alphaSigma(sigmas[i])
        let s1 = alphaSigma(sigmas[i - 1]), s2 = alphaSigma(sigmas[i - 2])
        let m0 = try history(0), m1 = try history(1), m2 = try history(2)
        let h = lambda(t) - lambda(s0), h0 = lambda(s0) - lambda(s1), h1 = lambda(s1) - lambda(s2)
        let r0 = h0 / h, r1 = h1 / h
        let inverse0 = 1 / r0, inverse1 = 1 / r1
        let d10 = elementwise(m0, m1) { inverse0 * ($0 - $1) }
        let d11 = elementwise(m1, m2) { inverse1 * ($0 - $1) }
        let weight = r0 / (r0 + r1), inverseSum = 1 / (r0 + r1)
        let d1 = elementwise(d10, d11) { $0 + weight * ($0 - $1) }
        let d2 = elementwise(d10, d11) { inverseSum * ($0 - $1) }
        let e = Foundation.exp(-h), ePlus = Foundation.exp(h), e2 = Foundation.exp(-2 * h)
        switch config.algorithmType {
        case .dpmsolverPlusPlus:
            return [(t.sigma / s0.sigma, x), (-(t.alpha * (e - 1)), m0), (t.alpha * ((e - 1) / h + 1), d1),
                    (-(t.alpha * ((e - 1 + h) / (h * h) - 0.5)), d2)]
        case .dpmsolver:
            return [(t.alpha / s0.alpha, x), (-(t.sigma * (ePlus - 1)), m0), (-(t.sigma * ((ePlus - 1) / h - 1)), d1),
                    (-(t.sigma * ((ePlus - 1 - h) / (h * h) - 0.5)), d2)]
        case .sdeDpmsolverPlusPlus:
            let twoH = 2 * h
            return [(t.sigma / s0.sigma * e, x), (t.alpha * (1 - e2), m0), (t.alpha * ((1 - e2) / (-2 * h) + 1), d1),
                    (t.alpha * ((1 - e2 - 2 * h) / (twoH * twoH) - 0.5), d2),
                    (t.sigma * (1 - e2).squareRoot(), noise ?? [])]
        case .sdeDpmsolver:
            throw SchedulerError.conflictingOptions("solver_order 3 is not available with algorithm_type 'sde-dpmsolver'")
        }
    }

    public func addNoise(original: Tensor, noise: Tensor, timesteps: [Timestep]) throws -> Tensor {
        let last = self.timesteps.count - 1
        let indices = try noiseIndices(timesteps, schedule: self.timesteps, stepIndex: state.stepIndex,
                                       beginIndex: beginIndex, scheduler: Self.name, missing: { _ in last })
        let pairs = try indices.map { index -> (alpha: Float, sigma: Float) in
            guard sigmas.indices.contains(index) else {
                throw SchedulerError.invalidState("\(Self.name): no sigma at index \(index)")
            }
            return alphaSigma(sigmas[index])
        }
        return try batchwise(original, noise, count: pairs.count) { x, e, item in
            pairs[item].alpha * x + pairs[item].sigma * e
        }
    }
}

/// Σ cᵢ·aᵢ evaluated left to right, one rounding per product and per sum, as the chained
/// tensor expressions of Diffusers compute it.
func linearCombination(_ terms: [(Float, [Float])]) -> [Float] {
    guard let first = terms.first else { return [] }
    var result = elementwise(first.1) { first.0 * $0 }
    for (coefficient, values) in terms.dropFirst() {
        result = elementwise(result, values) { $0 + coefficient * $1 }
    }
    return result
}
