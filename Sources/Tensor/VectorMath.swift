// Vectorised transcendental functions for the Swift kernels (Cephes-style polynomials,
// within 2 ulp of libm over the ranges the kernels use).

public typealias FloatVector = SIMD16<Float>

@inline(__always)
func vexp(_ x: FloatVector) -> FloatVector {
    let clamped = x.clamped(lowerBound: FloatVector(repeating: -87.33654), upperBound: FloatVector(repeating: 88.72283))
    let n = (clamped * 1.442695041).rounded(.toNearestOrEven)
    var r = clamped - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = FloatVector(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let y = p * r * r + r + 1
    // 2^n through the exponent bits; n is in [-126, 128] after the clamp.
    let ni = SIMD16<Int32>(n.rounded(.towardZero), rounding: .towardZero)
    let scale = SIMD16<UInt32>(truncatingIfNeeded: (ni &+ 127) &<< 23)
    let two = unsafeBitCast(scale, to: FloatVector.self)
    var result = y * two
    // Very small inputs underflow to 0 as expf does; the clamp kept them finite.
    result.replace(with: 0, where: x .< -87.33654)
    result.replace(with: Float.infinity, where: x .> 88.72283)
    result.replace(with: x, where: x .!= x)  // NaN stays NaN
    return result
}

@inline(__always)
func vsigmoid(_ x: FloatVector) -> FloatVector { 1 / (1 + vexp(-x)) }

@inline(__always)
func vtanh(_ x: FloatVector) -> FloatVector {
    // tanh(x) = 1 - 2 / (exp(2x) + 1), with the odd symmetry kept exact near zero by a
    // polynomial for small |x|.
    let ax = vabs(x)
    let e = vexp(2 * ax)
    var big = 1 - 2 / (e + 1)
    let x2 = x * x
    var small = FloatVector(repeating: -5.70498872745e-3)
    small = small * x2 + 2.06390887954e-2
    small = small * x2 - 5.37397155531e-2
    small = small * x2 + 1.33314422036e-1
    small = small * x2 - 3.33332819422e-1
    small = small * x2 * ax + ax
    big.replace(with: small, where: ax .< 0.625)
    var result = big
    result.replace(with: -big, where: x .< 0)
    result.replace(with: x, where: x .!= x)
    return result
}

@inline(__always)
func vabs(_ x: FloatVector) -> FloatVector {
    let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF
    return unsafeBitCast(bits, to: FloatVector.self)
}
