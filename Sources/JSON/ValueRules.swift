/// What a configuration number must be. Every config reader (NN's `ModelConfig`, the scheduler
/// config, the tokenizer configuration) checks its numbers against these rules, so that an
/// epsilon, a factor or a size means the same thing wherever it is read; each reader then throws
/// its own error naming its file and key. The rules live here, below every reader, because the
/// tokenizers do not depend on NN.
///
/// NaN and ±Infinity reach these checks: Python's `json` writes them and configs are parsed
/// with `allowNonFinite`, so "a number" is never taken to mean "a finite number".
public enum NumberRule: Sendable, Equatable {
    /// Any finite number (a shift, an offset).
    case finite
    /// Finite and above 0: an epsilon added under a square root, a factor that latents are
    /// divided by, a divisor.
    case positive
    /// Finite and at least 0.
    case nonNegative
    /// In [0, 1): a noise-schedule beta.
    case probability
    /// In [0, 1]: a ratio or quantile.
    case unitInterval
    /// Above 0, +Infinity allowed: an upper bound where Infinity means none.
    case positiveOrInfinity
    /// Any number but NaN: a lower bound where -Infinity means none.
    case notNaN

    /// Whether `value` meets the rule.
    public func admits(_ value: Double) -> Bool {
        switch self {
        case .positiveOrInfinity: return value > 0
        case .notNaN: return !value.isNaN
        default: break
        }
        guard value.isFinite else { return false }
        switch self {
        case .finite: return true
        case .positive: return value > 0
        case .nonNegative: return value >= 0
        case .probability: return value >= 0 && value < 1
        case .unitInterval: return value >= 0 && value <= 1
        case .positiveOrInfinity, .notNaN: return true
        }
    }

    /// Whether `value`, narrowed to float32 as the models compute with it, still meets the rule
    /// (1e-50 is a positive Double but 0 in float32, 1e300 is finite but infinite there).
    public func admitsAsFloat(_ value: Double) -> Bool { admits(value) && admits(Double(Float(value))) }

    /// The rule as an error message states it ("expected a finite number > 0").
    public var expectation: String {
        switch self {
        case .finite: return "a finite number"
        case .positive: return "a finite number > 0"
        case .nonNegative: return "a finite number ≥ 0"
        case .probability: return "a number in [0, 1)"
        case .unitInterval: return "a number in [0, 1]"
        case .positiveOrInfinity: return "a number > 0 (Infinity for none)"
        case .notNaN: return "a number (-Infinity for none)"
        }
    }
}

extension ClosedRange where Bound == Int {
    /// The range as an error message states it ("an integer in 1...1024").
    public var expectation: String { "an integer in \(lowerBound)...\(upperBound)" }
}
