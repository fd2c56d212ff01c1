import NN
import Tensor

/// transformers' `CLIPTextModel`: token + position embeddings, pre-norm transformer layers with
/// a causal mask, final layer norm. Parameter paths equal the checkpoint's (`text_model.…`).
public final class CLIPTextModel: Module, @unchecked Sendable {
    public let config: CLIPTextConfig
    public let textModel: CLIPTextTransformer

    public init(_ config: CLIPTextConfig) {
        self.config = config
        textModel = CLIPTextTransformer(config)
        super.init()
        child("text_model", textModel)
    }

    override public var className: String { "CLIPTextModel" }
    override public var noSplitModuleClasses: [String] { CLIPTextTransformer.noSplitModuleClasses }

    /// Encodes token ids [B, S] (int) into hidden states.
    public func callAsFunction(_ ids: Tensor, outputHiddenStates: Bool = false) throws -> CLIPTextOutput {
        try forward(ids) { ids in
            try textModel(ids, outputHiddenStates: outputHiddenStates)
        }
    }

    override public func parameterPath(forCheckpointKey key: String) -> String? {
        CLIPTextTransformer.parameterPath(forCheckpointKey: key, heads: [])
    }
}

/// `CLIPTextModelWithProjection` (SDXL's `text_encoder_2`): the same text model plus
/// `text_projection` (no bias) of the pooled output, as `textEmbeds`.
public final class CLIPTextModelWithProjection: Module, @unchecked Sendable {
    public let config: CLIPTextConfig
    public let textModel: CLIPTextTransformer
    public let textProjection: Linear

    public init(_ config: CLIPTextConfig) {
        self.config = config
        textModel = CLIPTextTransformer(config)
        textProjection = Linear(config.hiddenSize, config.projectionDim, bias: false)
        super.init()
        child("text_model", textModel)
        child("text_projection", textProjection)
    }

    override public var className: String { "CLIPTextModelWithProjection" }
    override public var noSplitModuleClasses: [String] { CLIPTextTransformer.noSplitModuleClasses }

    override public func parameterPath(forCheckpointKey key: String) -> String? {
        CLIPTextTransformer.parameterPath(forCheckpointKey: key, heads: ["text_projection."])
    }

    /// The text model's outputs with `textEmbeds` = projection of the pooled output.
    public func callAsFunction(_ ids: Tensor, outputHiddenStates: Bool = false) throws -> CLIPTextOutput {
        try forward(ids) { ids in
            var output = try textModel(ids, outputHiddenStates: outputHiddenStates)
            output.textEmbeds = try textProjection(output.pooledOutput)
            return output
        }
    }
}

public struct CLIPTextOutput: @unchecked Sendable {
    /// [B, S, hidden], after the final layer norm.
    public var lastHiddenState: Tensor
    /// [B, hidden]: the state at each sequence's end-of-text token.
    public var pooledOutput: Tensor
    /// The embeddings, then each layer's output (before the final norm), when asked for.
    public var hiddenStates: [Tensor]
    /// [B, projection] for `CLIPTextModelWithProjection`.
    public var textEmbeds: Tensor?

    /// transformers' `hidden_states[-k]` (k ≥ 1, asked for with `outputHiddenStates`): 1 is the
    /// last layer's output, 2 the penultimate (SDXL's prompt embeds), `count` the embeddings;
    /// none is final-normed. SDXL's `clip_skip` c takes k = c + 2; SD 1.x/2.x's takes
    /// k = c + 1 and applies the final layer norm.
    public func hiddenState(fromEnd k: Int) throws -> Tensor {
        guard !hiddenStates.isEmpty else {
            throw ModuleError.invalidInput("hidden states were not kept: call the text model with outputHiddenStates: true")
        }
        guard (1...hiddenStates.count).contains(k) else {
            throw ModuleError.invalidInput("hidden_states[-\(k)] does not exist: the text model has \(hiddenStates.count) "
                                           + "(the embeddings and \(hiddenStates.count - 1) layers)")
        }
        return hiddenStates[hiddenStates.count - k]
    }
}

