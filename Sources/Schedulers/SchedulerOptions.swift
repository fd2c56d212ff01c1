/// The scheduler classes this library implements, named as Diffusers' `_class_name`.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case pndm = "PNDMScheduler"
    case ddim = "DDIMScheduler"
    case eulerDiscrete = "EulerDiscreteScheduler"
    case eulerAncestralDiscrete = "EulerAncestralDiscreteScheduler"
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"
    case flowMatchEulerDiscrete = "FlowMatchEulerDiscreteScheduler"

    /// A class by its Diffusers name or a short command-line name: `pndm`, `ddim`, `euler`,
    /// `euler-a` (`euler_a`, `euler-ancestral`), `dpm++` (`dpmpp`, `dpm++2m`, `dpm-solver`,
    /// `dpm-multistep`), `flow-match` (`flow-match-euler`, `flowmatch`). Case is ignored.
    public init?(name: String) {
        if let exact = SchedulerKind(rawValue: name) { self = exact; return }
        let key = name.lowercased().replacingOccurrences(of: "_", with: "-")
        switch key {
        case "pndm", "pndmscheduler": self = .pndm
        case "ddim", "ddimscheduler": self = .ddim
        case "euler", "euler-discrete", "eulerdiscretescheduler": self = .eulerDiscrete
        case "euler-a", "euler-ancestral", "euler-ancestral-discrete", "eulerancestraldiscretescheduler":
            self = .eulerAncestralDiscrete
        case "dpm++", "dpmpp", "dpm++2m", "dpmpp-2m", "dpm++-2m", "dpm-solver", "dpmsolver", "dpm-multistep",
             "dpm-solver-multistep", "dpmsolvermultistepscheduler":
            self = .dpmSolverMultistep
        case "flow-match", "flowmatch", "flow-match-euler", "flowmatcheulerdiscretescheduler": self = .flowMatchEulerDiscrete
        default: return nil
        }
    }

    /// The one spelling the command line, its help, the README and messages use.
    public var commandLineName: String {
        switch self {
        case .pndm: return "pndm"
        case .ddim: return "ddim"
        case .eulerDiscrete: return "euler"
        case .eulerAncestralDiscrete: return "euler-a"
        case .dpmSolverMultistep: return "dpm++"
        case .flowMatchEulerDiscrete: return "flow-match"
        }
    }

    /// "pndm, ddim, euler, euler-a, dpm++, flow-match" (aliases are accepted too; see `init(name:)`).
    public static var commandLineNames: String { allCases.map(\.commandLineName).joined(separator: ", ") }

    /// Whether the class takes `use_karras_sigmas` (Diffusers: Euler, DPM-Solver++ and flow-match Euler).
    public var supportsKarrasSigmas: Bool { self == .eulerDiscrete || self == .dpmSolverMultistep || self == .flowMatchEulerDiscrete }

    /// Whether the class steps on a training noise schedule of betas (every class but flow
    /// matching, whose sigmas are the interpolation time itself).
    public var hasNoiseSchedule: Bool { self != .flowMatchEulerDiscrete }

    /// Timestep spacing when the config does not say (each class's own default).
    public var defaultTimestepSpacing: TimestepSpacing {
        switch self {
        case .pndm, .ddim: return .leading
        case .eulerDiscrete, .eulerAncestralDiscrete, .dpmSolverMultistep, .flowMatchEulerDiscrete: return .linspace
        }
    }
}

/// How training betas are laid out (`beta_schedule`).
public enum BetaSchedule: String, CaseIterable, Sendable {
    /// `linspace(beta_start, beta_end, T)`.
    case linear
    /// `linspace(√beta_start, √beta_end, T)²` (Stable Diffusion).
    case scaledLinear = "scaled_linear"
    /// The cosine schedule of Nichol & Dhariwal, betas capped at 0.999.
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// How inference timesteps are spread over the training schedule (`timestep_spacing`; table 2
/// of "Common Diffusion Noise Schedules and Sample Steps are Flawed").
public enum TimestepSpacing: String, CaseIterable, Sendable {
    case linspace, leading, trailing
}

/// What the model predicts (`prediction_type`).
public enum PredictionType: String, CaseIterable, Sendable {
    /// The added noise ε.
    case epsilon
    /// The clean sample x₀.
    case sample
    /// v = α·ε − σ·x₀ (Imagen Video, section 2.4).
    case vPrediction = "v_prediction"
    /// Flow matching velocity (DPM-Solver with flow sigmas only).
    case flowPrediction = "flow_prediction"
}

/// Flow matching: how `mu` shifts the sigmas with `use_dynamic_shifting` (`time_shift_type`):
/// σ' = e^μ/(e^μ + (1/σ − 1)) or μ/(μ + (1/σ − 1)).
public enum TimeShiftType: String, CaseIterable, Sendable {
    case exponential, linear
}

/// Euler: how sigmas between training timesteps are obtained (`interpolation_type`).
public enum InterpolationType: String, CaseIterable, Sendable {
    case linear
    case logLinear = "log_linear"
}

/// Euler: whether timesteps are training indices or `0.25·log σ` (`timestep_type`).
public enum TimestepType: String, CaseIterable, Sendable {
    case discrete, continuous
}

/// The sigma after the last step (`final_sigmas_type`).
public enum FinalSigmasType: String, CaseIterable, Sendable {
    /// σ = 0: the last step lands on the clean sample.
    case zero
    /// σ of training timestep 0.
    case sigmaMin = "sigma_min"
}

/// DPM-Solver's algorithm (`algorithm_type`; `deis` is read as `dpmsolver++`, as Diffusers does).
public enum DPMSolverAlgorithm: String, CaseIterable, Sendable {
    case dpmsolver
    case dpmsolverPlusPlus = "dpmsolver++"
    case sdeDpmsolver = "sde-dpmsolver"
    case sdeDpmsolverPlusPlus = "sde-dpmsolver++"

    /// Whether the update adds fresh noise.
    public var isStochastic: Bool { self == .sdeDpmsolver || self == .sdeDpmsolverPlusPlus }
    /// Whether the solver works on data predictions (x₀) rather than noise predictions.
    public var predictsData: Bool { self == .dpmsolverPlusPlus || self == .sdeDpmsolverPlusPlus }
}

/// DPM-Solver's second-order solver (`solver_type`; UniPC/DEIS names `logrho`, `bh1`, `bh2`
/// are read as `midpoint`, as Diffusers does).
public enum DPMSolverType: String, CaseIterable, Sendable {
    case midpoint, heun
}

/// A model that predicts its variance too (`variance_type`): its output has twice the channels.
public enum VarianceType: String, CaseIterable, Sendable {
    case learned
    case learnedRange = "learned_range"
}
