/// How many weight tensors, and how many parameters in them, a model has — computed from its
/// config without building it, or read from a checkpoint's headers without mapping any tensor.
///
/// A config's tally is compared with the checkpoint's before the module tree is built:
/// building costs time and memory in proportion to the tensors, so a config that asks for a
/// million layers must be refused from the numbers, not found out by building it. Sums and
/// products saturate at `Int.max` instead of trapping, so that a hostile config yields a huge
/// tally and an error rather than an overflow.
public struct ParameterTally: Sendable, Equatable, CustomStringConvertible {
    public private(set) var tensors = 0
    public private(set) var elements = 0

    public init() {}

    public init(tensors: Int, elements: Int) {
        self.tensors = tensors
        self.elements = elements
    }

    public var description: String { "\(tensors) tensors (\(elements) parameters)" }

    /// Adds one tensor of `shape`.
    public mutating func add(shape: [Int]) {
        tensors = Self.sum(tensors, 1)
        elements = Self.sum(elements, shape.reduce(1, Self.product))
    }

    /// Adds `other` `times` times (a repeated block).
    public mutating func add(_ other: ParameterTally, times: Int = 1) {
        tensors = Self.sum(tensors, Self.product(other.tensors, times))
        elements = Self.sum(elements, Self.product(other.elements, times))
    }

    /// `Linear(inFeatures, outFeatures)`: weight [out, in] and an optional bias.
    public mutating func linear(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        add(shape: [outFeatures, inFeatures])
        if bias { add(shape: [outFeatures]) }
    }

    /// `Conv2d` with a square kernel: weight [out, in, k, k] and an optional bias.
    public mutating func conv(_ inChannels: Int, _ outChannels: Int, kernel: Int, bias: Bool = true) {
        add(shape: [outChannels, inChannels, kernel, kernel])
        if bias { add(shape: [outChannels]) }
    }

    /// An affine GroupNorm or LayerNorm over `channels`: weight and bias.
    public mutating func norm(_ channels: Int) {
        add(shape: [channels])
        add(shape: [channels])
    }

    /// `Embedding(count, dimension)`.
    public mutating func embedding(_ count: Int, _ dimension: Int) { add(shape: [count, dimension]) }

    /// The sum of two tallies.
    public static func + (a: ParameterTally, b: ParameterTally) -> ParameterTally {
        var result = a
        result.add(b)
        return result
    }

    /// Throws `CheckpointError.invalidConfig` for the config at `path` when the tally passes
    /// `ModelConfig.Limits` (a config no model has, refused before anything is built, even
    /// where no checkpoint is there to compare with).
    public func checkWithinLimits(config path: String) throws {
        guard tensors <= ModelConfig.Limits.tensors, elements <= ModelConfig.Limits.elements else {
            throw CheckpointError.invalidConfig(
                path: path, reason: "the config implies \(self), more than any model has (limits: \(ModelConfig.Limits.tensors) tensors, "
                    + "\(ModelConfig.Limits.elements) parameters)")
        }
    }

    /// `a + b`, saturating at `Int.max` (tallies of hostile configs must not trap).
    public static func sum(_ a: Int, _ b: Int) -> Int {
        let (value, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : value
    }

    /// `a · b`, saturating at `Int.max`.
    public static func product(_ a: Int, _ b: Int) -> Int {
        let (value, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow || value < 0 ? .max : value
    }
}

extension Checkpoint {
    /// The tensors and parameters the checkpoint's headers list (no tensor is mapped).
    public func parameterTally() throws -> ParameterTally {
        var tally = ParameterTally()
        for (_, header) in try headers() {
            for entry in header.entries { tally.add(shape: entry.shape) }
        }
        return tally
    }

    /// Throws `CheckpointError.configCheckpointMismatch` when the config at `configPath`
    /// implies more tensors than this checkpoint holds: then some weights must be missing,
    /// whatever the keys say, and the model is not worth building (building costs in
    /// proportion to the tensors; parameter slots allocate nothing). A checkpoint holding as
    /// many tensors or more (buffers such as CLIP's `position_ids`, another architecture's
    /// weights) passes here: the model is cheap to build and the key-by-key check at load names
    /// each missing, unexpected or mis-shaped tensor, which says more than a count.
    public func checkHolds(_ implied: ParameterTally, config configPath: String) throws {
        try implied.checkWithinLimits(config: configPath)
        let found = try parameterTally()
        // Only a config far beyond its checkpoint is refused here, before anything is built
        // (building is what costs); a near miss is left to loading, whose key check names
        // every missing, unexpected and mis-shaped tensor.
        guard implied.tensors <= 2 * found.tensors + 64 else {
            let name = files.count == 1 ? joinPath(folder, files[0]) : folder
            throw CheckpointError.configCheckpointMismatch(config: configPath, checkpoint: name,
                                                           implied: implied.description, found: found.description)
        }
    }
}