/// transformers' `CLIPTextTransformer`: the module both `CLIPTextModel` and
/// `CLIPTextModelWithProjection` hold as `text_model`.
public final class CLIPTextTransformer: Module, @unchecked Sendable {
    let config: CLIPTextConfig
    let embeddings: CLIPTextEmbeddings
    let encoder: CLIPEncoder
    public let finalLayerNorm: LayerNorm

    init(_ config: CLIPTextConfig) {
        self.config = config
        embeddings = CLIPTextEmbeddings(config)
        encoder = CLIPEncoder(config)
        finalLayerNorm = LayerNorm(config.hiddenSize, eps: config.layerNormEps)
        super.init()
        child("embeddings", embeddings)
        child("encoder", encoder)
        child("final_layer_norm", finalLayerNorm)
    }

    /// transformers' `_no_split_modules` for CLIP.
    static let noSplitModuleClasses = ["CLIPTextEmbeddings", "CLIPEncoderLayer"]

    /// transformers 5 writes the text model's keys without `text_model.`; hub checkpoints carry
    /// it. Keys starting with one of `heads` (the models' own layers) keep their names.
    static func parameterPath(forCheckpointKey key: String, heads: [String]) -> String? {
        key.hasPrefix("text_model.") || heads.contains(where: key.hasPrefix) ? nil : "text_model." + key
    }

    func callAsFunction(_ ids: Tensor, outputHiddenStates: Bool) throws -> CLIPTextOutput {
        try forward(ids) { ids in
            guard ids.rank == 2, !ids.dtype.isFloatingPoint else {
                throw ModuleError.invalidInput("CLIP text model expects integer token ids [batch, length], got \(ids.dtype) \(ids.shape)")
            }
            guard ids.shape[1] <= config.maxPositionEmbeddings else {
                throw ModuleError.invalidInput("\(ids.shape[1]) tokens exceed the text model's \(config.maxPositionEmbeddings) positions")
            }
            var hidden = try embeddings(ids)                                 // [B, S, D]
            var states = outputHiddenStates ? [hidden] : []
            for layer in encoder.layers.items {
                hidden = try layer(hidden)
                if outputHiddenStates { states.append(hidden) }
            }
            let last = try finalLayerNorm(hidden)
            return CLIPTextOutput(lastHiddenState: last, pooledOutput: try pooled(last, ids: ids), hiddenStates: states, textEmbeds: nil)
        }
    }

    /// The state at each row's end-of-text token: the first `eos_token_id`, or for configs
    /// whose eos id is 2 (old exports, SDXL's and FLUX's encoders) the first occurrence of the
    /// highest id, as transformers 5.24 does (a row without the eos id takes position 0, the
    /// argmax of its all-false comparison there).
    private func pooled(_ last: Tensor, ids: Tensor) throws -> Tensor {
        let values = try ids.int64s()
        let (batch, length) = (ids.shape[0], ids.shape[1])
        var rows: [Tensor] = []
        for b in 0..<batch {
            let row = values[(b * length)..<((b + 1) * length)]
            let position: Int
            if config.eosTokenId == 2 {
                position = row.indices.max(by: { row[$0] < row[$1] }).map { $0 - b * length } ?? 0
            } else {
                position = row.firstIndex(of: Int64(config.eosTokenId)).map { $0 - b * length } ?? 0
            }
            rows.append(try last.narrowed(axis: 0, start: b, length: 1).narrowed(axis: 1, start: position, length: 1).reshaped([1, -1]))
        }
        return try Tensor.concat(rows, axis: 0)
    }
}

final class CLIPTextEmbeddings: Module, @unchecked Sendable {
    let tokenEmbedding: Embedding
    let positionEmbedding: Embedding

