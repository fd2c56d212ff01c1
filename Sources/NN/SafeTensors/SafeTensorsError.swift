/// Everything that can be wrong with a safetensors file or a request made of one. Every
/// case names the file, and the tensor when one is at fault.
public enum SafeTensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case isDirectory(path: String)
    /// open/stat/mmap/read/write failed; `message` is the system's reason.
    case io(path: String, message: String)
    case emptyFile(path: String)
    /// Shorter than the 8-byte header length.
    case fileTooSmall(path: String, size: Int)
    case headerTooLarge(path: String, length: UInt64)
    /// The header length points past the end of the file.
    case headerPastEnd(path: String, length: UInt64, fileSize: Int)
    case headerNotUTF8(path: String)
    /// The header does not start with `{` or is not a JSON object.
    case headerNotObject(path: String)
    case invalidHeaderJSON(path: String, message: String)
    case duplicateTensor(path: String, name: String)
    /// A tensor entry lacks a field or has one of the wrong JSON type or value.
    case invalidEntry(path: String, tensor: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case invalidMetadata(path: String, reason: String)
    /// `begin > end`, or the element count times the bit width overflows.
    case invalidOffsets(path: String, tensor: String, begin: Int, end: Int, reason: String)
    case byteCountMismatch(path: String, tensor: String, dtype: SafeTensorsDType, shape: [Int], expected: Int, actual: Int)
    case overlappingTensors(path: String, tensor: String, other: String)
    /// Bytes between two tensors (or before the first) that no tensor covers.
    case gapBeforeTensor(path: String, tensor: String, expectedBegin: Int, begin: Int)
    /// A tensor ends past the data buffer: the file is truncated or the offsets are wrong.
    case dataPastEnd(path: String, tensor: String, end: Int, dataSize: Int)
    case trailingBytes(path: String, dataEnd: Int, dataSize: Int)
    case tensorNotFound(path: String, name: String)
    /// The file holds the tensor in a dtype `Tensor` cannot represent.
    case unsupportedDType(path: String, tensor: String, dtype: SafeTensorsDType)
    case invalidTensorName(path: String, name: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): return "no such file: \(path)"
        case let .isDirectory(path): return "\(path) is a directory, not a safetensors file"
        case let .io(path, message): return "cannot read or write \(path): \(message)"
        case let .emptyFile(path): return "\(path) is empty, not a safetensors file"
        case let .fileTooSmall(path, size):
            return "\(path) is \(size) bytes, too small for a safetensors file (the header length alone is 8 bytes)"
        case let .headerTooLarge(path, length):
            return "\(path) declares a \(length)-byte header, over the format's limit of 100000000 bytes"
        case let .headerPastEnd(path, length, size):
            return "\(path) declares a \(length)-byte header but the file has only \(size - 8) bytes after the length (truncated or not safetensors)"
        case let .headerNotUTF8(path): return "the header of \(path) is not valid UTF-8"
        case let .headerNotObject(path): return "the header of \(path) is not a JSON object starting with '{'"
        case let .invalidHeaderJSON(path, message): return "the header of \(path) is not valid JSON: \(message)"
        case let .duplicateTensor(path, name): return "\(path) lists tensor '\(name)' more than once in its header"
        case let .invalidEntry(path, tensor, reason): return "tensor '\(tensor)' in \(path): \(reason)"
        case let .unknownDType(path, tensor, dtype): return "tensor '\(tensor)' in \(path) has unknown dtype '\(dtype)'"
        case let .invalidMetadata(path, reason): return "__metadata__ of \(path) \(reason)"
        case let .invalidOffsets(path, tensor, begin, end, reason):
            return "tensor '\(tensor)' in \(path) has invalid data_offsets [\(begin), \(end)]: \(reason)"
        case let .byteCountMismatch(path, tensor, dtype, shape, expected, actual):
            return "tensor '\(tensor)' in \(path) covers \(actual) bytes but \(dtype) with shape \(shape) needs \(expected)"
        case let .overlappingTensors(path, tensor, other):
            return "tensors '\(other)' and '\(tensor)' in \(path) overlap in the data buffer"
        case let .gapBeforeTensor(path, tensor, expected, begin):
            return "tensor '\(tensor)' in \(path) starts at byte \(begin) of the data buffer, leaving a hole after byte \(expected)"
        case let .dataPastEnd(path, tensor, end, size):
            return "tensor '\(tensor)' in \(path) ends at byte \(end) but the data buffer has only \(size) bytes (truncated file?)"
        case let .trailingBytes(path, end, size):
            return "\(path) has \(size - end) bytes after the last tensor that no tensor covers"
        case let .tensorNotFound(path, name): return "\(path) has no tensor named '\(name)'"
        case let .unsupportedDType(path, tensor, dtype):
            return "tensor '\(tensor)' in \(path) has dtype \(dtype), which cannot be loaded as a Tensor"
        case let .invalidTensorName(path, name, reason): return "cannot write tensor '\(name)' to \(path): \(reason)"
        }
    }
}
