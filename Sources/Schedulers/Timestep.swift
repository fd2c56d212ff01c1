import Tensor

/// A point of the diffusion schedule, in training-time units (0 = clean, `numTrainTimesteps − 1`
/// = pure noise).
///
/// PNDM, DDIM and DPM-Solver schedule integer timesteps (int64 tensors in Diffusers); the
/// Euler schedulers schedule float32 values, which are fractional with `linspace` spacing for
/// some step counts and with Karras/exponential sigmas. The UNet embeds `value` either way.
public enum Timestep: Hashable, Sendable, CustomStringConvertible {
    /// An integer timestep (int64 in Diffusers).
    case discrete(Int)
    /// A fractional timestep (float32 in Diffusers).
    case continuous(Float)

    /// The timestep as the UNet's time embedding receives it.
    public var value: Float {
        switch self {
        case .discrete(let t): return Float(t)
        case .continuous(let t): return t
        }
    }

    /// The dtype Diffusers holds this timestep in: `.i64` or `.f32`.
    public var dtype: DType {
        switch self {
        case .discrete: return .i64
        case .continuous: return .f32
        }
    }

    /// The integer value when the timestep is whole (a continuous `501.0` included).
    public var integerValue: Int? {
        switch self {
        case .discrete(let t): return t
        case .continuous(let t):
            guard t.isFinite, t.rounded(.towardZero) == t, abs(t) < 1e9 else { return nil }
            return Int(t)
        }
    }

    public var description: String {
        switch self {
        case .discrete(let t): return "\(t)"
        case .continuous(let t): return "\(t)"
        }
    }

    /// A rank-1 tensor of `timesteps` in their Diffusers dtype (`.i64` when all are discrete,
    /// else `.f32`), for the UNet's timestep input.
    public static func tensor(_ timesteps: [Timestep], device: Device = .cpu) throws -> Tensor {
        if timesteps.allSatisfy({ $0.dtype == .i64 }) {
            return try Tensor(int64: timesteps.map { Int64($0.integerValue ?? 0) }, shape: [timesteps.count], device: device)
        }
        return try Tensor(timesteps.map(\.value), shape: [timesteps.count], device: device)
    }
}
