import Foundation
import NN
import Tensor

/// Rotary position embedding over several position axes, as Diffusers' `FluxPosEmbed` builds
/// it and `apply_rotary_emb` applies it (the interleaved, GPT-J convention): each axis `a` of
/// width `d_a` contributes the frequencies `ω_j = θ^(−2j/d_a)`, j < d_a/2, and a position `p`
/// rotates the pair of channels (2j, 2j+1) by `p·ω_j`. Angles, cosines and sines are taken in
/// float64 and rounded to float32, as Diffusers does on the CPU; the rotation is applied in
/// float32 and rounded back to the input's dtype.
public struct RotaryEmbedding: @unchecked Sendable {
    /// [S, D/2] float32: the cosine and sine of each pair's angle (Diffusers repeats each twice
    /// into [S, D]; the pairs share one).
    public let cos: Tensor, sin: Tensor
    /// The positions embedded (S) and the rotated width (D).
    public let length: Int, dimension: Int

    /// Positions `ids` [S, A] (any dtype; read as float32, as `ids.float()`), one width per axis
    /// in `axesDims` (each even; they add up to the head width the embedding is applied to).
    public init(positions ids: Tensor, axesDims: [Int], theta: Double = 10000) throws {
        guard ids.rank == 2, ids.shape[1] == axesDims.count, !axesDims.isEmpty else {
            throw ModuleError.invalidInput("rotary positions must be [S, \(axesDims.count)], got \(ids.shape)")
        }
        guard axesDims.allSatisfy({ $0 > 0 && $0 % 2 == 0 }) else {
            throw ModuleError.invalidInput("rotary axis widths must be positive and even, got \(axesDims)")
        }
        let positions = try ids.to(.f32).floats()
        let (s, axes) = (ids.shape[0], axesDims.count)
        let half = axesDims.reduce(0, +) / 2
        var cosines = [Float](repeating: 0, count: s * half), sines = cosines
        var column = 0
        for (axis, width) in axesDims.enumerated() {
            // 1 / θ^(2j/d) in float64, as torch's `theta ** (arange(0, d, 2) / d)`.
            let frequencies = (0..<(width / 2)).map { 1 / Foundation.pow(theta, Double(2 * $0) / Double(width)) }
            for row in 0..<s {
                let p = Double(positions[row * axes + axis])
                for (j, omega) in frequencies.enumerated() {
                    let angle = p * omega
                    cosines[row * half + column + j] = Float(Foundation.cos(angle))
                    sines[row * half + column + j] = Float(Foundation.sin(angle))
                }
            }
            column += width / 2
        }
        cos = try Tensor(cosines, shape: [s, half], device: ids.device)
        sin = try Tensor(sines, shape: [s, half], device: ids.device)
        length = s
        dimension = 2 * half
    }

    /// Rotates `x` [B, S, H, D] (sequence on axis 1, as FLUX's attention holds queries and keys):
    /// `out_2j = x_2j·cos_j − x_2j+1·sin_j`, `out_2j+1 = x_2j+1·cos_j + x_2j·sin_j`, in float32.
    public func apply(to x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == length, x.shape[3] == dimension else {
            throw ModuleError.invalidInput("rotary embedding of \(length) positions × \(dimension) channels cannot rotate \(x.shape)")
        }
        let (b, s, h, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let pairs = try x.to(.f32).reshaped([b, s, h, d / 2, 2])                     // [B, S, H, D/2, 2]
        let even = try pairs.narrowed(axis: 4, start: 0, length: 1)
        let odd = try pairs.narrowed(axis: 4, start: 1, length: 1)
        let device = x.device
        let c = try cos.to(device).reshaped([1, s, 1, d / 2, 1]), sn = try sin.to(device).reshaped([1, s, 1, d / 2, 1])
        let rotatedEven = try even * c - odd * sn
        let rotatedOdd = try odd * c + even * sn
        return try Tensor.concat([rotatedEven, rotatedOdd], axis: 4).reshaped([b, s, h, d]).to(x.dtype)
    }
}
