import Foundation

// Noise-level (sigma) schedules shared by the Euler and DPM-Solver schedulers.

enum SigmaSchedules {
    /// The training timestep (fractional) whose log-sigma `sigma` interpolates between, as
    /// Diffusers' `_sigma_to_t` (`logSigmas` ascending, float32 as NumPy holds them).
    static func timestep(forSigma sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = Foundation.log(max(sigma, 1e-10))
        guard logSigmas.count >= 2 else { return 0 }
        // Index of the last log-sigma not above `logSigma` (0 when there is none).
        var low = 0
        for (i, value) in logSigmas.enumerated() where logSigma - Double(value) >= 0 { low = i }
        low = min(low, logSigmas.count - 2)
        let lowValue = Double(logSigmas[low]), highValue = Double(logSigmas[low + 1])
        var w = (lowValue - logSigma) / (lowValue - highValue)
        w = min(max(w, 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)
    }

    /// Karras et al. (2022) sigmas: ρ = 7 interpolation between `max` and `min`.
    static func karras(min sigmaMin: Double, max sigmaMax: Double, count: Int) -> [Double] {
        let rho = 7.0
        let ramp = ReferenceNumerics.linspace(0, 1, count: count)
        let minInverse = Foundation.pow(sigmaMin, 1 / rho), maxInverse = Foundation.pow(sigmaMax, 1 / rho)
        return ramp.map { Foundation.pow(maxInverse + $0 * (minInverse - maxInverse), rho) }
    }

    /// Log-uniform sigmas from `max` down to `min`.
    static func exponential(min sigmaMin: Double, max sigmaMax: Double, count: Int) -> [Double] {
        ReferenceNumerics.linspace(Foundation.log(sigmaMax), Foundation.log(sigmaMin), count: count).map { Foundation.exp($0) }
    }

    /// The position of `timestep` in `schedule` as Diffusers' `index_for_timestep`: the second
    /// match when the value occurs more than once (so image-to-image starting mid-schedule
    /// does not skip a sigma), nil when absent.
    static func index(of timestep: Timestep, in schedule: [Timestep]) -> Int? {
        let matches = schedule.indices.filter { schedule[$0].value == timestep.value }
        guard let first = matches.first else { return nil }
        return matches.count > 1 ? matches[1] : first
    }

    /// Throws unless at most one of the Karras/exponential/beta sigma options is on, and beta
    /// sigmas (which need SciPy's beta quantile function) are off.
    static func validateSigmaOptions(_ config: SchedulerConfig) throws {
        let chosen = [config.useKarrasSigmas, config.useExponentialSigmas, config.useBetaSigmas].filter { $0 }.count
        guard chosen <= 1 else {
            throw SchedulerError.conflictingOptions(
                "only one of use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas can be true")
        }
        if config.useBetaSigmas {
            throw SchedulerError.unsupported(field: "use_beta_sigmas", reason: "beta-distributed sigmas are not implemented")
        }
    }
}
