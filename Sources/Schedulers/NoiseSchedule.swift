/// The training noise schedule every scheduler starts from: βₜ, αₜ = 1 − βₜ and
/// ᾱₜ = ∏ αₛ, in float32 as Diffusers computes them (PyTorch's `linspace` and `cumprod`).
public struct NoiseSchedule: Sendable, Equatable {
    public let betas: [Float]
    public let alphas: [Float]
    /// ᾱₜ (`alphas_cumprod`).
    public let alphasCumprod: [Float]

    /// The schedule of `config` (`beta_schedule`, `trained_betas`, `rescale_betas_zero_snr`).
    /// - Parameter terminalFloor: set ᾱ of the last timestep to 2⁻²⁴ after a zero-SNR rescale
    ///   (the Euler and DPM-Solver schedulers do, so that their sigmas stay finite).
    /// - Parameter allowRescale: whether the class has `rescale_betas_zero_snr` (PNDM has not).
    public init(config: SchedulerConfig, terminalFloor: Bool, allowRescale: Bool = true) throws {
        let count = config.numTrainTimesteps
        let path = config.sourcePath
        guard (1...1_000_000).contains(count) else {
            throw SchedulerError.invalidValue(field: "num_train_timesteps", value: "\(count)", expected: "an integer in 1...1000000", path: path)
        }
        guard config.stepsOffset >= 0 else {
            throw SchedulerError.invalidValue(field: "steps_offset", value: "\(config.stepsOffset)", expected: "an integer ≥ 0", path: path)
        }
        // The field a bad schedule is blamed on: the explicit betas, else the generated ones' end.
        let field = config.trainedBetas == nil ? "beta_end" : "trained_betas"
        var betas: [Float]
        if let trained = config.trainedBetas {
            guard trained.count == count else {
                throw SchedulerError.invalidValue(field: "trained_betas", value: "\(trained.count) values",
                                                  expected: "num_train_timesteps (\(count)) values", path: path)
            }
            betas = trained.map { Float($0) }
        } else {
            switch config.betaSchedule {
            case .linear:
                betas = ReferenceNumerics.torchLinspace(config.betaStart, config.betaEnd, count: count)
            case .scaledLinear:
                betas = ReferenceNumerics.torchLinspace(config.betaStart.squareRoot(), config.betaEnd.squareRoot(), count: count)
                    .map { $0 * $0 }
            case .squaredcosCapV2:
                betas = ReferenceNumerics.cosineBetas(count: count)
            }
        }
        // Configs built in code skip the parser's checks: every beta must be a probability
        // here too (NaN would otherwise flow into every sigma).
        if let (i, bad) = betas.enumerated().first(where: { !($0.element >= 0 && $0.element < 1) }) {
            throw SchedulerError.invalidValue(field: field, value: "a schedule with beta \(bad) at timestep \(i)",
                                              expected: "betas in [0, 1)", path: path)
        }
        // A schedule whose last ᾱ is 1 adds no noise: every sigma is 0 and sampling would
        // return its input unchanged (beta_start = beta_end = 0, or betas below float32's
        // resolution). The zero-SNR rescale also divides by √ᾱ₀ − √ᾱ_T, so it needs ᾱ to fall.
        let rescale = allowRescale && config.rescaleBetasZeroSNR
        let unscaled = ReferenceNumerics.cumulativeProduct(betas.map { 1 - $0 })
        guard let lastUnscaled = unscaled.last, let firstUnscaled = unscaled.first, lastUnscaled < 1,
              !rescale || lastUnscaled < firstUnscaled else {
            let described = config.trainedBetas == nil
                ? "\(config.betaEnd) with beta_start \(config.betaStart) (\(config.betaSchedule.rawValue))" : "\(count) values"
            throw SchedulerError.invalidValue(field: field, value: described,
                                              expected: rescale ? "betas that make alphas_cumprod fall (rescale_betas_zero_snr divides by the fall)"
                                                  : "a schedule that adds noise (some beta above 0 in float32)", path: path)
        }
        if rescale { betas = NoiseSchedule.rescaledToZeroTerminalSNR(betas) }
        alphas = betas.map { 1 - $0 }
        var cumulative = rescale ? ReferenceNumerics.cumulativeProduct(alphas) : unscaled
        if rescale && terminalFloor, !cumulative.isEmpty { cumulative[cumulative.count - 1] = 1.0 / 16_777_216 }
        guard cumulative.allSatisfy({ $0 > 0 && $0 <= 1 && $0.isFinite }) || rescale else {
            throw SchedulerError.invalidValue(field: field, value: "a schedule whose cumulative alpha reaches 0",
                                              expected: "betas that keep every alphas_cumprod above 0", path: path)
        }
        // After a rescale, ᾱ_T = 0 is the point (DDIM keeps it, Euler floors it); anything
        // non-finite is not.
        guard cumulative.allSatisfy({ $0 >= 0 && $0 <= 1 && $0.isFinite }) else {
            throw SchedulerError.invalidValue(field: "rescale_betas_zero_snr", value: "true",
                                              expected: "a rescaled schedule with every alphas_cumprod in [0, 1]", path: path)
        }
        self.betas = betas
        self.alphasCumprod = cumulative
    }

    /// σₜ = √((1 − ᾱₜ)/ᾱₜ), the noise level of each training timestep (ascending).
    public var sigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }

    /// The σ after the last inference step (`final_sigmas_type`): 0, or the smallest training
    /// σ, √((1 − ᾱ₀)/ᾱ₀).
    func finalSigma(_ type: FinalSigmasType) -> Float {
        switch type {
        case .zero: return 0
        case .sigmaMin:
            let a = alphasCumprod[0]
            return ((1 - a) / a).squareRoot()
        }
    }

    /// `rescale_zero_terminal_snr` (Lin et al. 2023, algorithm 1) in float32.
    static func rescaledToZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let cumulative = ReferenceNumerics.cumulativeProduct(betas.map { 1 - $0 })
        var root = cumulative.map { $0.squareRoot() }
        guard let first = root.first, let last = root.last else { return betas }
        let scale = first / (first - last)
        root = root.map { ($0 - last) * scale }
        let bar = root.map { $0 * $0 }
        var alphas = [bar[0]]
        for i in 1..<bar.count { alphas.append(bar[i] / bar[i - 1]) }
        return alphas.map { 1 - $0 }
    }
}
