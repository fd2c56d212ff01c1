/// Element types a tensor can hold. Names follow PyTorch (`float8_e4m3fn` → `.f8e4m3fn`).
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32, f16, bf16, f8e4m3fn, f8e5m2, i64, i32, u8, bool

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .f8e4m3fn, .f8e5m2, .u8, .bool: return 1
        case .i64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f8e4m3fn, .f8e5m2: return true
        case .i64, .i32, .u8, .bool: return false
        }
    }

    /// Types the compute kernels operate in directly (fp8 is a storage format only).
    public var isComputeType: Bool { self == .f32 || self == .bf16 || self == .f16 }

    public var description: String { rawValue }

    /// Parses user-facing names: `f32`, `float32`, `bf16`, `bfloat16`, `fp16`, `f8e4m3`, ...
    public init?(name: String) {
        switch name.lowercased() {
        case "f32", "fp32", "float32", "float": self = .f32
        case "f16", "fp16", "float16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "f8e4m3", "f8e4m3fn", "fp8e4m3", "float8_e4m3fn", "fp8": self = .f8e4m3fn
        case "f8e5m2", "fp8e5m2", "float8_e5m2": self = .f8e5m2
        case "i64", "int64", "long": self = .i64
        case "i32", "int32", "int": self = .i32
        case "u8", "uint8": self = .u8
        case "bool": self = .bool
        default: return nil
        }
    }
}
