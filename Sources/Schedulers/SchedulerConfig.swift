import Foundation
import NN

/// A scheduler's `scheduler_config.json`: every constructor argument of the six Diffusers
/// classes, with each class's defaults. Unknown keys are ignored; `_class_name` selects the
/// class (`kind`).
///
/// As in Diffusers' `from_config`, only the keys a file states (less those it lists in
/// `_use_default_values`) are taken from it; every other field takes the default of the class
/// being built. So reading SD 1.5's PNDM config as `.eulerDiscrete` gives `timestep_spacing`
/// `linspace` (Euler's default), exactly like `EulerDiscreteScheduler.from_config(pndm.config)`.
/// Fields a class does not use are kept but ignored by it.
public struct SchedulerConfig: Sendable, Equatable {
    /// The class to build.
    public var kind: SchedulerKind

    // Training noise schedule (all classes).
    /// Length of the training schedule T (`num_train_timesteps`).
    public var numTrainTimesteps = 1000
    /// β of the first training timestep (`beta_start`).
    public var betaStart = 0.0001
    /// β of the last training timestep (`beta_end`).
    public var betaEnd = 0.02
    /// How betas run from `betaStart` to `betaEnd` (`beta_schedule`).
    public var betaSchedule = BetaSchedule.linear
    /// Explicit training betas (bypass `betaStart`/`betaEnd`/`betaSchedule`).
    public var trainedBetas: [Double]?
    /// Rescale betas to zero terminal SNR (DDIM, Euler, Euler ancestral, DPM-Solver).
    public var rescaleBetasZeroSNR = false

    // Inference.
    /// What the model predicts (`prediction_type`).
    public var predictionType = PredictionType.epsilon
    /// How inference timesteps are spread (`timestep_spacing`; class default when absent).
    public var timestepSpacing: TimestepSpacing
    /// Added to `leading` timesteps (SD 1.x uses 1).
    public var stepsOffset = 0

    // PNDM.
    /// Skip the Runge–Kutta warm-up and run only linear multistep steps (Stable Diffusion).
    public var skipPRKSteps = false

    // PNDM and DDIM.
    /// Use ᾱ = 1 for the step after the last (else ᾱ of timestep 0). PNDM default false, DDIM true.
    public var setAlphaToOne: Bool

    // DDIM and DPM-Solver.
    /// DDIM: clip the predicted x₀ to ±`clipSampleRange`.
    public var clipSample: Bool
    /// The bound of `clipSample` (`clip_sample_range`).
    public var clipSampleRange = 1.0
    /// Dynamic thresholding of x₀ (Imagen).
    public var thresholding = false
    /// The quantile of |x₀| thresholding uses (`dynamic_thresholding_ratio`).
    public var dynamicThresholdingRatio = 0.995
    /// The largest threshold (`sample_max_value`).
    public var sampleMaxValue = 1.0

    // Euler and DPM-Solver sigma schedules.
    /// Euler: sigma interpolation between training timesteps (`interpolation_type`).
    public var interpolationType = InterpolationType.linear
    /// Karras et al.'s ρ = 7 sigma spacing (`use_karras_sigmas`).
    public var useKarrasSigmas = false
    /// Log-uniform sigma spacing (`use_exponential_sigmas`).
    public var useExponentialSigmas = false
    /// Beta-distribution sigma spacing (`use_beta_sigmas`; not implemented: an error).
    public var useBetaSigmas = false
    /// Euler: bounds for Karras/exponential sigmas (nil: the schedule's own).
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    /// Euler: training-index or `0.25·log σ` timesteps (`timestep_type`).
    public var timestepType = TimestepType.discrete
    /// The σ after the last step (`final_sigmas_type`).
    public var finalSigmasType = FinalSigmasType.zero

    // DPM-Solver.
    /// 1, 2 or 3 (`solver_order`).
    public var solverOrder = 2
    /// `algorithm_type`.
    public var algorithmType = DPMSolverAlgorithm.dpmsolverPlusPlus
    /// The second-order update (`solver_type`).
    public var solverType = DPMSolverType.midpoint
    /// Use lower-order updates for the last steps when there are fewer than 15.
    public var lowerOrderFinal = true
    /// Use a first-order update for the last step (`euler_at_final`).
    public var eulerAtFinal = false
    /// Uniform-in-log-SNR spacing (`use_lu_lambdas`).
    public var useLuLambdas = false
    /// Flow-matching sigmas σ = shift·s/(1 + (shift − 1)·s) (`use_flow_sigmas`).
    public var useFlowSigmas = false
    /// The shift of flow sigmas (`flow_shift`).
    public var flowShift = 1.0
    /// Timesteps whose λ = log(α/σ) falls below this are not used (`lambda_min_clipped`).
    public var lambdaMinClipped = -Double.infinity
    /// The model also predicts its variance (`variance_type`): only the first 3 output channels are used.
    public var varianceType: VarianceType?
    /// Resolution-dependent shifting (`use_dynamic_shifting`): flow matching shifts its sigmas
    /// by the `mu` given to `setTimesteps`; DPM-Solver does not implement it (an error).
    public var useDynamicShifting = false

