import NN
import Tensor

/// The two layers of a Diffusers `TimestepEmbedding` (`linear_1`, SiLU, `linear_2`), or of a
/// `PixArtAlphaTextProjection` with SiLU (the same shapes), registered as a namespace of the
/// model (no forward of its own, so hooks and device maps see the layers).
public struct TimestepMLP {
    public let linear1: Linear, linear2: Linear

    /// `inFeatures` → `outFeatures` → `outFeatures`.
    public init(_ inFeatures: Int, _ outFeatures: Int) {
        linear1 = Linear(inFeatures, outFeatures)
        linear2 = Linear(outFeatures, outFeatures)
    }

    public func register(as name: String, in parent: Module) {
        let namespace = parent.child(name, Module())
        namespace.child("linear_1", linear1)
        namespace.child("linear_2", linear2)
    }

    /// The weights the two layers hold.
    public static func parameterTally(_ inFeatures: Int, _ outFeatures: Int) -> ParameterTally {
        var t = ParameterTally()
        t.linear(inFeatures, outFeatures)
        t.linear(outFeatures, outFeatures)
        return t
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try linear2(linear1(x).silu()) }
}

/// One value per sample of a batch of `batch`: `t` flattened, a single value broadcast to the
/// batch; any other count is an error naming `what` ("timesteps").
func perSampleValues(_ t: Tensor, batch: Int, _ what: String) throws -> Tensor {
    let flat = try t.reshaped([-1])
    if flat.count == batch { return flat }
    guard flat.count == 1 else { throw ModuleError.invalidInput("\(flat.count) \(what) for a batch of \(batch)") }
    return try flat.expanded(to: [batch]).contiguous()
}
