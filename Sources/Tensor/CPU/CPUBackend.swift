/// The reference backend: Swift SIMD kernels for pointwise and normalisation work,
/// oneDNN for matmul and convolution.
public struct CPUBackend: Backend {
    public static let shared = CPUBackend()
    /// Elements converted to f32 at a time by the kernels that work in f32 on narrow inputs.
    static let block = 4096

    static func sameDevice(_ tensors: Tensor?..., op: String) throws -> Device {
        let present = tensors.compactMap { $0 }
        guard let device = present.first?.device else { throw TensorError.invalidArgument("\(op) needs an operand") }
        for t in present where t.device != device {
            throw TensorError.invalidArgument("\(op) got operands on \(device) and \(t.device); move them to one device first")
        }
        return device
    }

    static func requireCompute(_ t: Tensor, _ op: String) throws {
        guard t.dtype.isComputeType else { throw TensorError.unsupportedDType(operation: op, dtype: t.dtype) }
    }

    /// The dtype two operands compute in: f32 unless both share a narrower float type.
    static func resultType(_ a: DType, _ b: DType) -> DType { a == b ? a : .f32 }
}

/// Per-thread f32 scratch for converting narrow rows.
struct F32Scratch {
    let pointer: UnsafeMutablePointer<Float>
    init(_ count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    func free() { pointer.deallocate() }
}

/// Points at `count` f32 values of a run: the source itself when it is contiguous f32,
/// otherwise a converted copy in `scratch`.
@inline(__always)
func f32Run(_ src: UnsafeRawPointer, stride: Int, dtype: DType, count: Int,
            scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
    if dtype == .f32 && stride == 1 { return src.assumingMemoryBound(to: Float.self) }
    convertRun(src, stride, dtype, UnsafeMutableRawPointer(scratch), .f32, count)
    return UnsafePointer(scratch)
}
