/// Errors from tensor construction and operations. Every message names the value at fault.
public enum TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    case shapeMismatch(String)
    case invalidArgument(String)
    case unsupportedDType(operation: String, dtype: DType)
    case notWritable(String)
    case backend(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let message): return "shape mismatch: \(message)"
        case .invalidArgument(let message): return message
        case .unsupportedDType(let op, let dtype): return "\(op) does not support dtype \(dtype)"
        case .notWritable(let message): return "tensor is read-only: \(message)"
        case .backend(let message): return "backend error: \(message)"
        }
    }
}
