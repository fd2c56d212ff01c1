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
        resnets = ModuleList((0..<layers).map { config.resnet(inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels) })
        let depth = config.downTransformerDepth(index)
        attentions = config.downBlockTypes[index] == .crossAttention
            ? ModuleList((0..<layers).map { j in
                config.transformer(channels: outChannels, heads: config.attentionHeads[index], layers: depth.layers(at: j),
                                   onlyCrossAttention: config.onlyCrossAttention)
            })
            : nil
        downsampler = addDownsample ? Downsample2D(channels: outChannels, padding: config.downsamplePadding) : nil
        super.init()
        if let attentions { child("attentions", attentions) }
        child("resnets", resnets)
        if let downsampler { child("downsamplers", ModuleList([downsampler])) }
    }

    override public var className: String { attentions == nil ? "DownBlock2D" : "CrossAttnDownBlock2D" }

    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor) throws -> (Tensor, [Tensor]) {
        try forward(x, timeEmbedding, context) { x, timeEmbedding, context in
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
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet).
public final class UNetMidBlock: Module, @unchecked Sendable {
    let resnets: ModuleList<ResnetBlock2D>
    let attentions: ModuleList<Transformer2DModel>

    init(channels: Int, config: UNet2DConditionConfig) {
        resnets = ModuleList((0..<2).map { _ in config.resnet(inChannels: channels, outChannels: channels) })
        // Diffusers' mid-block ignores only_cross_attention.
        attentions = ModuleList([config.transformer(channels: channels, heads: config.attentionHeads[config.attentionHeads.count - 1],
                                                    layers: config.midTransformerLayers, onlyCrossAttention: false)])
        super.init()
        child("attentions", attentions)
        child("resnets", resnets)
    }

    override public var className: String { "UNetMidBlock2DCrossAttn" }

    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor) throws -> Tensor {
        try forward(x, timeEmbedding, context) { x, timeEmbedding, context in
            var h = try resnets[0](x, timeEmbedding: timeEmbedding)
            h = try attentions[0](h, context: context)
            return try resnets[1](h, timeEmbedding: timeEmbedding)
        }
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
            return config.resnet(inChannels: input + skip, outChannels: outChannels)
        })
        let heads = config.attentionHeads[config.attentionHeads.count - 1 - index]   // heads run in reverse on the way up
        let depth = config.upTransformerDepth(index)
        attentions = config.upBlockTypes[index] == .crossAttention
            ? ModuleList((0..<layers).map { j in
                config.transformer(channels: outChannels, heads: heads, layers: depth.layers(at: j), onlyCrossAttention: config.onlyCrossAttention)
            })
            : nil
        upsampler = addUpsample ? Upsample2D(channels: outChannels) : nil
        super.init()
        if let attentions { child("attentions", attentions) }
        child("resnets", resnets)
        if let upsampler { child("upsamplers", ModuleList([upsampler])) }
    }

    override public var className: String { attentions == nil ? "UpBlock2D" : "CrossAttnUpBlock2D" }

    /// `skips` are consumed from the end. With `forwardsUpsampleSize` the upsampler resizes to
    /// the next block's first skip instead of doubling (Diffusers' `upsample_size`).
    public func callAsFunction(_ x: Tensor, skips: inout [Tensor], timeEmbedding: Tensor, context: Tensor,
                               forwardsUpsampleSize: Bool = false) throws -> Tensor {
        guard skips.count >= resnets.count else { throw ModuleError.invalidInput("UNet up block ran out of skip connections") }
        // This block's skips, in the order it consumes them (last first), pass as an input so
        // that a device map's hook can move them to the block's device.
        let own = Array(skips.suffix(resnets.count).reversed())
        skips.removeLast(resnets.count)
        let upsampleSize = forwardsUpsampleSize ? skips.last.map { (height: $0.shape[2], width: $0.shape[3]) } : nil
        return try forward(x, own, timeEmbedding, context) { x, own, timeEmbedding, context in
            var h = x
            for (i, resnet) in resnets.items.enumerated() {
                let skip = own[i]
                h = try resnet(Tensor.concat([h, skip], axis: 1), timeEmbedding: timeEmbedding)
                if let attentions { h = try attentions[i](h, context: context) }
            }
            if let upsampler { h = try upsampler(h, outputSize: upsampleSize) }
            return h
        }
    }
}

