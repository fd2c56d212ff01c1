// Reading and writing single elements of any dtype, for the generic (non-hot) paths:
// conversions between unusual pairs, small tensors, tests.

@inline(__always)
func loadFloat(_ p: UnsafeRawPointer, _ i: Int, _ dtype: DType) -> Float {
    switch dtype {
    case .f32: return p.load(fromByteOffset: i * 4, as: Float.self)
    case .f16: return float(fromF16: p.load(fromByteOffset: i * 2, as: UInt16.self))
    case .bf16: return float(fromBF16: p.load(fromByteOffset: i * 2, as: UInt16.self))
    case .f8e4m3fn: return float(fromF8E4M3FN: p.load(fromByteOffset: i, as: UInt8.self))
    case .f8e5m2: return float(fromF8E5M2: p.load(fromByteOffset: i, as: UInt8.self))
    case .i64: return Float(p.load(fromByteOffset: i * 8, as: Int64.self))
    case .i32: return Float(p.load(fromByteOffset: i * 4, as: Int32.self))
    case .u8: return Float(p.load(fromByteOffset: i, as: UInt8.self))
    case .bool: return p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
    }
}

@inline(__always)
func loadInt(_ p: UnsafeRawPointer, _ i: Int, _ dtype: DType) -> Int64 {
    switch dtype {
    case .i64: return p.load(fromByteOffset: i * 8, as: Int64.self)
    case .i32: return Int64(p.load(fromByteOffset: i * 4, as: Int32.self))
    case .u8: return Int64(p.load(fromByteOffset: i, as: UInt8.self))
    case .bool: return p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
    default: return truncatingToInt64(loadFloat(p, i, dtype))
    }
}

/// Float → Int64 truncating toward zero; NaN and out-of-range values give Int64.min,
/// as the x86 conversion PyTorch relies on does.
@inline(__always)
func truncatingToInt64(_ v: Float) -> Int64 {
    guard v.isFinite, v >= -9.223372e18, v < 9.223372e18 else { return Int64.min }
    return Int64(v.rounded(.towardZero))
}

@inline(__always)
func storeFloat(_ v: Float, _ p: UnsafeMutableRawPointer, _ i: Int, _ dtype: DType) {
    switch dtype {
    case .f32: p.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
    case .f16: p.storeBytes(of: f16Bits(from: v), toByteOffset: i * 2, as: UInt16.self)
    case .bf16: p.storeBytes(of: bf16Bits(from: v), toByteOffset: i * 2, as: UInt16.self)
    case .f8e4m3fn: p.storeBytes(of: f8e4m3fnBits(from: v), toByteOffset: i, as: UInt8.self)
    case .f8e5m2: p.storeBytes(of: f8e5m2Bits(from: v), toByteOffset: i, as: UInt8.self)
    case .bool: p.storeBytes(of: v != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self)
    case .i64, .i32, .u8: storeInt(truncatingToInt64(v), p, i, dtype)
    }
}

@inline(__always)
func storeInt(_ v: Int64, _ p: UnsafeMutableRawPointer, _ i: Int, _ dtype: DType) {
    switch dtype {
    case .i64: p.storeBytes(of: v, toByteOffset: i * 8, as: Int64.self)
    case .i32: p.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: i * 4, as: Int32.self)
    case .u8: p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
    case .bool: p.storeBytes(of: v != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self)
    default: storeFloat(Float(v), p, i, dtype)
    }
}

/// Copies `count` elements from `src` (element stride `srcStride`) to contiguous `dst`,
/// converting dtype. Hot pairs have dedicated loops; the rest go element by element.
func convertRun(_ src: UnsafeRawPointer, _ srcStride: Int, _ from: DType,
                _ dst: UnsafeMutableRawPointer, _ to: DType, _ count: Int) {
    if from == to {
        let size = from.itemSize
        if srcStride == 1 { dst.copyMemory(from: src, byteCount: count * size); return }
        switch size {
        case 4:
            let s = src.assumingMemoryBound(to: UInt32.self), d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { d[i] = s[i * srcStride] }
        case 2:
            let s = src.assumingMemoryBound(to: UInt16.self), d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { d[i] = s[i * srcStride] }
        case 8:
            let s = src.assumingMemoryBound(to: UInt64.self), d = dst.assumingMemoryBound(to: UInt64.self)
            for i in 0..<count { d[i] = s[i * srcStride] }
        default:
            let s = src.assumingMemoryBound(to: UInt8.self), d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { d[i] = s[i * srcStride] }
        }
        return
    }
    if srcStride == 1 {
        switch (from, to) {
        case (.f32, .bf16):
            let s = src.assumingMemoryBound(to: Float.self), d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { d[i] = bf16Bits(from: s[i]) }
            return
        case (.bf16, .f32):
            let s = src.assumingMemoryBound(to: UInt16.self), d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { d[i] = UInt32(s[i]) << 16 }
            return
        case (.f32, .f16):
            let s = src.assumingMemoryBound(to: Float.self), d = dst.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { d[i] = Float16(s[i]) }
            return
        case (.f16, .f32):
            let s = src.assumingMemoryBound(to: Float16.self), d = dst.assumingMemoryBound(to: Float.self)
            for i in 0..<count { d[i] = Float(s[i]) }
            return
        case (.f8e4m3fn, .f32), (.f8e5m2, .f32), (.f8e4m3fn, .bf16), (.f8e5m2, .bf16):
            // Layerwise casting's upcast: 256 possible values, so a table lookup per byte (every
            // float8 value is exact in f32 and in bf16, whose bits are the f32 bits' top half).
            let table = from == .f8e4m3fn ? f8e4m3fnToF32Bits : f8e5m2ToF32Bits
            let s = src.assumingMemoryBound(to: UInt8.self)
            table.withUnsafeBufferPointer { t in
                if to == .f32 {
                    let d = dst.assumingMemoryBound(to: UInt32.self)
                    for i in 0..<count { d[i] = t[Int(s[i])] }
                } else {
                    let d = dst.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<count { d[i] = UInt16(truncatingIfNeeded: t[Int(s[i])] >> 16) }
                }
            }
            return
        default: break
        }
    }
    // Floats go through Float (to bool too: 0.5 is true, not truncated to 0).
    if to.isFloatingPoint || (to == .bool && from.isFloatingPoint) {
        for i in 0..<count { storeFloat(loadFloat(src, i * srcStride, from), dst, i, to) }
    } else {
        for i in 0..<count { storeInt(loadInt(src, i * srcStride, from), dst, i, to) }
    }
}

/// The f32 bits of each float8_e4m3fn / float8_e5m2 byte, from the scalar conversions.
let f8e4m3fnToF32Bits: [UInt32] = (0...255).map { float(fromF8E4M3FN: UInt8($0)).bitPattern }
let f8e5m2ToF32Bits: [UInt32] = (0...255).map { float(fromF8E5M2: UInt8($0)).bitPattern }