    // Flow matching (FlowMatchEulerDiscrete).
    /// The fixed shift σ' = shift·σ/(1 + (shift − 1)·σ) without dynamic shifting (`shift`).
    public var shift = 1.0
    /// `calculateShift`'s μ at `baseImageSeqLen` and `maxImageSeqLen` tokens (`base_shift`, `max_shift`).
    public var baseShift = 0.5
    public var maxShift = 1.15
    /// `base_image_seq_len`, `max_image_seq_len`.
    public var baseImageSeqLen = 256
    public var maxImageSeqLen = 4096
    /// σ → 1 − σ after shifting, a final σ of 1 (`invert_sigmas`; Mochi).
    public var invertSigmas = false
    /// Stretch the shifted sigmas to end at this value (`shift_terminal`; nil or 0: off).
    public var shiftTerminal: Double?
    /// The form of dynamic shifting (`time_shift_type`).
    public var timeShiftType = TimeShiftType.exponential
    /// Each step re-noises the predicted clean sample to the next σ (`stochastic_sampling`).
    public var stochasticSampling = false

    /// The keys the source file stated (for `converted(to:)`).
    public private(set) var statedKeys: Set<String> = []
    /// The file the config was read from, named by errors found when the scheduler is made
    /// (nil for a config built in code). Not part of equality.
    public var sourcePath: String?

    /// The defaults of `kind` (Diffusers' constructor defaults for that class).
    public init(kind: SchedulerKind) {
        self.kind = kind
        timestepSpacing = kind.defaultTimestepSpacing
        setAlphaToOne = kind == .ddim
        clipSample = kind == .ddim
    }

    /// Reads a `scheduler_config.json`. `kind` overrides `_class_name` (building another class
    /// from this config, as `OtherScheduler.from_config(config)`).
    public init(contentsOf path: String, kind: SchedulerKind? = nil) throws {
        let data = try InputFile.read(path, maxBytes: 64 << 20)
        let json: JSONValue
        do {
            json = try JSONParser.parse(Array(data), allowNonFinite: true)
        } catch {
            throw CheckpointError.invalidJSON(path: path, message: "\(error)")
        }
        try self.init(json: json, path: path, kind: kind)
    }

    /// The config of a pipeline folder: `folder/scheduler/scheduler_config.json`, or
    /// `folder/scheduler_config.json` when `folder` is the scheduler folder itself.
    public init(modelFolder folder: String, kind: SchedulerKind? = nil) throws {
        let base = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        let nested = base + "/scheduler/scheduler_config.json"
        let path = FileManager.default.fileExists(atPath: nested) ? nested : base + "/scheduler_config.json"
        try self.init(contentsOf: path, kind: kind)
    }

    /// A parsed config object; `path` only labels errors.
    public init(json: JSONValue, path: String = "scheduler_config.json", kind: SchedulerKind? = nil) throws {
        let config = try ModelConfig(json: json, path: path)
        let resolved: SchedulerKind
        if let kind {
            resolved = kind
        } else if let name = config.className {
            guard let k = SchedulerKind(rawValue: name) else { throw SchedulerError.unknownClass(name: name, path: path) }
            resolved = k
        } else {
            throw SchedulerError.missingClassName(path: path)
        }
        var defaulted: Set<String> = []
        if let list = json["_use_default_values"]?.arrayValue {
            defaulted = Set(list.compactMap(\.stringValue))
        }
        self.init(kind: resolved)
        sourcePath = path
        try parse(config, skipping: defaulted)
    }

    /// This config for another class: stated keys and fields changed from the defaults carry
    /// over; the rest take `kind`'s defaults (Diffusers' `from_config` across classes).
    public func converted(to kind: SchedulerKind) -> SchedulerConfig {
        let source = SchedulerConfig(kind: self.kind)
        var result = SchedulerConfig(kind: kind)
        for field in SchedulerConfig.fields where statedKeys.contains(field.key) || field.differs(self, source) {
            field.copy(&result, self)
        }
        result.statedKeys = statedKeys
        result.sourcePath = sourcePath
        return result
    }