extension UNet2DConditionConfig {
    /// A time-conditioned resnet with the UNet's norm settings.
    func resnet(inChannels: Int, outChannels: Int) -> ResnetBlock2D {
        ResnetBlock2D(inChannels: inChannels, outChannels: outChannels, timeEmbeddingChannels: timeEmbeddingDim,
                      groups: normNumGroups, eps: normEps)
    }

    /// A cross-attention transformer over `channels` split into `heads`, `layers` blocks deep.
    func transformer(channels: Int, heads: Int, layers: Int, onlyCrossAttention: Bool) -> Transformer2DModel {
        Transformer2DModel(heads: heads, dimHead: channels / heads, inChannels: channels, layers: layers,
                           contextDim: crossAttentionDim, groups: normNumGroups, linearProjection: useLinearProjection,
                           onlyCrossAttention: onlyCrossAttention)
    }
}

extension UNet2DConditionConfig {
    /// The weights `UNet2DConditionModel(self)` declares, counted without building it: the
    /// pipeline compares this with the checkpoint's headers before it builds the model. Each
    /// term mirrors a constructor (the model's, its blocks' and `resnet`/`transformer` above);
    /// the tests compare the count with built models.
    public var impliedParameters: ParameterTally {
        let channels = blockOutChannels, count = channels.count
        var t = ParameterTally()
        guard let first = channels.first, let last = channels.last else { return t }
        func resnet(_ input: Int, _ output: Int) -> ParameterTally {
            ResnetBlock2D.parameterTally(inChannels: input, outChannels: output, timeEmbeddingChannels: timeEmbeddingDim)
        }
        func transformer(_ channels: Int, _ heads: Int, _ layers: Int, _ onlyCross: Bool) -> ParameterTally {
            Transformer2DModel.parameterTally(heads: heads, dimHead: channels / max(heads, 1), inChannels: channels,
                                              layers: layers, contextDim: crossAttentionDim,
                                              linearProjection: useLinearProjection, onlyCrossAttention: onlyCross)
        }
        let heads = attentionHeads.count == count ? attentionHeads : Array(repeating: 1, count: count)
        t.conv(inChannels, first, kernel: 3)
        t.linear(first, timeEmbeddingDim)
        t.linear(timeEmbeddingDim, timeEmbeddingDim)
        if let textTime = textTimeEmbedding {
            t.linear(textTime.projectionClassEmbeddingsInputDim, timeEmbeddingDim)
            t.linear(timeEmbeddingDim, timeEmbeddingDim)
        }
        var output = first
        for i in 0..<count {
            let input = output
            output = channels[i]
            t.add(resnet(input, output))
            t.add(resnet(output, output), times: layersPerBlock - 1)
            if i < downBlockTypes.count, downBlockTypes[i] == .crossAttention {
                for j in 0..<layersPerBlock { t.add(transformer(output, heads[i], downTransformerDepth(i).layers(at: j), onlyCrossAttention)) }
            }
            if i < count - 1 { t.add(Downsample2D.parameterTally(channels: output)) }
        }
        t.add(resnet(last, last), times: 2)
        t.add(transformer(last, heads[count - 1], midTransformerLayers, false))
        let reversed = Array(channels.reversed())
        output = reversed[0]
        let layers = layersPerBlock + 1
        for i in 0..<count {
            let previous = output
            output = reversed[i]
            let input = reversed[min(i + 1, count - 1)]
            for j in 0..<layers {
                t.add(resnet(ParameterTally.sum(j == 0 ? previous : output, j == layers - 1 ? input : output), output))
            }
            if i < upBlockTypes.count, upBlockTypes[i] == .crossAttention {
                for j in 0..<layers { t.add(transformer(output, heads[count - 1 - i], upTransformerDepth(i).layers(at: j), onlyCrossAttention)) }
            }
            if i < count - 1 { t.add(Upsample2D.parameterTally(channels: output)) }
        }
        t.norm(first)
        t.conv(first, outChannels, kernel: 3)
        return t
    }
}
