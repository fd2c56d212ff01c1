import NN

/// `CLIPTextConfig` fields the text encoder uses (transformers' names and defaults).
public struct CLIPTextConfig: Sendable, Equatable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct: Activation = .quickGelu
    public var layerNormEps: Float = 1e-5
    public var eosTokenId = 49407

    public enum Activation: String, Sendable {
        case quickGelu = "quick_gelu", gelu, geluNew = "gelu_new", relu
    }

    public init() {}

    /// Reads a transformers `config.json` (a flat CLIPTextConfig, or a CLIPConfig's `text_config`),
    /// checking every size and count positive and bounded (`ModelConfig.Limits`),
    /// `layer_norm_eps` finite and positive in float32, `hidden_size` divisible by the heads, and
    /// the implied weights within the limits.
    public init(_ config: ModelConfig) throws {
        let c = config
        vocabSize = try c.size("vocab_size", default: vocabSize)
        hiddenSize = try c.size("hidden_size", default: hiddenSize)
        intermediateSize = try c.size("intermediate_size", default: intermediateSize)
        projectionDim = try c.size("projection_dim", default: projectionDim)
        numHiddenLayers = try c.repeatCount("num_hidden_layers", default: numHiddenLayers)
        numAttentionHeads = try c.size("num_attention_heads", default: numAttentionHeads)
        maxPositionEmbeddings = try c.size("max_position_embeddings", default: maxPositionEmbeddings)
        layerNormEps = try c.float("layer_norm_eps", .positive, default: layerNormEps)
        // Only compared with token ids (never an index), so any id a vocabulary can hold.
        eosTokenId = try c.int("eos_token_id", in: 0...Int(Int32.max), default: eosTokenId)
        let act = try c.string("hidden_act", default: hiddenAct.rawValue)
        guard let activation = Activation(rawValue: act) else {
            throw ModuleError.invalidConfig("\(c.path): hidden_act '\(act)' is not one of quick_gelu, gelu, gelu_new, relu")
        }
        hiddenAct = activation
        try c.require(hiddenSize % numAttentionHeads == 0,
                      "hidden_size = \(hiddenSize) does not split into num_attention_heads = \(numAttentionHeads) heads")
        try impliedParameters(withProjection: true).checkWithinLimits(config: c.path)
    }

    /// The weights `CLIPTextModel(self)` (with `withProjection`, `CLIPTextModelWithProjection`)
    /// declares, counted without building it; each term mirrors a constructor in
    /// CLIPTextModel.swift, and the tests compare it with built models.
    public func impliedParameters(withProjection: Bool = false) -> ParameterTally {
        var t = ParameterTally()
        t.embedding(vocabSize, hiddenSize)
        t.embedding(maxPositionEmbeddings, hiddenSize)
        var layer = ParameterTally()
        for _ in 0..<4 { layer.linear(hiddenSize, hiddenSize) }
        layer.norm(hiddenSize)
        layer.linear(hiddenSize, intermediateSize)
        layer.linear(intermediateSize, hiddenSize)
        layer.norm(hiddenSize)
        t.add(layer, times: numHiddenLayers)
        t.norm(hiddenSize)
        if withProjection { t.linear(hiddenSize, projectionDim, bias: false) }
        return t
    }
}
