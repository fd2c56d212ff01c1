import Foundation
import NN
import Tensor

/// Diffusers' default `skip_modules_pattern` for layerwise casting.
public let defaultLayerwiseCastingSkipPatterns = ["pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$"]

extension OffloadHookName {
    /// Layerwise casting: weights stored in a small dtype, upcast for each layer's forward.
    public static let layerwiseCasting = "layerwise_casting"
}

/// Upcasts a layer's weights to the compute dtype for its forward and puts the stored ones
/// back after (Diffusers' `LayerwiseCastingHook`; inputs are not cast). It casts whatever the
/// slots hold when the forward starts, so an offload hook outside it (applied later) brings
/// the stored dtype to the device and this hook casts there.
final class LayerwiseCastingHook: ModuleHook, @unchecked Sendable {
    let compute: DType
    private var stored: [Tensor?] = []

    init(compute: DType) { self.compute = compute }

    func preForward(_ module: Module) throws {
        stored = module.namedParameters().map(\.parameter.value)
        try upcast(module)
    }

    func postForward(_ module: Module) throws {
        for ((_, slot), value) in zip(module.namedParameters(), stored) { slot.value = value }
        stored = []
    }

    /// Removed: the weights come back in the compute dtype, so the layer still runs.
    func detach(from module: Module) throws { try upcast(module) }

    private func upcast(_ module: Module) throws {
        for (_, slot) in module.namedParameters() {
            if let value = slot.value, value.dtype.isFloatingPoint, value.dtype != compute { slot.value = try value.to(compute) }
        }
    }
}

extension Module {
    /// Diffusers' `enable_layerwise_casting`: `applyLayerwiseCasting` with this model's own
    /// patterns always added (`layerwiseCastingSkipPatterns`, e.g. the UNet's `norm`), and
    /// `compute` defaulting to the dtype the weights have now.
    public func enableLayerwiseCasting(storage: DType = .f8e4m3fn, compute: DType? = nil,
                                       skipModulesPattern: [String]? = nil, skipModulesClasses: [String] = []) throws {
        let patterns = (skipModulesPattern ?? defaultLayerwiseCastingSkipPatterns) + layerwiseCastingSkipPatterns
        try applyLayerwiseCasting(storage: storage, compute: compute, skipModulesPattern: patterns,
                                  skipModulesClasses: skipModulesClasses)
    }

    /// Diffusers' `apply_layerwise_casting`: every Linear, Conv2d and Embedding layer not
    /// skipped stores its weights in `storage` and computes in `compute`. A module whose full
    /// path matches one of `skipModulesPattern` (regular expressions, searched) or whose class
    /// is in `skipModulesClasses` is skipped with its whole subtree. With no patterns and no
    /// classes the whole model is one layer: cast up at once for its forward.
    ///
    /// Throws (changing nothing) for a dtype that is not floating point, an invalid pattern,
    /// or a model that already has offloading (cast first, then offload: the offload hooks then
    /// move the stored dtype).
    public func applyLayerwiseCasting(storage: DType, compute: DType? = nil, skipModulesPattern: [String] = defaultLayerwiseCastingSkipPatterns,
                                      skipModulesClasses: [String] = []) throws {
        // Default compute dtype: the weights' own, read past float8 ones (a checkpoint saved in
        // the storage dtype still keeps its norms wide).
        let compute = compute ?? namedParameters().compactMap(\.parameter.value).first { $0.dtype.isComputeType }?.dtype ?? .f32
        for (role, dtype) in [("storage", storage), ("compute", compute)] where !dtype.isFloatingPoint {
            throw OffloadError.invalidOption("layerwise casting needs a floating-point \(role) dtype, not \(dtype)")
        }
        let regexes = try skipModulesPattern.map { pattern -> Regex<AnyRegexOutput> in
            do { return try Regex(pattern) } catch {
                throw OffloadError.invalidOption("skip_modules_pattern '\(pattern)' is not a valid regular expression: \(error)")
            }
        }
        if allHooks().contains(where: { $0.name == OffloadHookName.layerwiseCasting }) {
            throw OffloadError.conflictingStrategy("layerwise casting is already applied; remove the hooks first (removeAllHooks)")
        }
        if hasOffloadHooks {
            throw OffloadError.conflictingStrategy("apply layerwise casting before offloading (the offload hooks then move the stored dtype); remove the offload hooks first")
        }
        var layers: [Module] = []
        if skipModulesPattern.isEmpty && skipModulesClasses.isEmpty {
            layers = [self]
        } else {
            func walk(_ module: Module, path: String) {
                if skipModulesClasses.contains(module.className) { return }
                if !path.isEmpty, regexes.contains(where: { (try? $0.firstMatch(in: path)) != nil }) { return }
                if module is Linear || module is Conv2d || module is Embedding { layers.append(module); return }
                for (name, child) in module.children { walk(child, path: path.isEmpty ? name : path + "." + name) }
            }
            walk(self, path: "")
        }
        for layer in layers {
            for (_, slot) in layer.namedParameters() {
                guard let value = slot.value, value.dtype.isFloatingPoint, value.dtype != storage else { continue }
                slot.value = try value.to(storage)
                if value.storage.isMapped { value.storage.releaseResidentPages() }   // the wide copy was read once
            }
            try layer.registerHook(LayerwiseCastingHook(compute: compute), name: OffloadHookName.layerwiseCasting)
        }
    }
}