    init(_ config: CLIPTextConfig) {
        tokenEmbedding = Embedding(config.vocabSize, config.hiddenSize)
        positionEmbedding = Embedding(config.maxPositionEmbeddings, config.hiddenSize)
        super.init()
        child("token_embedding", tokenEmbedding)
        child("position_embedding", positionEmbedding)
    }

    /// Older exports carry the `position_ids` buffer; it is always 0..<max_positions.
    override var ignoredCheckpointKeys: [String] { ["position_ids"] }
    /// transformers registers `position_ids` [1, max_positions] int64 (non-persistent).
    override var computedBuffers: [(name: String, elementCount: Int, dtype: DType)] {
        [("position_ids", positionEmbedding.weight.shape[0], .i64)]
    }

    func callAsFunction(_ ids: Tensor) throws -> Tensor {
        try forward(ids) { ids in
            let length = ids.shape[1]
            let positions = try Tensor(int64: (0..<Int64(length)).map { $0 }, shape: [1, length])
            return try tokenEmbedding(ids) + positionEmbedding(positions)     // [B, S, D]
        }
    }
}

final class CLIPEncoder: Module, @unchecked Sendable {
    let layers: ModuleList<CLIPEncoderLayer>

    init(_ config: CLIPTextConfig) {
        layers = ModuleList((0..<config.numHiddenLayers).map { _ in CLIPEncoderLayer(config) })
        super.init()
        child("layers", layers)
    }
}

final class CLIPEncoderLayer: Module, @unchecked Sendable {
    let selfAttention: CLIPAttention
    let layerNorm1: LayerNorm, layerNorm2: LayerNorm
    let fc1: Linear, fc2: Linear
    let activation: CLIPTextConfig.Activation

    init(_ config: CLIPTextConfig) {
        selfAttention = CLIPAttention(config)
        layerNorm1 = LayerNorm(config.hiddenSize, eps: config.layerNormEps)
        layerNorm2 = LayerNorm(config.hiddenSize, eps: config.layerNormEps)
        fc1 = Linear(config.hiddenSize, config.intermediateSize)
        fc2 = Linear(config.intermediateSize, config.hiddenSize)
        activation = config.hiddenAct
        super.init()
        child("self_attn", selfAttention)
        child("layer_norm1", layerNorm1)
        let mlp = child("mlp", Module())
        mlp.child("fc1", fc1)
        mlp.child("fc2", fc2)
        child("layer_norm2", layerNorm2)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            let h = try x + selfAttention(layerNorm1(x))
            var m = try fc1(layerNorm2(h))
            switch activation {
            case .quickGelu: m = try m.quickGelu()
            case .gelu: m = try m.gelu()
            case .geluNew: m = try m.gelu(.tanh)
            case .relu: m = try m.relu()
            }
            return try h + fc2(m)
        }
    }
}

final class CLIPAttention: Module, AttentionLayer, @unchecked Sendable {
    let heads: Int
    var kernel: AttentionKernel = .auto
    let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear

    init(_ config: CLIPTextConfig) {
        heads = config.numAttentionHeads
        let d = config.hiddenSize
        qProj = Linear(d, d); kProj = Linear(d, d); vProj = Linear(d, d); outProj = Linear(d, d)
        super.init()
        child("k_proj", kProj)
        child("v_proj", vProj)
        child("q_proj", qProj)
        child("out_proj", outProj)
    }

    /// Causal self-attention over [B, S, D].
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            let (b, s, d) = (x.shape[0], x.shape[1], x.shape[2])
            func split(_ t: Tensor) throws -> Tensor { try t.reshaped([b, s, heads, d / heads]).transposed(1, 2) }  // [B, H, S, d]
            let out = try scaledDotProductAttention(query: split(qProj(x)), key: split(kProj(x)), value: split(vProj(x)),
                                                    isCausal: true, kernel: kernel)
            return try outProj(out.transposed(1, 2).reshaped([b, s, d]))
        }
    }
}
