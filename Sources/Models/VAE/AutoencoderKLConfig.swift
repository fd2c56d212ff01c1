import NN

/// `AutoencoderKL`'s config.json fields (Diffusers' names and defaults).
public struct AutoencoderKLConfig: Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var blockOutChannels = [64]
    public var layersPerBlock = 1
    public var latentChannels = 4
    public var normNumGroups = 32
    public var sampleSize = 32
    public var scalingFactor: Float = 0.18215
    public var shiftFactor: Float?
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true
    /// `force_upcast`: an f16 pipeline decodes (and encodes) with this VAE in f32 (SDXL's VAE
    /// overflows in f16). Diffusers' default is true.
    public var forceUpcast = true

    public init() {}

    /// Reads and checks a config: every size and count positive and bounded
    /// (`ModelConfig.Limits`), `scaling_factor` finite and positive (latents are divided by
    /// it), `shift_factor` finite, list lengths equal to the block count, every block's
    /// channels divisible by `norm_num_groups`, and the implied weights within the limits.
    public init(_ c: ModelConfig) throws {
        inChannels = try c.size("in_channels", default: inChannels)
        outChannels = try c.size("out_channels", default: outChannels)
        if c.contains("block_out_channels") {
            blockOutChannels = try c.ints("block_out_channels", in: 1...ModelConfig.Limits.size, count: 1...ModelConfig.Limits.levels)
        }
        layersPerBlock = try c.repeatCount("layers_per_block", default: layersPerBlock)
        latentChannels = try c.size("latent_channels", default: latentChannels)
        normNumGroups = try c.size("norm_num_groups", default: normNumGroups)
        sampleSize = try c.size("sample_size", default: sampleSize)
        scalingFactor = try c.float("scaling_factor", .positive, default: scalingFactor)
        // 0 shifts nothing (Diffusers' `latents / scaling_factor + shift_factor`), so only a
        // non-finite shift is refused.
        shiftFactor = try c.optionalFloat("shift_factor", .finite)
        useQuantConv = try c.bool("use_quant_conv", default: useQuantConv)
        usePostQuantConv = try c.bool("use_post_quant_conv", default: usePostQuantConv)
        midBlockAddAttention = try c.bool("mid_block_add_attention", default: midBlockAddAttention)
        forceUpcast = try c.bool("force_upcast", default: forceUpcast)
        for key in ["latents_mean", "latents_std"] where c[key].map({ !$0.isNull }) ?? false {
            throw ModuleError.invalidConfig("\(c.path): \(key) is not supported (latents are scaled by scaling_factor and shifted by shift_factor)")
        }
        let act = try c.string("act_fn", default: "silu")
        guard act == "silu" else { throw ModuleError.invalidConfig("\(c.path): act_fn '\(act)' is not supported (only silu)") }
        let down = c.contains("down_block_types") ? try c.strings("down_block_types") : ["DownEncoderBlock2D"]
        let up = c.contains("up_block_types") ? try c.strings("up_block_types") : ["UpDecoderBlock2D"]
        for type in down where type != "DownEncoderBlock2D" {
            throw ModuleError.invalidConfig("\(c.path): down block type '\(type)' is not supported (DownEncoderBlock2D)")
        }
        for type in up where type != "UpDecoderBlock2D" {
            throw ModuleError.invalidConfig("\(c.path): up block type '\(type)' is not supported (UpDecoderBlock2D)")
        }
        try c.require(down.count == blockOutChannels.count && up.count == blockOutChannels.count,
                      "\(down.count) down_block_types and \(up.count) up_block_types for \(blockOutChannels.count) block_out_channels")
        for (i, channels) in blockOutChannels.enumerated() {
            try c.require(channels % normNumGroups == 0,
                          "block_out_channels[\(i)] = \(channels) is not a multiple of norm_num_groups = \(normNumGroups)")
        }
        try impliedParameters.checkWithinLimits(config: c.path)
    }

    /// The weights `AutoencoderKL(self)` declares, counted without building it (the pipeline
    /// compares this with the checkpoint's headers first). Each term mirrors a constructor in
    /// VAEBlocks.swift and AutoencoderKL.swift; the tests compare it with built models.
    public var impliedParameters: ParameterTally {
        var t = ParameterTally()
        guard let first = blockOutChannels.first, let last = blockOutChannels.last else { return t }
        func stack(_ input: Int, _ output: Int, layers: Int, resample: Bool) {
            t.add(ResnetBlock2D.parameterTally(inChannels: input, outChannels: output, timeEmbeddingChannels: nil))
            t.add(ResnetBlock2D.parameterTally(inChannels: output, outChannels: output, timeEmbeddingChannels: nil), times: layers - 1)
            if resample { t.add(Downsample2D.parameterTally(channels: output)) }
        }
        func mid(_ channels: Int) {
            t.add(ResnetBlock2D.parameterTally(inChannels: channels, outChannels: channels, timeEmbeddingChannels: nil), times: 2)
            if midBlockAddAttention {
                t.add(Attention.parameterTally(queryDim: channels, heads: 1, dimHead: channels, bias: true, groupNorm: true))
            }
        }
        let count = blockOutChannels.count
        t.conv(inChannels, first, kernel: 3)
        var input = first
        for (i, output) in blockOutChannels.enumerated() {
            stack(input, output, layers: layersPerBlock, resample: i < count - 1)
            input = output
        }
        mid(last)
        t.norm(last)
        t.conv(last, ParameterTally.product(2, latentChannels), kernel: 3)
        t.conv(latentChannels, last, kernel: 3)
        mid(last)
        input = last
        for (i, output) in blockOutChannels.reversed().enumerated() {
            stack(input, output, layers: layersPerBlock + 1, resample: i < count - 1)
            input = output
        }
        t.norm(first)
        t.conv(first, outChannels, kernel: 3)
        if useQuantConv { t.conv(ParameterTally.product(2, latentChannels), ParameterTally.product(2, latentChannels), kernel: 1) }
        if usePostQuantConv { t.conv(latentChannels, latentChannels, kernel: 1) }
        return t
    }

    /// Pixels per latent along each side: 2^(number of blocks − 1).
    public var downscaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}
