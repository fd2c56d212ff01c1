import NN
import Tensor

/// Diffusers' `ResnetBlock2D` (time_embedding_norm "default", output_scale_factor 1):
/// norm → SiLU → conv, plus the projected time embedding, norm → SiLU → conv, plus the
/// (1×1-projected when channels change) input.
public final class ResnetBlock2D: Module, @unchecked Sendable {
    let norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d
    let timeEmbeddingProjection: Linear?
    let shortcut: Conv2d?

    public init(inChannels: Int, outChannels: Int, timeEmbeddingChannels: Int?, groups: Int, eps: Float) {
        norm1 = GroupNorm(groups: groups, channels: inChannels, eps: eps)
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1)
        timeEmbeddingProjection = timeEmbeddingChannels.map { Linear($0, outChannels) }
        norm2 = GroupNorm(groups: groups, channels: outChannels, eps: eps)
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1)
        shortcut = inChannels == outChannels ? nil : Conv2d(inChannels, outChannels, kernelSize: 1)
        super.init()
        child("norm1", norm1)
        child("conv1", conv1)
        if let projection = timeEmbeddingProjection { child("time_emb_proj", projection) }
        child("norm2", norm2)
        child("conv2", conv2)
        if let shortcut { child("conv_shortcut", shortcut) }
    }

    /// The weights `init` declares, counted without building (keep the two in step).
    public static func parameterTally(inChannels: Int, outChannels: Int, timeEmbeddingChannels: Int?) -> ParameterTally {
        var t = ParameterTally()
        t.norm(inChannels)
        t.conv(inChannels, outChannels, kernel: 3)
        if let channels = timeEmbeddingChannels { t.linear(channels, outChannels) }
        t.norm(outChannels)
        t.conv(outChannels, outChannels, kernel: 3)
        if inChannels != outChannels { t.conv(inChannels, outChannels, kernel: 1) }
        return t
    }

    /// x [B, C, H, W]; timeEmbedding [B, T] (already the UNet's embedding, before SiLU).
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor? = nil) throws -> Tensor {
        try forward(x, timeEmbedding) { x, timeEmbedding in
            var h = try conv1(norm1(x).silu())
            if let projection = timeEmbeddingProjection, let timeEmbedding {
                let t = try projection(timeEmbedding.silu())                              // [B, C]
                h = try h + t.reshaped([t.shape[0], t.shape[1], 1, 1])
            }
            h = try conv2(norm2(h).silu())
            return try (shortcut?(x) ?? x) + h
        }
    }
}

/// Diffusers' `Downsample2D` with a convolution: stride-2 3×3 conv. With `padding` 0 (the
/// VAE encoder) the input is first padded by one row and column at the bottom and right.
public final class Downsample2D: Module, @unchecked Sendable {
    let conv: Conv2d

    public init(channels: Int, outChannels: Int? = nil, padding: Int) {
        let sides = padding == 0 ? ConvPadding(top: 0, left: 0, bottom: 1, right: 1) : ConvPadding(padding)
        conv = Conv2d(channels, outChannels ?? channels, kernelSize: 3, stride: 2, padding: sides)
        super.init()
        child("conv", conv)
    }

    /// The weights `init` declares: one 3×3 convolution.
    public static func parameterTally(channels: Int, outChannels: Int? = nil) -> ParameterTally {
        var t = ParameterTally()
        t.conv(channels, outChannels ?? channels, kernel: 3)
        return t
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try forward(x) { x in try conv(x) } }
}

/// Diffusers' `Upsample2D` with a convolution: nearest 2× then a 3×3 conv.
public final class Upsample2D: Module, @unchecked Sendable {
    let conv: Conv2d

    public init(channels: Int, outChannels: Int? = nil) {
        conv = Conv2d(channels, outChannels ?? channels, kernelSize: 3, padding: 1)
        super.init()
        child("conv", conv)
    }

    /// The weights `init` declares: one 3×3 convolution.
    public static func parameterTally(channels: Int, outChannels: Int? = nil) -> ParameterTally {
        Downsample2D.parameterTally(channels: channels, outChannels: outChannels)
    }

    /// Nearest 2×, or to `outputSize` when given (`F.interpolate(size=output_size)`), then the conv.
    public func callAsFunction(_ x: Tensor, outputSize: (height: Int, width: Int)? = nil) throws -> Tensor {
        try forward(x) { x in
            guard let outputSize else { return try conv(x.upsampleNearest2x()) }
            return try conv(x.upsampleNearest(height: outputSize.height, width: outputSize.width))
        }
    }
}
