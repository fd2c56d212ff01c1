import NN
import Tensor

/// How a model's attention layers compute (Diffusers' `set_attention_backend` and
/// attention processors).
public enum AttentionBackend: Sendable, Equatable {
    /// The whole score matrix at once (Diffusers' classic `AttnProcessor`).
    case naive
    /// The naive computation a slice of heads at a time (`SlicedAttnProcessor`), sized as
    /// `enableAttentionSlicing` sizes it.
    case sliced(AttentionSliceSize)
    /// The memory-efficient tiled kernel with an online softmax: never a whole score matrix.
    case flash
    /// The best available: `flash`, except that a score matrix no bigger than one tile is
    /// computed whole (`AttentionKernel.auto`).
    case auto

    /// `n` heads at a time.
    public static func sliced(_ n: Int) -> AttentionBackend { .sliced(.heads(n)) }

    /// Whether it holds score matrices [Sq, Sk] whole (naive, sliced), where the memory-efficient
    /// kernel holds a tile of one per thread (`auto` a whole one only where that is one tile).
    public var holdsScoreMatrices: Bool {
        switch self {
        case .naive, .sliced: return true
        case .flash, .auto: return false
        }
    }

    /// Reads `auto`, `naive`, `flash`, `sliced` (Diffusers' "auto" slice, half the heads) or
    /// `sliced:N`; nil for anything else.
    public init?(name: String) {
        switch name {
        case "auto": self = .auto
        case "naive": self = .naive
        case "flash": self = .flash
        default:
            guard name.hasPrefix("sliced") else { return nil }
            let rest = name.dropFirst("sliced".count)
            if rest.isEmpty { self = .sliced(.auto) } else if rest.hasPrefix(":"), let n = Int(rest.dropFirst()), n >= 1 { self = .sliced(n) } else { return nil }
        }
    }
}

/// Diffusers' `enable_attention_slicing` sizes.
public enum AttentionSliceSize: Sendable, Equatable {
    /// Half of each layer's heads.
    case auto
    /// One head at a time: the least memory.
    case max
    /// This many heads at a time (at most each layer's head count).
    case heads(Int)
}

/// A layer that computes attention over `heads` heads with a selectable kernel.
protocol AttentionLayer: AnyObject {
    var heads: Int { get }
    var kernel: AttentionKernel { get set }
}

extension Module {
    /// Every attention layer of this model computes with `backend` (`.sliced(size)` is
    /// `enableAttentionSlicing(size)`: a size below 1 is an error).
    public func setAttentionBackend(_ backend: AttentionBackend) throws {
        let kernel: AttentionKernel
        switch backend {
        case .sliced(let size): return try enableAttentionSlicing(size)
        case .naive: kernel = .reference
        case .flash: kernel = .memoryEfficient
        case .auto: kernel = .auto
        }
        for layer in attentionLayers { layer.kernel = kernel }
    }

    /// Diffusers' `set_attention_slice`: the naive computation a slice of heads at a time.
    /// A size below 1, or above a layer's head count unless `capped` (then such a layer takes
    /// all its heads at once), is an error (nothing changes then).
    public func enableAttentionSlicing(_ size: AttentionSliceSize = .auto, capped: Bool = false) throws {
        let layers = attentionLayers
        if case .heads(let n) = size {
            guard n >= 1 else { throw ModuleError.invalidInput("the attention slice size must be at least 1, not \(n)") }
            if !capped, let smallest = layers.map(\.heads).min(), n > smallest {
                throw ModuleError.invalidInput("slice_size \(n) has to be smaller or equal to \(smallest) (the fewest heads of a layer)")
            }
        }
        for layer in layers {
            switch size {
            case .auto: layer.kernel = .sliced(max(1, layer.heads / 2))
            case .max: layer.kernel = .sliced(1)
            case .heads(let n): layer.kernel = .sliced(min(n, layer.heads))
            }
        }
    }

    /// Back to the default kernel (`auto`).
    public func disableAttentionSlicing() {
        for layer in attentionLayers { layer.kernel = .auto }
    }

    /// The kernel each attention layer uses, by module path.
    public var attentionKernels: [(path: String, kernel: AttentionKernel)] {
        namedModules().compactMap { path, module in (module as? AttentionLayer).map { (path, $0.kernel) } }
    }

    private var attentionLayers: [AttentionLayer] { namedModules().compactMap { $0.module as? AttentionLayer } }
}
