// Inference timesteps as each Diffusers class lays them out, before the class's own ordering
// and dtype conversion. All values are float64 as NumPy computes them.

enum TimestepLayout {
    /// Throws unless `1 ≤ count ≤ numTrainTimesteps`.
    static func validate(_ count: Int, numTrainTimesteps: Int) throws {
        guard count >= 1 else { throw SchedulerError.invalidStepCount(count, reason: "the step count must be at least 1") }
        guard count <= numTrainTimesteps else {
            throw SchedulerError.invalidStepCount(
                count, reason: "it is larger than num_train_timesteps (\(numTrainTimesteps)), the most the model was trained with")
        }
    }

    /// The inference timesteps of `config.timestepSpacing`, descending, after validating
    /// `count`: `linspace` over [0, T − 1] (rounded for the integer-timestep classes),
    /// `leading` plus `steps_offset`, `trailing` minus 1. The values are whole numbers except
    /// unrounded `linspace`, so each class's conversion to its timestep type is exact.
    static func spaced(_ count: Int, config: SchedulerConfig, roundingLinspace: Bool) throws -> [Double] {
        let train = config.numTrainTimesteps
        try validate(count, numTrainTimesteps: train)
        switch config.timestepSpacing {
        case .linspace:
            let points = roundingLinspace
                ? linspaceRounded(count, train)
                : ReferenceNumerics.linspace(0, Double(train - 1), count: count)
            return points.reversed()
        case .leading:
            return leading(count, train).reversed().map { $0 + Double(config.stepsOffset) }
        case .trailing:
            return trailing(count, train).map { $0 - 1 }
        }
    }

    /// `np.linspace(0, T − 1, count).round()`, ascending.
    static func linspaceRounded(_ count: Int, _ train: Int) -> [Double] {
        ReferenceNumerics.linspace(0, Double(train - 1), count: count).map(ReferenceNumerics.round)
    }

    /// `np.arange(0, count) · (T // count)`, ascending (without `steps_offset`).
    static func leading(_ count: Int, _ train: Int) -> [Double] {
        let ratio = train / count
        return (0..<count).map { Double($0 * ratio) }
    }

    /// `np.round(np.arange(T, 0, −T/count))`, descending (without the `− 1`).
    static func trailing(_ count: Int, _ train: Int, from start: Int? = nil) -> [Double] {
        let ratio = Double(train) / Double(count)
        return ReferenceNumerics.arange(Double(start ?? train), 0, step: -ratio).map(ReferenceNumerics.round)
    }
}

/// Python slicing of an array with negative bounds, as the schedulers use it.
extension Array {
    /// `self[-n:]`: the last `n` elements (all when fewer).
    func suffixPython(_ n: Int) -> [Element] { Array(suffix(Swift.max(n, 0))) }
    /// `self[:-n]`: all but the last `n` (empty when fewer).
    func dropLastPython(_ n: Int) -> [Element] { count > n ? Array(prefix(count - n)) : [] }
}
