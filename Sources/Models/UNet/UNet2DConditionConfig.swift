import NN

/// `UNet2DConditionModel`'s config.json fields for the Stable Diffusion 1.x/2.x and XL families
/// (SDXL base, refiner and Turbo: the "text_time" addition embedding, per-block transformer
/// depths). Options outside them (class embeddings, other addition embeddings, dual
/// cross-attention, …) are refused with an error naming the field, rather than silently ignored.
public struct UNet2DConditionConfig: Sendable, Equatable {
    public enum DownBlock: String, Sendable { case crossAttention = "CrossAttnDownBlock2D", plain = "DownBlock2D" }
    public enum UpBlock: String, Sendable { case crossAttention = "CrossAttnUpBlock2D", plain = "UpBlock2D" }

    public var sampleSize = 64
    public var inChannels = 4
    public var outChannels = 4
    public var flipSinToCos = true
    public var freqShift: Float = 0
    public var downBlockTypes: [DownBlock] = [.crossAttention, .crossAttention, .crossAttention, .plain]
    public var upBlockTypes: [UpBlock] = [.plain, .crossAttention, .crossAttention, .crossAttention]
    public var blockOutChannels = [320, 640, 1280, 1280]
    public var layersPerBlock = 2
    public var downsamplePadding = 1
    public var normNumGroups = 32
    public var normEps: Float = 1e-5
    public var crossAttentionDim = 1280
    /// `transformer_layers_per_block`, one entry per down block (the mid block takes the last).
    public var transformerLayersPerBlock: [TransformerDepth] = [1, 1, 1, 1]
    /// `reverse_transformer_layers_per_block`: the up blocks' depths; nil means the down
    /// blocks' reversed.
    public var reverseTransformerLayersPerBlock: [TransformerDepth]?
    /// Heads per block (Diffusers reads `attention_head_dim` as the head count when
    /// `num_attention_heads` is absent — a naming quirk it keeps for compatibility).
    public var attentionHeads = [8, 8, 8, 8]
    public var useLinearProjection = false
    public var upcastAttention = false
    public var onlyCrossAttention = false
    /// `addition_embed_type: "text_time"` (SDXL), nil without an addition embedding.
    public var textTimeEmbedding: TextTimeEmbedding?

    /// SDXL's added conditioning: each of the `time_ids` through a sinusoid of
    /// `additionTimeEmbedDim`, after the pooled text embedding, into an MLP from
    /// `projectionClassEmbeddingsInputDim` to the time-embedding width.
    public struct TextTimeEmbedding: Sendable, Equatable {
        /// `addition_time_embed_dim`: the sinusoid's width per time id.
        public var additionTimeEmbedDim: Int
        /// `projection_class_embeddings_input_dim`: pooled text width + time ids × `additionTimeEmbedDim`.
        public var projectionClassEmbeddingsInputDim: Int

        public init(additionTimeEmbedDim: Int, projectionClassEmbeddingsInputDim: Int) {
            self.additionTimeEmbedDim = additionTimeEmbedDim
            self.projectionClassEmbeddingsInputDim = projectionClassEmbeddingsInputDim
        }
    }

    public init() {}

    /// How many times the UNet halves its input along each side and doubles it back:
    /// 2^(number of blocks − 1); a sample's height and width must be multiples of it.
    public var downsamplingFactor: Int { 1 << (blockOutChannels.count - 1) }

