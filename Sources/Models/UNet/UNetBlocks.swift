import NN
import Tensor

/// `CrossAttnDownBlock2D` / `DownBlock2D`: resnets (each followed by a transformer when
/// cross-attending), then an optional stride-2 downsampler. Returns the output and every
/// intermediate state the up path will concatenate.
public final class UNetDownBlock: Module, @unchecked Sendable {
    let resnets: ModuleList<ResnetBlock2D>
    public let attentions: ModuleList<Transformer2DModel>?
    let downsampler: Downsample2D?

    init(inChannels: Int, outChannels: Int, config: UNet2DConditionConfig, index: Int, addDownsample: Bool) {
        let layers = config.layersPerBlock
        resnets = ModuleList((0..<layers).map {
            ResnetBlock2D(inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                          timeEmbeddingChannels: config.timeEmbeddingDim, groups: config.normNumGroups, eps: config.normEps)
        })
        let heads = config.attentionHeads[index]
        attentions = config.downBlockTypes[index] == .crossAttention
            ? ModuleList((0..<layers).map { _ in
                Transformer2DModel(heads: heads, dimHead: outChannels / heads, inChannels: outChannels,
                                   layers: config.transformerLayersPerBlock, contextDim: config.crossAttentionDim,
                                   groups: config.normNumGroups, linearProjection: config.useLinearProjection,
                                   onlyCrossAttention: config.onlyCrossAttention)
            })
            : nil
        downsampler = addDownsample ? Downsample2D(channels: outChannels, padding: config.downsamplePadding) : nil
        super.init()
        if let attentions { child("attentions", attentions) }
        child("resnets", resnets)
        if let downsampler { child("downsamplers", ModuleList([downsampler])) }
    }

    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor) throws -> (Tensor, [Tensor]) {
        var h = x
        var states: [Tensor] = []
        for (i, resnet) in resnets.items.enumerated() {
            h = try resnet(h, timeEmbedding: timeEmbedding)
            if let attentions { h = try attentions[i](h, context: context) }
            states.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            states.append(h)
        }
        return (h, states)
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet).
public final class UNetMidBlock: Module, @unchecked Sendable {
    let resnets: ModuleList<ResnetBlock2D>
    let attentions: ModuleList<Transformer2DModel>

    init(channels: Int, config: UNet2DConditionConfig) {
        resnets = ModuleList((0..<2).map { _ in
            ResnetBlock2D(inChannels: channels, outChannels: channels, timeEmbeddingChannels: config.timeEmbeddingDim,
                          groups: config.normNumGroups, eps: config.normEps)
        })
        let heads = config.attentionHeads[config.attentionHeads.count - 1]
        attentions = ModuleList([Transformer2DModel(heads: heads, dimHead: channels / heads, inChannels: channels,
                                                    layers: config.transformerLayersPerBlock, contextDim: config.crossAttentionDim,
                                                    groups: config.normNumGroups, linearProjection: config.useLinearProjection)])
        super.init()
        child("attentions", attentions)
        child("resnets", resnets)
    }

    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor) throws -> Tensor {
        var h = try resnets[0](x, timeEmbedding: timeEmbedding)
        h = try attentions[0](h, context: context)
        return try resnets[1](h, timeEmbedding: timeEmbedding)
    }
}

/// `CrossAttnUpBlock2D` / `UpBlock2D`: each resnet takes the previous output concatenated with
/// a skip state from the down path (last first), then an optional 2× upsampler.
public final class UNetUpBlock: Module, @unchecked Sendable {
    let resnets: ModuleList<ResnetBlock2D>
    let attentions: ModuleList<Transformer2DModel>?
    let upsampler: Upsample2D?

    init(inChannels: Int, previousChannels: Int, outChannels: Int, config: UNet2DConditionConfig, index: Int, addUpsample: Bool) {
        let layers = config.layersPerBlock + 1
        resnets = ModuleList((0..<layers).map { i in
            let skip = i == layers - 1 ? inChannels : outChannels
            let input = i == 0 ? previousChannels : outChannels
            return ResnetBlock2D(inChannels: input + skip, outChannels: outChannels, timeEmbeddingChannels: config.timeEmbeddingDim,
                                 groups: config.normNumGroups, eps: config.normEps)
        })
        let reversedHeads = Array(config.attentionHeads.reversed())
        let heads = reversedHeads[index]
        attentions = config.upBlockTypes[index] == .crossAttention
            ? ModuleList((0..<layers).map { _ in
                Transformer2DModel(heads: heads, dimHead: outChannels / heads, inChannels: outChannels,
                                   layers: config.transformerLayersPerBlock, contextDim: config.crossAttentionDim,
                                   groups: config.normNumGroups, linearProjection: config.useLinearProjection,
                                   onlyCrossAttention: config.onlyCrossAttention)
            })
            : nil
        upsampler = addUpsample ? Upsample2D(channels: outChannels) : nil
        super.init()
        if let attentions { child("attentions", attentions) }
        child("resnets", resnets)
        if let upsampler { child("upsamplers", ModuleList([upsampler])) }
    }

    /// `skips` are consumed from the end.
    public func callAsFunction(_ x: Tensor, skips: inout [Tensor], timeEmbedding: Tensor, context: Tensor) throws -> Tensor {
        var h = x
        for (i, resnet) in resnets.items.enumerated() {
            guard let skip = skips.popLast() else { throw ModuleError.invalidInput("UNet up block ran out of skip connections") }
            h = try resnet(Tensor.concat([h, skip], axis: 1), timeEmbedding: timeEmbedding)
            if let attentions { h = try attentions[i](h, context: context) }
        }
        if let upsampler { h = try upsampler(h) }
        return h
    }
}
