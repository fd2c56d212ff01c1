import NN

/// The `T5Config` (and `UMT5Config`) fields the encoder uses, with transformers' names and
/// defaults. FLUX's `text_encoder_2` (google/t5-v1_1-xxl) is d_model 4096, d_kv 64, 64 heads,
/// d_ff 10240, 24 layers, "gated-gelu".
public struct T5Config: Sendable, Equatable {
    public var vocabSize = 32128
    public var dModel = 512
    /// The width of one head (`d_kv`); heads × d_kv need not equal d_model.
    public var dKV = 64
    public var dFF = 2048
    public var numLayers = 6
    /// Layers of the decoder (`num_decoder_layers`, default `num_layers`): the encoder has
    /// none, but knows their keys to ignore them in full-model checkpoints.
    public var numDecoderLayers = 6
    public var numHeads = 8
    public var relativeAttentionNumBuckets = 32
    public var relativeAttentionMaxDistance = 128
    public var layerNormEpsilon: Float = 1e-6
    public var feedForwardProj = FeedForwardProjection.relu
    /// UMT5 (`model_type` "umt5"): every block holds its own relative attention bias; T5 keeps
    /// one in block 0 and reuses it in every block.
    public var relativeAttentionBiasInEveryBlock = false

    /// `feed_forward_proj`: what `T5LayerFF` holds.
    public enum FeedForwardProjection: String, Sendable, CaseIterable {
        /// T5 v1.1: `wo(gelu_new(wi_0(x)) · wi_1(x))` (`T5DenseGatedActDense`; gelu_new is the tanh GELU).
        case gatedGelu = "gated-gelu"
        /// Original T5: `wo(relu(wi(x)))` (`T5DenseActDense`).
        case relu

        var isGated: Bool { self == .gatedGelu }
    }

    public init() {}

    /// Reads a transformers `config.json`: every size and count positive and bounded
    /// (`ModelConfig.Limits`), at least 4 buckets (2 exact offsets per direction) with
    /// `relative_attention_max_distance` above the exact range (the log buckets divide by
    /// log(max_distance / exact)), `layer_norm_epsilon` positive in float32, `feed_forward_proj`
    /// one of "gated-gelu" and "relu", an encoder config (`is_decoder` false), and the implied
    /// weights within the limits.
    public init(_ config: ModelConfig) throws {
        let c = config
        vocabSize = try c.size("vocab_size", default: vocabSize)
        dModel = try c.size("d_model", default: dModel)
        dKV = try c.size("d_kv", default: dKV)
        dFF = try c.size("d_ff", default: dFF)
        numHeads = try c.size("num_heads", default: numHeads)
        numLayers = try c.repeatCount("num_layers", default: numLayers)
        numDecoderLayers = try c.int("num_decoder_layers", in: 0...ModelConfig.Limits.repeats, default: numLayers)
        relativeAttentionNumBuckets = try c.int("relative_attention_num_buckets", in: 4...ModelConfig.Limits.size,
                                                default: relativeAttentionNumBuckets)
        relativeAttentionMaxDistance = try c.size("relative_attention_max_distance", default: relativeAttentionMaxDistance)
        layerNormEpsilon = try c.float("layer_norm_epsilon", .positive, default: layerNormEpsilon)
        let projection = try c.string("feed_forward_proj", default: feedForwardProj.rawValue)
        guard let ff = FeedForwardProjection(rawValue: projection) else {
            throw ModuleError.invalidConfig("\(c.path): feed_forward_proj '\(projection)' is not supported (only \"gated-gelu\" and \"relu\")")
        }
        feedForwardProj = ff
        relativeAttentionBiasInEveryBlock = try c.string("model_type", default: "t5") == "umt5"
        try c.require(!(try c.bool("is_decoder", default: false)),
                      "is_decoder is true: this is a decoder config, and T5EncoderModel is the bidirectional encoder")
        let exact = relativeAttentionNumBuckets / 2 / 2
        try c.require(relativeAttentionMaxDistance > exact,
                      "relative_attention_max_distance = \(relativeAttentionMaxDistance) must exceed the \(exact) exact offsets "
                          + "of relative_attention_num_buckets = \(relativeAttentionNumBuckets)")
        try c.require(ParameterTally.product(numHeads, dKV) <= ModelConfig.Limits.size,
                      "num_heads × d_kv = \(numHeads) × \(dKV) is wider than any model (limit \(ModelConfig.Limits.size))")
        try impliedParameters.checkWithinLimits(config: c.path)
    }

    /// Heads × head width: the attention's inner dimension.
    public var innerDimension: Int { numHeads * dKV }

    /// The weights `T5EncoderModel(self)` declares, counted without building it; each term
    /// mirrors a constructor in T5EncoderModel.swift, and the tests compare it with built models.
    public var impliedParameters: ParameterTally {
        let inner = ParameterTally.product(numHeads, dKV)
        var t = ParameterTally()
        t.embedding(vocabSize, dModel)
        var block = ParameterTally()
        for _ in 0..<3 { block.linear(dModel, inner, bias: false) }
        block.linear(inner, dModel, bias: false)
        block.add(shape: [dModel])
        for _ in 0..<(feedForwardProj.isGated ? 2 : 1) { block.linear(dModel, dFF, bias: false) }
        block.linear(dFF, dModel, bias: false)
        block.add(shape: [dModel])
        t.add(block, times: numLayers)
        var bias = ParameterTally()
        bias.embedding(relativeAttentionNumBuckets, numHeads)
        t.add(bias, times: relativeAttentionBiasInEveryBlock ? numLayers : 1)
        t.add(shape: [dModel])
        return t
    }
}