    /// Builds the scheduler this config describes.
    public func makeScheduler() throws -> any Scheduler {
        switch kind {
        case .pndm: return try PNDMScheduler(config: self)
        case .ddim: return try DDIMScheduler(config: self)
        case .eulerDiscrete: return try EulerDiscreteScheduler(config: self)
        case .eulerAncestralDiscrete: return try EulerAncestralDiscreteScheduler(config: self)
        case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(config: self)
        case .flowMatchEulerDiscrete: return try FlowMatchEulerDiscreteScheduler(config: self)
        }
    }

    public static func == (a: SchedulerConfig, b: SchedulerConfig) -> Bool {
        a.kind == b.kind && fields.allSatisfy { !$0.differs(a, b) }
    }
}

// MARK: - Parsing

extension SchedulerConfig {
    struct Field {
        let key: String
        let copy: (inout SchedulerConfig, SchedulerConfig) -> Void
        let differs: (SchedulerConfig, SchedulerConfig) -> Bool

        init<V: Equatable>(_ key: String, _ path: WritableKeyPath<SchedulerConfig, V>) {
            self.key = key
            copy = { $0[keyPath: path] = $1[keyPath: path] }
            differs = { $0[keyPath: path] != $1[keyPath: path] }
        }
    }

    static var fields: [Field] {
        [
            Field("num_train_timesteps", \.numTrainTimesteps), Field("beta_start", \.betaStart),
            Field("beta_end", \.betaEnd), Field("beta_schedule", \.betaSchedule),
            Field("trained_betas", \.trainedBetas), Field("rescale_betas_zero_snr", \.rescaleBetasZeroSNR),
            Field("prediction_type", \.predictionType), Field("timestep_spacing", \.timestepSpacing),
            Field("steps_offset", \.stepsOffset), Field("skip_prk_steps", \.skipPRKSteps),
            Field("set_alpha_to_one", \.setAlphaToOne), Field("clip_sample", \.clipSample),
            Field("clip_sample_range", \.clipSampleRange), Field("thresholding", \.thresholding),
            Field("dynamic_thresholding_ratio", \.dynamicThresholdingRatio),
            Field("sample_max_value", \.sampleMaxValue), Field("interpolation_type", \.interpolationType),
            Field("use_karras_sigmas", \.useKarrasSigmas), Field("use_exponential_sigmas", \.useExponentialSigmas),
            Field("use_beta_sigmas", \.useBetaSigmas), Field("sigma_min", \.sigmaMin), Field("sigma_max", \.sigmaMax),
            Field("timestep_type", \.timestepType), Field("final_sigmas_type", \.finalSigmasType),
            Field("solver_order", \.solverOrder), Field("algorithm_type", \.algorithmType),
            Field("solver_type", \.solverType), Field("lower_order_final", \.lowerOrderFinal),
            Field("euler_at_final", \.eulerAtFinal), Field("use_lu_lambdas", \.useLuLambdas),
            Field("use_flow_sigmas", \.useFlowSigmas), Field("flow_shift", \.flowShift),
            Field("lambda_min_clipped", \.lambdaMinClipped), Field("variance_type", \.varianceType),
            Field("use_dynamic_shifting", \.useDynamicShifting), Field("shift", \.shift),
            Field("base_shift", \.baseShift), Field("max_shift", \.maxShift),
            Field("base_image_seq_len", \.baseImageSeqLen), Field("max_image_seq_len", \.maxImageSeqLen),
            Field("invert_sigmas", \.invertSigmas), Field("shift_terminal", \.shiftTerminal),
            Field("time_shift_type", \.timeShiftType), Field("stochastic_sampling", \.stochasticSampling),
        ]
    }

