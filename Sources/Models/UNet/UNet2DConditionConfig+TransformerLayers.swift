import NN

extension UNet2DConditionConfig {
    /// One block's entry of `transformer_layers_per_block` (or of
    /// `reverse_transformer_layers_per_block`): how many `BasicTransformerBlock`s each of the
    /// block's `Transformer2DModel`s stacks, the same for all of them or one count per
    /// transformer, as Diffusers' `CrossAttn*Block2D` and `UNetMidBlock2DCrossAttn` accept.
    public enum TransformerDepth: Sendable, Equatable, ExpressibleByIntegerLiteral {
        case uniform(Int)
        case perLayer([Int])

        public init(integerLiteral value: Int) { self = .uniform(value) }

        /// The depth of the block's transformer `index` (a per-layer list shorter than the
        /// block's layer count is refused when the config is read).
        public func layers(at index: Int) -> Int {
            switch self {
            case .uniform(let count): return count
            case .perLayer(let counts): return counts.indices.contains(index) ? counts[index] : 0
            }
        }

        var isPerLayer: Bool { if case .perLayer = self { return true } else { return false } }
    }

    /// The depths of down block `index`'s transformers.
    public func downTransformerDepth(_ index: Int) -> TransformerDepth {
        transformerLayersPerBlock.indices.contains(index) ? transformerLayersPerBlock[index] : 1
    }

    /// The depth of the mid block's transformer: `transformer_layers_per_block[-1]`, whose first
    /// entry when it is a list (the mid block has one transformer).
    public var midTransformerLayers: Int { transformerLayersPerBlock.last?.layers(at: 0) ?? 1 }

    /// The depths of up block `index`'s transformers: `reverse_transformer_layers_per_block[index]`
    /// when the config gives it, else `transformer_layers_per_block` reversed, as Diffusers builds them.
    public func upTransformerDepth(_ index: Int) -> TransformerDepth {
        let depths = reverseTransformerLayersPerBlock ?? transformerLayersPerBlock.reversed()
        return depths.indices.contains(index) ? depths[index] : 1
    }

    /// Reads `transformer_layers_per_block` and `reverse_transformer_layers_per_block`: an integer
    /// for every block, or a list of one entry per block, each an integer or a list of one count
    /// per transformer in the block (`layersPerBlock` down, one more up). Diffusers needs the
    /// reverse list whenever a down entry is a list (its up blocks have one transformer more).
    mutating func readTransformerLayers(_ c: ModelConfig) throws {
        let blocks = blockOutChannels.count
        transformerLayersPerBlock = try c.transformerDepths("transformer_layers_per_block", blocks: blocks,
                                                            layers: layersPerBlock) ?? Array(repeating: 1, count: blocks)
        reverseTransformerLayersPerBlock = try c.transformerDepths("reverse_transformer_layers_per_block", blocks: blocks,
                                                                   layers: layersPerBlock + 1)
        try c.require(reverseTransformerLayersPerBlock != nil || !transformerLayersPerBlock.contains(where: \.isPerLayer),
                      "transformer_layers_per_block gives per-layer lists, which need reverse_transformer_layers_per_block "
                          + "for the up blocks (Diffusers refuses this config too)")
    }
}

extension ModelConfig {
    /// A `transformer_layers_per_block`-style value (nil when absent or null): an integer
    /// repeated for `blocks` blocks, or a list of exactly `blocks` entries, each an integer or a
    /// list of exactly `layers` integers; every count in 1...`Limits.repeats`. Errors name the
    /// entry (`key[i]`, `key[i][j]`) and say which length was expected.
    func transformerDepths(_ key: String, blocks: Int, layers: Int) throws -> [UNet2DConditionConfig.TransformerDepth]? {
        guard let json = self[key], !json.isNull else { return nil }
        let range = 1...Limits.repeats
        func count(_ value: JSONValue, _ name: String) throws -> Int {
            guard case .number(let text) = value else {
                throw CheckpointError.configKeyType(path: path, key: name, expected: "an integer or a list", found: value.typeName)
            }
            guard let n = value.intValue, range.contains(n) else {
                throw CheckpointError.configValue(path: path, key: name, value: text, expected: range.expectation)
            }
            return n
        }
        guard let entries = json.arrayValue else { return Array(repeating: .uniform(try count(json, key)), count: blocks) }
        guard entries.count == blocks else {
            throw CheckpointError.configValue(path: path, key: key, value: "a list of \(entries.count)",
                                              expected: "one entry per block: \(blocks) (block_out_channels has \(blocks))")
        }
        return try entries.enumerated().map { i, entry in
            guard let inner = entry.arrayValue else { return .uniform(try count(entry, "\(key)[\(i)]")) }
            guard inner.count == layers else {
                throw CheckpointError.configValue(path: path, key: "\(key)[\(i)]", value: "a list of \(inner.count)",
                                                  expected: "one count per transformer in the block: \(layers)")
            }
            return .perLayer(try inner.enumerated().map { try count($0.element, "\(key)[\(i)][\($0.offset)]") })
        }
    }
}
