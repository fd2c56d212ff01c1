// Bit-exact scalar conversions between f32 and the narrow float formats, following
// PyTorch's c10 implementations (round to nearest, ties to even).

/// f32 → bf16 bits, round-to-nearest-even; NaN becomes the canonical quiet NaN.
@inlinable @inline(__always)
public func bf16Bits(from value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return 0x7FC0 }
    let rounding = UInt32(0x7FFF) &+ ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

@inlinable @inline(__always)
public func float(fromBF16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// f32 → f16 bits (IEEE binary16, round-to-nearest-even, overflow to infinity).
@inlinable @inline(__always)
public func f16Bits(from value: Float) -> UInt16 { Float16(value).bitPattern }

@inlinable @inline(__always)
public func float(fromF16 bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

/// f32 → float8_e4m3fn bits as PyTorch converts: round-to-nearest-even, saturating
/// (anything that rounds above 448, ±inf included, becomes ±448), NaN stays NaN (0x7F,
/// sign kept). The format has no infinity.
@inlinable
public func f8e4m3fnBits(from value: Float) -> UInt8 {
    var bits = value.bitPattern
    let sign = bits & 0x8000_0000
    bits ^= sign
    var result: UInt32
    let denormMask: UInt32 = 141 << 23        // 2^14: adding it aligns denormals
    if bits > 0x7F80_0000 {
        result = 0x7F                          // NaN
    } else if bits >= 0x43E8_0000 {            // ≥ 464: the tie and above round past 448
        result = 0x7E                          // saturate at 448
    } else if bits < (121 << 23) {            // below 2^-6: denormal or zero in e4m3
        let f = Float(bitPattern: bits) + Float(bitPattern: denormMask)
        result = f.bitPattern &- denormMask
    } else {
        let mantOdd = (bits >> 20) & 1
        bits = bits &+ (UInt32(bitPattern: Int32(7 - 127) << 23) &+ 0x7FFFF)  // re-bias exponent, rounding bias
        bits = bits &+ mantOdd
        result = bits >> 20
    }
    return UInt8(truncatingIfNeeded: result | (sign >> 24))
}

@inlinable
public func float(fromF8E4M3FN byte: UInt8) -> Float {
    let sign = UInt32(byte & 0x80) << 24
    let exponent = Int((byte >> 3) & 0x0F)
    let mantissa = UInt32(byte & 0x07)
    if exponent == 0x0F && mantissa == 0x07 { return Float.nan }
    let magnitude: Float
    if exponent == 0 {
        magnitude = Float(mantissa) * 0x1p-9           // denormal: m/8 · 2^-6
    } else {
        magnitude = Float(bitPattern: UInt32(exponent - 7 + 127) << 23 | mantissa << 20)
    }
    return Float(bitPattern: magnitude.bitPattern | sign)
}

/// f32 → float8_e5m2 bits as PyTorch converts (c10 `fp8e5m2_from_fp32_value`):
/// round-to-nearest-even, |x| ≥ 65536 becomes ±inf, NaN stays NaN.
@inlinable
public func f8e5m2Bits(from value: Float) -> UInt8 {
    var bits = value.bitPattern
    let sign = bits & 0x8000_0000
    bits ^= sign
    var result: UInt32
    let fp32Inf: UInt32 = 0xFF << 23
    let fp8Max: UInt32 = 143 << 23            // 65536.0
    let denormMask: UInt32 = 134 << 23
    if bits >= fp8Max {
        result = bits > fp32Inf ? 0x7F : 0x7C
    } else if bits < (113 << 23) {            // below 2^-14: denormal or zero in e5m2
        let f = Float(bitPattern: bits) + Float(bitPattern: denormMask)
        result = f.bitPattern &- denormMask
    } else {
        let mantOdd = (bits >> 21) & 1
        bits = bits &+ (UInt32(bitPattern: Int32(15 - 127) << 23) &+ 0xFFFFF)
        bits = bits &+ mantOdd
        result = bits >> 21
    }
    return UInt8(truncatingIfNeeded: result | (sign >> 24))
}

@inlinable
public func float(fromF8E5M2 byte: UInt8) -> Float {
    // e5m2 is the top byte of an f16.
    float(fromF16: UInt16(byte) << 8)
}