    private mutating func parse(_ config: ModelConfig, skipping defaulted: Set<String>) throws {
        func stated(_ key: String) -> Bool {
            guard let value = config[key], !defaulted.contains(key) else { return false }
            return !value.isNull
        }
        for field in SchedulerConfig.fields where config[field.key] != nil && !defaulted.contains(field.key) {
            statedKeys.insert(field.key)
        }
        // Numbers go through `ModelConfig`'s constrained accessors (the rules every config
        // shares); their value errors become scheduler errors naming this file.
        func checked<T>(_ read: () throws -> T) throws -> T {
            do {
                return try read()
            } catch CheckpointError.configValue(let path, let key, let value, let expected) {
                throw SchedulerError.invalidValue(field: key, value: value, expected: expected, path: path)
            }
        }
        func int(_ key: String, _ target: inout Int, in range: ClosedRange<Int>) throws {
            guard stated(key) else { return }
            target = try checked { try config.int(key, in: range) }
        }
        func double(_ key: String, _ target: inout Double, _ rule: NumberRule) throws {
            guard stated(key) else { return }
            target = try checked { try config.double(key, rule) }
        }
        func bool(_ key: String, _ target: inout Bool) throws {
            if stated(key) { target = try config.bool(key) }
        }
        func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ target: inout E,
                                                         aliases: [String: E] = [:]) throws where E.RawValue == String {
            guard stated(key) else { return }
            let text = try config.string(key)
            if let value = E(rawValue: text) ?? aliases[text] { target = value; return }
            throw SchedulerError.invalidValue(field: key, value: "'\(text)'",
                                              expected: "one of " + E.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "),
                                              path: config.path)
        }

        try int("num_train_timesteps", &numTrainTimesteps, in: 1...1_000_000)
        try double("beta_start", &betaStart, .probability)
        try double("beta_end", &betaEnd, .probability)
        try choice("beta_schedule", &betaSchedule)
        if stated("trained_betas") {
            let betas = try config.doubles("trained_betas")
            if let (i, bad) = betas.enumerated().first(where: { !NumberRule.probability.admits($0.element) }) {
                throw SchedulerError.invalidValue(field: "trained_betas", value: "containing \(bad) at index \(i)",
                                                  expected: "betas in [0, 1)", path: config.path)
            }
            trainedBetas = betas
        }
        try bool("rescale_betas_zero_snr", &rescaleBetasZeroSNR)
        try choice("prediction_type", &predictionType)
        try choice("timestep_spacing", &timestepSpacing)
        try int("steps_offset", &stepsOffset, in: 0...1_000_000)
        try bool("skip_prk_steps", &skipPRKSteps)
        try bool("set_alpha_to_one", &setAlphaToOne)
        try bool("clip_sample", &clipSample)
        try double("clip_sample_range", &clipSampleRange, .nonNegative)
        try bool("thresholding", &thresholding)
        try double("dynamic_thresholding_ratio", &dynamicThresholdingRatio, .unitInterval)
        try double("sample_max_value", &sampleMaxValue, .positiveOrInfinity)
        try choice("interpolation_type", &interpolationType)
        try bool("use_karras_sigmas", &useKarrasSigmas)
        try bool("use_exponential_sigmas", &useExponentialSigmas)
        try bool("use_beta_sigmas", &useBetaSigmas)
        if stated("sigma_min") { sigmaMin = try checked { try config.optionalDouble("sigma_min", .positive) } }
        if stated("sigma_max") { sigmaMax = try checked { try config.optionalDouble("sigma_max", .positive) } }
        try choice("timestep_type", &timestepType)
        try choice("final_sigmas_type", &finalSigmasType)
        try int("solver_order", &solverOrder, in: 1...3)
        try choice("algorithm_type", &algorithmType, aliases: ["deis": .dpmsolverPlusPlus])
        try choice("solver_type", &solverType, aliases: ["logrho": .midpoint, "bh1": .midpoint, "bh2": .midpoint])
        try bool("lower_order_final", &lowerOrderFinal)
        try bool("euler_at_final", &eulerAtFinal)
        try bool("use_lu_lambdas", &useLuLambdas)
        try bool("use_flow_sigmas", &useFlowSigmas)
        try double("flow_shift", &flowShift, .positive)
        try double("lambda_min_clipped", &lambdaMinClipped, .notNaN)
        if stated("variance_type") {
            var value = VarianceType.learned
            try choice("variance_type", &value)
            varianceType = value
        }
        try bool("use_dynamic_shifting", &useDynamicShifting)
        try double("shift", &shift, .positive)
        try double("base_shift", &baseShift, .finite)
        try double("max_shift", &maxShift, .finite)
        try int("base_image_seq_len", &baseImageSeqLen, in: 1...(1 << 30))
        try int("max_image_seq_len", &maxImageSeqLen, in: 1...(1 << 30))
        try bool("invert_sigmas", &invertSigmas)
        if stated("shift_terminal") { shiftTerminal = try checked { try config.optionalDouble("shift_terminal", .probability) } }
        try choice("time_shift_type", &timeShiftType)
        try bool("stochastic_sampling", &stochasticSampling)
    }
}
