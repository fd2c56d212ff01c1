/// Errors from scheduler configuration and use. Every message names the field, value or call
/// at fault. (Malformed JSON and values of the wrong JSON type are reported by `NN`'s
/// `CheckpointError`, which names the file and key.)
public enum SchedulerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `_class_name` names a scheduler this library does not implement.
    case unknownClass(name: String, path: String?)
    /// The config has no `_class_name` and no class was chosen explicitly.
    case missingClassName(path: String?)
    /// A field holds a value outside what Diffusers accepts (an unknown enum member, a count
    /// out of range, a schedule that adds no noise, ...); `path` is the config file when the
    /// config came from one.
    case invalidValue(field: String, value: String, expected: String, path: String? = nil)
    /// A field selects a Diffusers feature this library does not implement.
    case unsupported(field: String, reason: String)
    /// Two settings that cannot be used together.
    case conflictingOptions(String)
    /// `setTimesteps` was given a step count it cannot honour.
    case invalidStepCount(Int, reason: String)
    /// `step`, `scaleModelInput` or `addNoise` before `setTimesteps`.
    case timestepsNotSet(scheduler: String)
    /// A timestep that is not in the current schedule.
    case timestepNotInSchedule(Timestep, scheduler: String)
    /// A timestep outside the training schedule `0..<numTrainTimesteps`.
    case timestepOutOfRange(Timestep, numTrainTimesteps: Int)
    /// Tensors whose shapes do not fit together.
    case shapeMismatch(String)
    /// A call that the scheduler's state does not allow (e.g. PLMS steps before PRK warm-up).
    case invalidState(String)
    /// An argument outside its domain (e.g. an image-to-image strength above 1).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .unknownClass(name, path):
            return "\(path.map { "\($0): " } ?? "")unknown scheduler class '\(name)' (known: "
                + SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case let .missingClassName(path):
            return "\(path.map { "\($0): " } ?? "")the scheduler config has no _class_name"
        case let .invalidValue(field, value, expected, path):
            return "\(path.map { "\($0): " } ?? "")scheduler config field '\(field)' is \(value); expected \(expected)"
        case let .unsupported(field, reason):
            return "scheduler config field '\(field)': \(reason)"
        case let .conflictingOptions(message):
            return message
        case let .invalidStepCount(count, reason):
            return "cannot set \(count) inference steps: \(reason)"
        case let .timestepsNotSet(scheduler):
            return "\(scheduler): call setTimesteps before stepping"
        case let .timestepNotInSchedule(timestep, scheduler):
            return "\(scheduler): timestep \(timestep) is not in the current schedule"
        case let .timestepOutOfRange(timestep, count):
            return "timestep \(timestep) is outside the training schedule 0..<\(count)"
        case let .shapeMismatch(message):
            return "shape mismatch: \(message)"
        case let .invalidState(message):
            return message
        case let .invalidArgument(message):
            return message
        }
    }
}
