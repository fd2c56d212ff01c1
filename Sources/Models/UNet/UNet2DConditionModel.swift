import NN
import Tensor

/// Diffusers' `UNet2DConditionModel` for Stable Diffusion 1.x/2.x and XL: predicts the noise (or v)
/// of latents [B, 4, h, w] at a timestep, conditioned on text states [B, S, cross_attention_dim]
/// and, for SDXL's "text_time" addition embedding, on `AddedConditions`.
public final class UNet2DConditionModel: Module, @unchecked Sendable {
    public let config: UNet2DConditionConfig
    public let convIn: Conv2d, convOut: Conv2d, normOut: GroupNorm
    /// `time_embedding`, and `add_embedding` with `addition_embed_type: "text_time"`.
    let timeEmbeddingMLP: TimestepMLP, addEmbedding: TimestepMLP?
    public let downBlocks: ModuleList<UNetDownBlock>
    public let midBlock: UNetMidBlock
    public let upBlocks: ModuleList<UNetUpBlock>

    override public var className: String { "UNet2DConditionModel" }
    /// Diffusers' `_no_split_modules` for this class.
    override public var noSplitModuleClasses: [String] { ["BasicTransformerBlock", "ResnetBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"] }
    override public var layerwiseCastingSkipPatterns: [String] { ["norm"] }

    public init(_ config: UNet2DConditionConfig) {
        self.config = config
        let channels = config.blockOutChannels
        convIn = Conv2d(config.inChannels, channels[0], kernelSize: 3, padding: 1)
        timeEmbeddingMLP = TimestepMLP(channels[0], config.timeEmbeddingDim)
        addEmbedding = config.textTimeEmbedding.map { TimestepMLP($0.projectionClassEmbeddingsInputDim, config.timeEmbeddingDim) }
        var down: [UNetDownBlock] = []
        var output = channels[0]
        for i in channels.indices {
            let input = output
            output = channels[i]
            down.append(UNetDownBlock(inChannels: input, outChannels: output, config: config, index: i,
                                      addDownsample: i < channels.count - 1))
        }
        downBlocks = ModuleList(down)
        midBlock = UNetMidBlock(channels: channels[channels.count - 1], config: config)
        let reversed = Array(channels.reversed())
        var up: [UNetUpBlock] = []
        output = reversed[0]
        for i in reversed.indices {
            let previous = output
            output = reversed[i]
            let input = reversed[min(i + 1, reversed.count - 1)]
            up.append(UNetUpBlock(inChannels: input, previousChannels: previous, outChannels: output, config: config,
                                  index: i, addUpsample: i < reversed.count - 1))
        }
        upBlocks = ModuleList(up)
        normOut = GroupNorm(groups: config.normNumGroups, channels: channels[0], eps: config.normEps)
        convOut = Conv2d(channels[0], config.outChannels, kernelSize: 3, padding: 1)
        super.init()
        child("conv_in", convIn)
        timeEmbeddingMLP.register(as: "time_embedding", in: self)
        addEmbedding?.register(as: "add_embedding", in: self)
        // Diffusers registers up_blocks (created empty) before mid_block: state-dict order, and so
        // sharding and device maps, follow that.
        child("down_blocks", downBlocks)
        child("up_blocks", upBlocks)
        child("mid_block", midBlock)
        child("conv_norm_out", normOut)
        child("conv_out", convOut)
    }

    /// The model's prediction for `sample` [B, C, h, w] at `timestep` (one value for the batch,
    /// or one per sample) given `encoderHiddenStates` [B, S, D] and, exactly when the config has
    /// an addition embedding (SDXL), `addedConditions`.
    public func callAsFunction(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor,
                               addedConditions: AddedConditions? = nil) throws -> Tensor {
        try forward(sample, timestep, encoderHiddenStates, addedConditions) { sample, timestep, encoderHiddenStates, added in
            guard sample.rank == 4, sample.shape[1] == config.inChannels else {
                throw ModuleError.invalidInput("UNet expects a sample [B, \(config.inChannels), h, w], got \(sample.shape)")
            }
            // Sizes that are not multiples of the downsampling are run as Diffusers runs them
            // (`forward_upsample_size`): each upsampler resizes to its skip's size, not 2×.
            let factor = config.downsamplingFactor
            let forwardsUpsampleSize = sample.shape[2] % factor != 0 || sample.shape[3] % factor != 0
            guard encoderHiddenStates.rank == 3, encoderHiddenStates.shape[0] == sample.shape[0],
                  encoderHiddenStates.shape[2] == config.crossAttentionDim else {
                throw ModuleError.invalidInput("UNet expects text states [\(sample.shape[0]), S, \(config.crossAttentionDim)], got \(encoderHiddenStates.shape)")
            }
            // Inputs move to where the model computes (the host, or wherever offloading put it).
            let device = executionDevice
            let context = try encoderHiddenStates.to(device)
            // The added conditions first: they are checked against the config before anything runs.
            let augmented = try addedEmbedding(added?.moved(to: device), batch: sample.shape[0], dtype: sample.dtype)   // [B, 4·C0]
            var embedding = try timeEmbedding(timestep.to(device), batch: sample.shape[0], dtype: sample.dtype)   // [B, 4·C0]
            if let augmented { embedding = try embedding + augmented }
            var h = try convIn(sample.to(device))
            var skips = [h]
            for block in downBlocks.items {
                let (out, states) = try block(h, timeEmbedding: embedding, context: context)
                h = out
                skips += states
            }
            h = try midBlock(h, timeEmbedding: embedding, context: context)
            for block in upBlocks.items {
                h = try block(h, skips: &skips, timeEmbedding: embedding, context: context, forwardsUpsampleSize: forwardsUpsampleSize)
            }
            return try convOut(normOut(h).silu())
        }
    }

    /// Sinusoidal projection of the timesteps then the two-layer MLP (`time_embedding`).
    public func timeEmbedding(_ timestep: Tensor, batch: Int, dtype: DType) throws -> Tensor {
        let steps = try perSampleValues(timestep, batch: batch, "timesteps")
        let projected = try timestepEmbedding(steps.to(.f32), dimension: config.blockOutChannels[0],
                                              flipSinToCos: config.flipSinToCos, downscaleFreqShift: config.freqShift)
        return try timeEmbeddingMLP(projected.to(dtype))
    }
}
