// Branch-free scalar math that LLVM's loop vectoriser turns into AVX code when used in
// simple loops over pointers (Swift's SIMD types lower rounding, conversions and selects
// element by element, which is 40× slower). Cephes-style polynomials, within 2 ulp of libm.

/// a·b + c: one fused multiply-add where the build targets a CPU that has them (Package.swift
/// defines FUSED_MULTIPLY_ADD for Haswell and later), rounding once; two operations elsewhere,
/// where a fused one would be a library call.
@inline(__always)
func multiplyAdd(_ a: Float, _ b: Float, _ c: Float) -> Float {
    #if FUSED_MULTIPLY_ADD
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// e^x, saturating to 0 below -87.3 and to +inf above 88.7.
@inline(__always)
func fastExp(_ x0: Float) -> Float {
    let result = expInRange(Swift.min(Swift.max(x0, -87.33654), 88.72283))
    // Below the range the clamp gave e^-87.3; make it the 0 expf gives. NaN stays NaN.
    return x0 < -87.33654 ? 0 : (x0 > 88.72283 ? .infinity : (x0 != x0 ? x0 : result))
}

/// e^x for x ≤ 0 (softmax after the maximum is subtracted): fastExp without the upper clamp
/// and its selects, four operations fewer in a loop that is mostly this. -inf and anything
/// below -87.3 give 0; NaN stays NaN (the lower clamp keeps it, the arithmetic carries it).
@inline(__always)
func fastExpNonPositive(_ x0: Float) -> Float {
    let result = expInRange(Swift.max(x0, -87.33654))
    return x0 < -87.33654 ? 0 : result
}

/// e^x for x in [-87.34, 88.72]: Cephes' range reduction and polynomial, within 1 ulp of libm.
@inline(__always)
private func expInRange(_ x: Float) -> Float {
    let t = multiplyAdd(x, 1.442695041, 12582912.0)  // + 1.5·2^23 rounds to the nearest integer
    let n = t - 12582912.0
    var r = multiplyAdd(n, -0.693359375, x)
    r = multiplyAdd(n, 2.12194440e-4, r)
    var p: Float = 1.9875691500e-4
    p = multiplyAdd(p, r, 1.3981999507e-3)
    p = multiplyAdd(p, r, 8.3334519073e-3)
    p = multiplyAdd(p, r, 4.1665795894e-2)
    p = multiplyAdd(p, r, 1.6666665459e-1)
    p = multiplyAdd(p, r, 5.0000001201e-1)
    let y = multiplyAdd(p, r * r, r + 1)
    let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)  // 2^n
    return y * scale
}

@inline(__always)
func fastSigmoid(_ x: Float) -> Float { 1 / (1 + fastExp(-x)) }

@inline(__always)
func fastTanh(_ x: Float) -> Float {
    // 1 - 2/(e^{2|x|} + 1) loses relative precision near 0; a short odd polynomial covers |x| < 0.625.
    let ax = Swift.abs(x)
    let big = 1 - 2 / (fastExp(2 * ax) + 1)
    let x2 = x * x
    var small: Float = -5.70498872745e-3
    small = small * x2 + 2.06390887954e-2
    small = small * x2 - 5.37397155531e-2
    small = small * x2 + 1.33314422036e-1
    small = small * x2 - 3.33332819422e-1
    small = small * x2 * ax + ax
    let magnitude = ax < 0.625 ? small : big
    return x != x ? x : (x < 0 ? -magnitude : magnitude)
}

/// GELU with the exact (erf) form, `0.5·x·(1 + erf(x/√2))`, through erfc so that the negative
/// tail keeps its relative precision: erfc(z) = t·e^(−z² + P(t)), t = 1/(1 + z/2) (Numerical
/// Recipes' Chebyshev fit, fractional error < 1.2e-7). Within 4e-7 of the exact value over
/// [−10, 10], closer than PyTorch's own float kernel (1.1e-6).
@inline(__always)
func fastGelu(_ x: Float) -> Float {
    let z = Swift.abs(x) * 0.70710678118654752
    let t = 1 / (1 + 0.5 * z)
    var p: Float = 0.17087277
    p = multiplyAdd(p, t, -0.82215223)
    p = multiplyAdd(p, t, 1.48851587)
    p = multiplyAdd(p, t, -1.13520398)
    p = multiplyAdd(p, t, 0.27886807)
    p = multiplyAdd(p, t, -0.18628806)
    p = multiplyAdd(p, t, 0.09678418)
    p = multiplyAdd(p, t, 0.37409196)
    p = multiplyAdd(p, t, 1.00002368)
    p = multiplyAdd(p, t, -1.26551223)
    let erfc = t * fastExp(p - z * z)
    return 0.5 * x * (x < 0 ? erfc : 2 - erfc)
}

/// Sum of `n` floats with 16 partial sums (vectorised; summation order differs from a
/// plain loop by rounding only).
@inline(__always)
func vectorSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 16 <= n { acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self); i += 16 }
    var sum = acc.sum()
    while i < n { sum += p[i]; i += 1 }
    return sum
}

/// Largest of `n` floats (-inf for n = 0), with sixteen independent running maxima so
/// that the loop vectorises.
@inline(__always)
func vectorMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var lanes = (Float, Float, Float, Float, Float, Float, Float, Float,
                 Float, Float, Float, Float, Float, Float, Float, Float)(
        -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity,
        -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity)
    var i = 0
    withUnsafeMutableBytes(of: &lanes) { raw in
        guard let base = raw.baseAddress else { return }
        let m = base.assumingMemoryBound(to: Float.self)
        while i + 16 <= n {
            for k in 0..<16 { let v = p[i + k]; m[k] = v > m[k] ? v : m[k] }
            i += 16
        }
    }
    var result = -Float.infinity
    withUnsafeBytes(of: &lanes) { raw in
        for k in 0..<16 { result = Swift.max(result, raw.load(fromByteOffset: k * 4, as: Float.self)) }
    }
    while i < n { result = Swift.max(result, p[i]); i += 1 }
    return result
}
