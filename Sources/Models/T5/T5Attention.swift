import Foundation
import NN
import Tensor

/// transformers' `T5Attention` as the encoder uses it: bidirectional self-attention with no
/// 1/√d scaling, whose scores get a learned bias per head and bucketed relative position
/// (`relative_attention_bias`, held by the first block only in T5, by every block in UMT5).
public final class T5Attention: Module, AttentionLayer, @unchecked Sendable {
    public let heads: Int
    public let headDimension: Int
    public let q: Linear, k: Linear, v: Linear, o: Linear
    /// [buckets, heads]; nil in the blocks that reuse the first block's bias.
    public let relativeAttentionBias: Embedding?
    let numBuckets: Int, maxDistance: Int
    var kernel: AttentionKernel = .auto

    init(_ config: T5Config, hasRelativeAttentionBias: Bool) {
        heads = config.numHeads
        headDimension = config.dKV
        numBuckets = config.relativeAttentionNumBuckets
        maxDistance = config.relativeAttentionMaxDistance
        let inner = config.innerDimension
        q = Linear(config.dModel, inner, bias: false)
        k = Linear(config.dModel, inner, bias: false)
        v = Linear(config.dModel, inner, bias: false)
        o = Linear(inner, config.dModel, bias: false)
        relativeAttentionBias = hasRelativeAttentionBias ? Embedding(config.relativeAttentionNumBuckets, config.numHeads) : nil
        super.init()
        child("q", q)
        child("k", k)
        child("v", v)
        child("o", o)
        if let relativeAttentionBias { child("relative_attention_bias", relativeAttentionBias) }
    }

    override public var className: String { "T5Attention" }

    /// Self-attention over `x` [B, S, D]. `positionBias` is the additive score bias a previous
    /// block returned ([1 or B, H, S, S], f32, the padding mask already in it); without one the
    /// bias is computed here from `relative_attention_bias` (zeros when there is none) and
    /// `keep` (per batch row and key, whether it may be attended; nil: all). Returns the output
    /// [B, S, D] and the bias used, for the next blocks.
    func callAsFunction(_ x: Tensor, positionBias: Tensor?, keep: [Bool]?) throws -> (output: Tensor, positionBias: Tensor?) {
        try forward(x, positionBias) { x, positionBias in
            let (b, s) = (x.shape[0], x.shape[1])
            func split(_ t: Tensor) throws -> Tensor { try t.reshaped([b, s, heads, headDimension]).transposed(1, 2) }  // [B, H, S, d]
            let query = try split(q(x)), key = try split(k(x)), value = try split(v(x))
            var bias = positionBias
            if bias == nil {
                bias = try computeBias(length: s, batch: b, keep: keep, device: query.device)
            }
            let attended = try scaledDotProductAttention(query: query, key: key, value: value, mask: bias?.to(query.device),
                                                         scale: 1, kernel: kernel)           // [B, H, S, d]
            let output = try o(attended.transposed(1, 2).reshaped([b, s, heads * headDimension]))  // [B, S, D]
            return (output, bias)
        }
    }

    /// The score bias [1 or B, H, S, S] in f32: `E[bucket(j − i), h]` (the embedding's values,
    /// exact in f32 whatever its dtype), with −float32.max wherever `keep` says key j of a row is
    /// padding (transformers' `torch.where(mask, position_bias, finfo.min)`). Nil when there is
    /// neither a bias table nor a mask.
    func computeBias(length s: Int, batch: Int, keep: [Bool]?, device: Device) throws -> Tensor? {
        let table: [Float]?
        if let relativeAttentionBias {
            table = try relativeAttentionBias.weight.tensor("relative_attention_bias.weight").floats()   // [buckets, H]
        } else {
            table = nil
        }
        if table == nil && keep == nil { return nil }
        let h = heads
        // The bucket of each offset j − i in −(S−1)...(S−1).
        let buckets = (0..<max(2 * s - 1, 0)).map {
            T5Attention.relativePositionBucket($0 - (s - 1), bidirectional: true, numBuckets: numBuckets, maxDistance: maxDistance)
        }
        let rows = keep == nil ? 1 : batch
        var values = [Float](repeating: 0, count: rows * h * s * s)
        values.withUnsafeMutableBufferPointer { out in
            for row in 0..<rows {
                for head in 0..<h {
                    let base = (row * h + head) * s * s
                    for i in 0..<s {
                        for j in 0..<s {
                            if let keep, !keep[row * s + j] {
                                out[base + i * s + j] = -Float.greatestFiniteMagnitude
                            } else if let table {
                                out[base + i * s + j] = table[buckets[j - i + s - 1] * h + head]
                            }
                        }
                    }
                }
            }
        }
        return try Tensor(values, shape: [rows, h, s, s], device: device)
    }

    /// transformers' `T5Attention._relative_position_bucket` for one relative position
    /// (key position − query position): with `bidirectional`, half the buckets per direction
    /// (+half for positive offsets); in each, offsets below half of them are their own bucket,
    /// larger ones share log-spaced buckets up to `maxDistance`, computed in float32 and
    /// truncated as PyTorch does: `exact + Int(log(n / exact) / log(maxDistance / exact) · (count − exact))`,
    /// capped at the last bucket. `numBuckets` ≥ 4 and `maxDistance` above the exact range
    /// (what `T5Config` requires); outside that the result is only kept within the buckets.
    public static func relativePositionBucket(_ relativePosition: Int, bidirectional: Bool = true,
                                              numBuckets: Int = 32, maxDistance: Int = 128) -> Int {
        var count = numBuckets
        var bucket = 0
        let n: Int
        if bidirectional {
            count /= 2
            if relativePosition > 0 { bucket += count }
            n = Int(clamping: relativePosition.magnitude)
        } else {
            n = relativePosition < 0 ? Int(clamping: relativePosition.magnitude) : 0
        }
        let exact = count / 2
        if n < exact { return bucket + n }
        // float32 throughout, as torch computes `log(n.float() / exact) / math.log(...) * (count - exact)`.
        let logRange = Float(Foundation.log(Double(maxDistance) / Double(exact)))
        let scaled = Foundation.log(Float(n) / Float(exact)) / logRange * Float(count - exact)
        let steps = scaled.isNaN ? 0 : Int(min(max(scaled, 0), Float(count)).rounded(.towardZero))
        return bucket + max(min(exact + steps, count - 1), 0)
    }
}
