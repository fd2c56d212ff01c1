import Tensor

/// Every element type the safetensors format names (`"dtype"` in the header), with its bit
/// width. Only some have a `DType` counterpart; the others can be listed but not loaded.
public enum SafeTensorsDType: String, Sendable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e4m3fnuz = "F8_E4M3FNUZ"
    case f8e5m2fnuz = "F8_E5M2FNUZ"
    case f8e8m0 = "F8_E8M0"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bits per element (F4 packs two elements per byte, F6 four per three bytes).
    public var bitWidth: Int {
        switch self {
        case .f4: return 4
        case .f6e2m3, .f6e3m2: return 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .c64, .f64, .i64, .u64: return 64
        }
    }

    /// Whether the elements are real floating-point numbers, as a model's weights must be
    /// (booleans, integers and complex numbers are not; whether a float format can be loaded
    /// is `tensorDType`'s business).
    public var isFloatingPoint: Bool {
        switch self {
        case .f4, .f6e2m3, .f6e3m2, .f8e5m2, .f8e4m3, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0, .f16, .bf16, .f32, .f64: return true
        case .bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64, .c64: return false
        }
    }

    /// Position in the format's own ordering (the declaration order of the Rust enum),
    /// which the writer sorts by, descending. `allCases` is declared in that order.
    var formatRank: Int { SafeTensorsDType.allCases.firstIndex(of: self) ?? 0 }

    /// The tensor dtype that holds these bytes unchanged, or nil when `DType` has none.
    public var tensorDType: DType? {
        switch self {
        case .bool: return .bool
        case .u8: return .u8
        case .f8e5m2: return .f8e5m2
        case .f8e4m3: return .f8e4m3fn
        case .f16: return .f16
        case .bf16: return .bf16
        case .i32: return .i32
        case .f32: return .f32
        case .i64: return .i64
        default: return nil
        }
    }

    /// The format's name for a tensor dtype.
    public init(_ dtype: DType) {
        switch dtype {
        case .bool: self = .bool
        case .u8: self = .u8
        case .f8e5m2: self = .f8e5m2
        case .f8e4m3fn: self = .f8e4m3
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .i32: self = .i32
        case .f32: self = .f32
        case .i64: self = .i64
        }
    }

    public var description: String { rawValue }
}
