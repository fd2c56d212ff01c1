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

    /// Reads a transformers `config.json` (a flat CLIPTextConfig, or a CLIPConfig's `text_config`).
    public init(_ config: ModelConfig) throws {
        let c = config
        vocabSize = try c.int("vocab_size", default: vocabSize)
        hiddenSize = try c.int("hidden_size", default: hiddenSize)
        intermediateSize = try c.int("intermediate_size", default: intermediateSize)
        projectionDim = try c.int("projection_dim", default: projectionDim)
        numHiddenLayers = try c.int("num_hidden_layers", default: numHiddenLayers)
        numAttentionHeads = try c.int("num_attention_heads", default: numAttentionHeads)
        maxPositionEmbeddings = try c.int("max_position_embeddings", default: maxPositionEmbeddings)
        layerNormEps = Float(try c.double("layer_norm_eps", default: Double(layerNormEps)))
        eosTokenId = try c.int("eos_token_id", default: eosTokenId)
        let act = try c.string("hidden_act", default: hiddenAct.rawValue)
        guard let activation = Activation(rawValue: act) else {
            throw ModuleError.invalidConfig("\(c.path): hidden_act '\(act)' is not one of quick_gelu, gelu, gelu_new, relu")
        }
        hiddenAct = activation
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw ModuleError.invalidConfig("\(c.path): hidden_size \(hiddenSize) must split evenly into \(numAttentionHeads) heads")
        }
        guard vocabSize > 0, numHiddenLayers > 0, maxPositionEmbeddings > 0, intermediateSize > 0 else {
            throw ModuleError.invalidConfig("\(c.path): sizes must be positive")
        }
    }
}
