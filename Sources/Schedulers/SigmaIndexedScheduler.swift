import Tensor

// What Diffusers' `EulerDiscreteScheduler` and `EulerAncestralDiscreteScheduler` share: a σ per
// inference timestep plus a final one, a step index that advances through them
// (`_step_index`, `_begin_index`, `_init_step_index`), the model input divided by √(σ² + 1),
// and `add_noise` as x + σ·ε.

/// A scheduler whose steps walk an array of sigmas (the two Euler classes).
protocol SigmaIndexedScheduler: Scheduler {
    /// The class name used in error messages.
    static var name: String { get }
    /// σ for each timestep, plus the final σ (length `timesteps.count + 1`).
    var sigmas: [Float] { get }
    /// The step count of the current run.
    var numInferenceSteps: Int? { get set }
    /// The index of the next step in `timesteps` (nil until the first step or scaling).
    var stepIndex: Int? { get set }
    /// Where the run starts (`set_begin_index`), nil to find it from the first timestep.
    var beginIndex: Int? { get set }
}

extension SigmaIndexedScheduler {
    /// Records a new run of `count` steps (after its sigmas and timesteps are laid out): the
    /// step and begin indices are cleared, as `set_timesteps` does.
    mutating func startRun(steps count: Int) {
        numInferenceSteps = count
        stepIndex = nil
        beginIndex = nil
    }

    /// The standard deviation of the initial noise: max σ, or √(max σ² + 1) with `leading`.
    public var initNoiseSigma: Float {
        let largest = sigmas.max() ?? 0
        switch config.timestepSpacing {
        case .linspace, .trailing: return largest
        case .leading: return (largest * largest + 1).squareRoot()
        }
    }

    /// Restarts the run with the current timesteps: clears the step index (the begin index
    /// stays, as in Diffusers).
    public mutating func reset() { stepIndex = nil }

    /// Starts the next run's steps at `index` in `timesteps` (`set_begin_index`).
    public mutating func setBeginIndex(_ index: Int) { beginIndex = index }

    /// The step index, set on first use from the begin index or `timestep`'s position.
    mutating func currentIndex(for timestep: Timestep) throws -> Int {
        if let stepIndex { return stepIndex }
        if let beginIndex {
            stepIndex = beginIndex
            return beginIndex
        }
        guard let index = SigmaSchedules.index(of: timestep, in: timesteps) else {
            throw SchedulerError.timestepNotInSchedule(timestep, scheduler: Self.name)
        }
        stepIndex = index
        return index
    }

    /// (σᵢ, σᵢ₊₁), or a typed error past the end of the schedule.
    func sigmaPair(_ index: Int) throws -> (Float, Float) {
        guard index >= 0, index + 1 < sigmas.count else {
            throw SchedulerError.invalidState("\(Self.name): step \(index) is past the end of the \(timesteps.count)-step schedule")
        }
        return (sigmas[index], sigmas[index + 1])
    }

    /// `sample / √(σ² + 1)` at the current step (which this sets on first use).
    public mutating func scaleModelInput(_ sample: Tensor, timestep: Timestep) throws -> Tensor {
        let (sigma, _) = try sigmaPair(try currentIndex(for: timestep))
        let divisor = (sigma * sigma + 1).squareRoot()
        return try makeTensor(elementwise(try hostValues(sample)) { $0 / divisor }, like: sample)
    }

    /// `original + σ·noise` per batch item, σ of each timestep's position (or of the step or
    /// begin index once a begin index is set).
    public func addNoise(original: Tensor, noise: Tensor, timesteps: [Timestep]) throws -> Tensor {
        let indices = try noiseIndices(timesteps, schedule: self.timesteps, stepIndex: stepIndex,
                                       beginIndex: beginIndex, scheduler: Self.name)
        let levels = try indices.map { try sigmaPair($0).0 }
        return try batchwise(original, noise, count: levels.count) { x, e, item in x + e * levels[item] }
    }
}

/// The sigma indices Diffusers' `add_noise` uses: the timesteps' own positions, or the step
/// (then begin) index when a begin index is set.
func noiseIndices(_ timesteps: [Timestep], schedule: [Timestep], stepIndex: Int?, beginIndex: Int?,
                  scheduler: String, missing: ((Timestep) -> Int)? = nil) throws -> [Int] {
    try requireTimesteps(timesteps)
    if beginIndex != nil, let index = stepIndex ?? beginIndex {
        return [Int](repeating: index, count: timesteps.count)
    }
    return try timesteps.map { t in
        if let index = SigmaSchedules.index(of: t, in: schedule) { return index }
        if let missing { return missing(t) }
        throw SchedulerError.timestepNotInSchedule(t, scheduler: scheduler)
    }
}
