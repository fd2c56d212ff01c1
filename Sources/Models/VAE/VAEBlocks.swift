import NN
import Tensor

/// `Encoder`: conv_in, DownEncoderBlock2Ds, mid-block, norm, SiLU, conv_out to 2·latent moments.
final class VAEEncoder: Module, @unchecked Sendable {
    let convIn: Conv2d, convOut: Conv2d, normOut: GroupNorm
    let downBlocks: ModuleList<ResnetStack>
    let midBlock: VAEMidBlock

    init(_ config: AutoencoderKLConfig) {
        let channels = config.blockOutChannels, groups = config.normNumGroups
        convIn = Conv2d(config.inChannels, channels[0], kernelSize: 3, padding: 1)
        var blocks: [ResnetStack] = []
        var input = channels[0]
        for (i, output) in channels.enumerated() {
            blocks.append(ResnetStack(inChannels: input, outChannels: output, layers: config.layersPerBlock, groups: groups,
                                      resample: i == channels.count - 1 ? .none : .down))
            input = output
        }
        downBlocks = ModuleList(blocks)
        midBlock = VAEMidBlock(channels: input, groups: groups, attention: config.midBlockAddAttention)
        normOut = GroupNorm(groups: groups, channels: input, eps: 1e-6)
        convOut = Conv2d(input, 2 * config.latentChannels, kernelSize: 3, padding: 1)
        super.init()
        child("conv_in", convIn)
        child("down_blocks", downBlocks)
        child("mid_block", midBlock)
        child("conv_norm_out", normOut)
        child("conv_out", convOut)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            var h = try convIn(x)
            for block in downBlocks.items { h = try block(h) }
            h = try midBlock(h)
            return try convOut(normOut(h).silu())
        }
    }
}

/// `Decoder`: conv_in, mid-block, UpDecoderBlock2Ds (reversed channels), norm, SiLU, conv_out.
final class VAEDecoder: Module, @unchecked Sendable {
    let convIn: Conv2d, convOut: Conv2d, normOut: GroupNorm
    let upBlocks: ModuleList<ResnetStack>
    let midBlock: VAEMidBlock

    init(_ config: AutoencoderKLConfig) {
        let reversed = Array(config.blockOutChannels.reversed()), groups = config.normNumGroups
        convIn = Conv2d(config.latentChannels, reversed[0], kernelSize: 3, padding: 1)
        midBlock = VAEMidBlock(channels: reversed[0], groups: groups, attention: config.midBlockAddAttention)
        var blocks: [ResnetStack] = []
        var input = reversed[0]
        for (i, output) in reversed.enumerated() {
            blocks.append(ResnetStack(inChannels: input, outChannels: output, layers: config.layersPerBlock + 1, groups: groups,
                                      resample: i == reversed.count - 1 ? .none : .up))
            input = output
        }
        upBlocks = ModuleList(blocks)
        normOut = GroupNorm(groups: groups, channels: input, eps: 1e-6)
        convOut = Conv2d(input, config.outChannels, kernelSize: 3, padding: 1)
        super.init()
        child("conv_in", convIn)
        child("up_blocks", upBlocks)
        child("mid_block", midBlock)
        child("conv_norm_out", normOut)
        child("conv_out", convOut)
    }

    func callAsFunction(_ z: Tensor) throws -> Tensor {
        try forward(z) { z in
            var h = try midBlock(convIn(z))
            for block in upBlocks.items { h = try block(h) }
            return try convOut(normOut(h).silu())
        }
    }
}

/// `DownEncoderBlock2D` / `UpDecoderBlock2D`: resnets without time embedding, then an optional
/// downsampler (`downsamplers.0`, padding 0) or upsampler (`upsamplers.0`).
final class ResnetStack: Module, @unchecked Sendable {
    enum Resample { case none, down, up }
    let resnets: ModuleList<ResnetBlock2D>
    let downsampler: Downsample2D?
    let upsampler: Upsample2D?

    init(inChannels: Int, outChannels: Int, layers: Int, groups: Int, resample: Resample) {
        resnets = ModuleList((0..<layers).map {
            ResnetBlock2D(inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                          timeEmbeddingChannels: nil, groups: groups, eps: 1e-6)
        })
        downsampler = resample == .down ? Downsample2D(channels: outChannels, padding: 0) : nil
        upsampler = resample == .up ? Upsample2D(channels: outChannels) : nil
        super.init()
        child("resnets", resnets)
        if let downsampler { child("downsamplers", ModuleList([downsampler])) }
        if let upsampler { child("upsamplers", ModuleList([upsampler])) }
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            var h = x
            for resnet in resnets.items { h = try resnet(h) }
            if let downsampler { h = try downsampler(h) }
            if let upsampler { h = try upsampler(h) }
            return h
        }
    }
}

/// `UNetMidBlock2D` as the VAE uses it: resnet, (single-head spatial attention, resnet).
final class VAEMidBlock: Module, @unchecked Sendable {
    let resnets: ModuleList<ResnetBlock2D>
    let attention: Attention?

    init(channels: Int, groups: Int, attention addAttention: Bool) {
        resnets = ModuleList((0..<2).map { _ in
            ResnetBlock2D(inChannels: channels, outChannels: channels, timeEmbeddingChannels: nil, groups: groups, eps: 1e-6)
        })
        attention = addAttention
            ? Attention(queryDim: channels, heads: 1, dimHead: channels, bias: true, groupNorm: (groups, 1e-6), residualConnection: true)
            : nil
        super.init()
        if let attention { child("attentions", ModuleList([attention])) }
        child("resnets", resnets)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            var h = try resnets[0](x)
            if let attention { h = try attention(h) }
            return try resnets[1](h)
        }
    }
}
