import Tensor

/// A weight slot: declared with its shape when the module is built, filled when weights load.
public final class Parameter: @unchecked Sendable {
    public let shape: [Int]
    /// nil until loaded.
    public var value: Tensor?

    public init(shape: [Int]) { self.shape = shape }

    /// The loaded tensor, or an error naming the slot when nothing was loaded.
    public func tensor(_ path: @autoclosure () -> String = "parameter") throws -> Tensor {
        guard let value else { throw ModuleError.notLoaded(path()) }
        return value
    }
}

/// A node of a model tree. Children and parameters are registered under their checkpoint
/// keys (`to_q`, `weight`), so a parameter's dotted path from the root is the key Diffusers
/// writes: `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`.
open class Module: @unchecked Sendable {
    public private(set) var parameters: [(name: String, parameter: Parameter)] = []
    public private(set) var children: [(name: String, module: Module)] = []
    /// Hooks around this module's forward, in registration order (see `ModuleHook`).
    public internal(set) var hooks: [(name: String, hook: any ModuleHook)] = []
    /// Where this module computes: inputs given to a model's entry point move here. Offload
    /// strategies set it; by default the device of the first parameter, else the host.
    public var executionDevice: Device {
        get { explicitExecutionDevice ?? namedParameters().first?.parameter.value?.device ?? .cpu }
        set { explicitExecutionDevice = newValue }
    }
    var explicitExecutionDevice: Device?

    public init() {}

    /// Registers `module` under `name` and returns it.
    @discardableResult
    public final func child<M: Module>(_ name: String, _ module: M) -> M {
        children.append((name, module))
        return module
    }

    /// Declares a parameter of `shape` under `name`.
    public final func parameter(_ name: String, shape: [Int]) -> Parameter {
        let p = Parameter(shape: shape)
        parameters.append((name, p))
        return p
    }

    /// Registers an existing parameter slot under `name`.
    public final func registerParameter(_ name: String, _ parameter: Parameter) {
        parameters.append((name, parameter))
    }

    /// Every parameter with its dotted path, in registration order.
    public final func namedParameters(prefix: String = "") -> [(path: String, parameter: Parameter)] {
        var result = parameters.map { (prefix + $0.name, $0.parameter) }
        for (name, module) in children {
            result += module.namedParameters(prefix: prefix + name + ".")
        }
        return result
    }

    /// Every module with its dotted path (the root as ""), depth first.
    public final func namedModules(prefix: String = "") -> [(path: String, module: Module)] {
        var result = [(prefix.isEmpty ? "" : String(prefix.dropLast()), self)]
        for (name, module) in children { result += module.namedModules(prefix: prefix + name + ".") }
        return result
    }

    /// Where a checkpoint key lands in this tree when it is not a parameter path itself (for
    /// layouts that differ only by a prefix). The default: nowhere.
    open func parameterPath(forCheckpointKey key: String) -> String? { nil }

    /// Checkpoint keys this module knows it may meet without a slot (buffers that older
    /// exports wrote, such as CLIP's `position_ids`). Paths are relative to this module.
    open var ignoredCheckpointKeys: [String] { [] }

    /// Buffers the PyTorch module registers that this one computes instead of storing (CLIP's
    /// `position_ids`): name, element count and dtype. Accelerate counts them in a module's
    /// size, so device maps count them too.
    open var computedBuffers: [(name: String, elementCount: Int, dtype: DType)] { [] }

    /// The Diffusers/transformers class this module mirrors (device maps and group offloading
    /// speak in those names). Defaults to the Swift type name.
    open var className: String { String(describing: type(of: self)) }

    /// Classes whose instances a device map must not split across devices (Diffusers'
    /// `_no_split_modules`), declared by each model on its root.
    open var noSplitModuleClasses: [String] { [] }

    /// Children that group offloading descends into at block level (Diffusers'
    /// `_group_offload_block_modules`); repeated blocks (`ModuleList`s) are found on their own.
    open var groupOffloadBlockModules: [String] { [] }

    /// Patterns layerwise casting always skips for this model (Diffusers'
    /// `_skip_layerwise_casting_patterns`), added to the user's.
    open var layerwiseCastingSkipPatterns: [String] { [] }

    /// Total number of parameters (elements).
    public final var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.parameter.shape.reduce(1, *) } }
}

/// A list of repeated blocks, whatever their element type (group offloading chunks these).
public protocol AnyModuleList: Module {
    var modules: [Module] { get }
}

/// A list of modules registered as `0`, `1`, … (PyTorch's `nn.ModuleList`).
public final class ModuleList<Element: Module>: Module, AnyModuleList, @unchecked Sendable {
    public let items: [Element]
    public var modules: [Module] { items }

    public init(_ items: [Element]) {
        self.items = items
        super.init()
        for (i, item) in items.enumerated() { child(String(i), item) }
    }

    public var count: Int { items.count }
    public subscript(index: Int) -> Element { items[index] }
}

/// Errors of building and loading modules; each names the module path or key at fault.
public enum ModuleError: Error, CustomStringConvertible, Equatable, Sendable {
    case notLoaded(String)
    case invalidConfig(String)
    case checkpointMismatch(missing: [String], unexpected: [String], shapeMismatches: [String])
    case invalidInput(String)
    /// A checkpoint tensor that would fill a parameter holds booleans or integers (`dtype` as
    /// the file names it; `file`, the weight file, when the tensor came from one).
    case nonFloatingWeight(tensor: String, dtype: String, file: String?)

    public var description: String {
        switch self {
        case .notLoaded(let path): return "\(path) has no weights loaded"
        case .invalidConfig(let message): return message
        case .invalidInput(let message): return message
        case let .nonFloatingWeight(tensor, dtype, file):
            return "tensor '\(tensor)'\(file.map { " in \($0)" } ?? "") is \(dtype), but the parameter it fills needs floating-point weights"
        case let .checkpointMismatch(missing, unexpected, shapes):
            var parts: [String] = []
            func list(_ items: [String]) -> String {
                items.prefix(8).joined(separator: ", ") + (items.count > 8 ? " and \(items.count - 8) more" : "")
            }
            if !missing.isEmpty { parts.append("\(missing.count) missing (\(list(missing)))") }
            if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected (\(list(unexpected)))") }
            if !shapes.isEmpty { parts.append("\(shapes.count) with the wrong shape (\(list(shapes)))") }
            return "the checkpoint does not fit the model: " + parts.joined(separator: "; ")
        }
    }
}