    /// Reads and checks a config: every size and count positive and bounded
    /// (`ModelConfig.Limits`), `norm_eps` finite and positive in float32, list lengths equal to
    /// the block count, every block's channels divisible by `norm_num_groups` and by its head
    /// count — all before anything divides by them — and the implied weights within the limits.
    public init(_ c: ModelConfig) throws {
        sampleSize = try c.size("sample_size", default: sampleSize)
        inChannels = try c.size("in_channels", default: inChannels)
        outChannels = try c.size("out_channels", default: outChannels)
        flipSinToCos = try c.bool("flip_sin_to_cos", default: flipSinToCos)
        freqShift = try c.float("freq_shift", .finite, default: 0)
        if c.contains("block_out_channels") {
            blockOutChannels = try c.ints("block_out_channels", in: 1...ModelConfig.Limits.size, count: 1...ModelConfig.Limits.levels)
        }
        let blocks = blockOutChannels.count
        if c.contains("down_block_types") {
            downBlockTypes = try c.strings("down_block_types").map { name in
                guard let type = DownBlock(rawValue: name) else {
                    throw ModuleError.invalidConfig("\(c.path): down block type '\(name)' is not supported (CrossAttnDownBlock2D, DownBlock2D)")
                }
                return type
            }
        }
        if c.contains("up_block_types") {
            upBlockTypes = try c.strings("up_block_types").map { name in
                guard let type = UpBlock(rawValue: name) else {
                    throw ModuleError.invalidConfig("\(c.path): up block type '\(name)' is not supported (CrossAttnUpBlock2D, UpBlock2D)")
                }
                return type
            }
        }
        try c.require(downBlockTypes.count == blocks && upBlockTypes.count == blocks,
                      "\(downBlockTypes.count) down_block_types and \(upBlockTypes.count) up_block_types for \(blocks) block_out_channels")
        let mid = try c.optionalString("mid_block_type") ?? "UNetMidBlock2DCrossAttn"
        guard mid == "UNetMidBlock2DCrossAttn" else {
            throw ModuleError.invalidConfig("\(c.path): mid block type '\(mid)' is not supported (UNetMidBlock2DCrossAttn)")
        }
        layersPerBlock = try c.repeatCount("layers_per_block", default: layersPerBlock)
        // 0 pads the downsampler's input by one row and column on the far sides, 1 all round;
        // more only adds border, and an unbounded padding would size activations from the file.
        downsamplePadding = try c.int("downsample_padding", in: 0...2, default: downsamplePadding)
        normNumGroups = try c.size("norm_num_groups", default: normNumGroups)
        normEps = try c.float("norm_eps", .positive, default: normEps)
        crossAttentionDim = try c.size("cross_attention_dim", default: crossAttentionDim)
        try readTransformerLayers(c)
        useLinearProjection = try c.bool("use_linear_projection", default: false)
        upcastAttention = try c.bool("upcast_attention", default: false)
        onlyCrossAttention = try c.bool("only_cross_attention", default: false)
        let headsKey = c["num_attention_heads"].map({ !$0.isNull }) ?? false ? "num_attention_heads" : "attention_head_dim"
        attentionHeads = try c.perBlock(headsKey, in: 1...ModelConfig.Limits.size, count: blocks, default: 8)
        try refuse(c, "act_fn", unless: "silu")
        try refuse(c, "resnet_time_scale_shift", unless: "default")
        try refuse(c, "time_embedding_type", unless: "positional")
        try readAdditionEmbedding(c)
        for key in ["class_embed_type", "encoder_hid_dim", "encoder_hid_dim_type", "time_cond_proj_dim",
                    "num_class_embeds", "cross_attention_norm", "time_embedding_act_fn", "timestep_post_act", "time_embedding_dim",
                    "mid_block_only_cross_attention"]
        where c[key].map({ !$0.isNull }) ?? false {
            throw ModuleError.invalidConfig("\(c.path): \(key) is not supported for Stable Diffusion 1.x/2.x/XL UNets")
        }
        for key in ["dual_cross_attention", "center_input_sample", "resnet_skip_time_act", "class_embeddings_concat"]
        where try c.bool(key, default: false) {
            throw ModuleError.invalidConfig("\(c.path): \(key) is not supported for Stable Diffusion 1.x/2.x/XL UNets")
        }
        try refuse(c, "attention_type", unless: "default")
        guard try c.double("resnet_out_scale_factor", default: 1) == 1, try c.double("mid_block_scale_factor", default: 1) == 1 else {
            throw ModuleError.invalidConfig("\(c.path): output scale factors other than 1 are not supported")
        }
        for key in ["conv_in_kernel", "conv_out_kernel"] where try c.int(key, default: 3) != 3 {
            throw ModuleError.invalidConfig("\(c.path): \(key) other than 3 is not supported")
        }
        for (i, channels) in blockOutChannels.enumerated() {
            try c.require(channels % normNumGroups == 0,
                          "block_out_channels[\(i)] = \(channels) is not a multiple of norm_num_groups = \(normNumGroups)")
            try c.require(channels % attentionHeads[i] == 0,
                          "block_out_channels[\(i)] = \(channels) does not split into \(headsKey) = \(attentionHeads[i]) heads")
        }
        // The timestep sinusoid spreads block_out_channels[0] / 2 frequencies over
        // (that half − freq_shift): none, or a zero spread, would divide by zero.
        let half = blockOutChannels[0] / 2
        try c.require(half >= 1 && Float(half) != freqShift,
                      "block_out_channels[0] = \(blockOutChannels[0]) leaves no timestep frequencies with freq_shift = \(freqShift)")
        try impliedParameters.checkWithinLimits(config: c.path)
    }

    /// `addition_embed_type`: absent, null or "text_time", which needs `addition_time_embed_dim`
    /// (with at least one frequency beside `freq_shift`) and `projection_class_embeddings_input_dim`.
    private mutating func readAdditionEmbedding(_ c: ModelConfig) throws {
        guard let type = try c.optionalString("addition_embed_type") else { return }
        guard type == "text_time" else {
            throw ModuleError.invalidConfig("\(c.path): addition_embed_type '\(type)' is not supported (text_time)")
        }
        let dim = try c.size("addition_time_embed_dim")
        let input = try c.size("projection_class_embeddings_input_dim")
        try c.require(dim / 2 >= 1 && Float(dim / 2) != freqShift,
                      "addition_time_embed_dim = \(dim) leaves no time-id frequencies with freq_shift = \(freqShift)")
        textTimeEmbedding = TextTimeEmbedding(additionTimeEmbedDim: dim, projectionClassEmbeddingsInputDim: input)
    }

    private func refuse(_ c: ModelConfig, _ key: String, unless expected: String) throws {
        let value = try c.string(key, default: expected)
        guard value == expected else { throw ModuleError.invalidConfig("\(c.path): \(key) '\(value)' is not supported (\(expected))") }
    }

    /// Channels of the timestep embedding MLP's output.
    public var timeEmbeddingDim: Int { blockOutChannels[0] * 4 }
}
