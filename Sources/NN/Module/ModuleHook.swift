import Tensor

/// Something that runs around a module's forward: memory techniques (offloading, casting,
/// prefetching) are hooks, so models never contain offload code. Registered per module under
/// a name; the hook registered last is the outermost (its `preForward` runs first and its
/// `postForward` last), as in Diffusers' `HookRegistry`.
public protocol ModuleHook: AnyObject, Sendable {
    /// Runs before the module computes (e.g. brings its weights to the execution device).
    func preForward(_ module: Module) throws
    /// Runs after the module computed (e.g. sends its weights back).
    func postForward(_ module: Module) throws
    /// Undoes what the hook did to the module when it is removed (weights back home).
    func detach(from module: Module) throws
    /// The caller is done with the module for now (a pipeline left its denoising loop or
    /// returned): release what was kept for a next forward.
    func callEnded(_ module: Module) throws
    /// Where the module's inputs must be when its body runs (a device map's block device);
    /// nil: wherever they are. The outermost hook that names a device wins.
    var inputDevice: Device? { get }
    /// Whether the module's output goes back to the device its first input came from
    /// (Accelerate's `io_same_device`).
    var returnsOutputToInputDevice: Bool { get }
}

extension ModuleHook {
    public func preForward(_ module: Module) throws {}
    public func postForward(_ module: Module) throws {}
    public func detach(from module: Module) throws {}
    public func callEnded(_ module: Module) throws {}
    public var inputDevice: Device? { nil }
    public var returnsOutputToInputDevice: Bool { false }
}

/// Errors of registering and removing hooks.
public enum HookError: Error, CustomStringConvertible, Equatable, Sendable {
    case duplicateName(module: String, name: String)
    case notFound(module: String, name: String)

    public var description: String {
        switch self {
        case let .duplicateName(module, name): return "\(module) already has a hook named '\(name)'"
        case let .notFound(module, name): return "\(module) has no hook named '\(name)'"
        }
    }
}

extension Module {
    /// Registers `hook` under `name` (a second hook of the same name is an error).
    public final func registerHook(_ hook: any ModuleHook, name: String) throws {
        guard !hooks.contains(where: { $0.name == name }) else {
            throw HookError.duplicateName(module: String(describing: type(of: self)), name: name)
        }
        hooks.append((name, hook))
    }

    /// Removes the hook `name`, letting it undo its effect first.
    public final func removeHook(named name: String) throws {
        guard let index = hooks.firstIndex(where: { $0.name == name }) else {
            throw HookError.notFound(module: String(describing: type(of: self)), name: name)
        }
        try hooks[index].hook.detach(from: self)
        hooks.remove(at: index)
    }

    /// Removes every hook on this module and all below it (the last registered first), and
    /// the execution devices offload strategies set: the tree computes where its weights are.
    public final func removeAllHooks() throws {
        for (_, module) in namedModules() {
            while let last = module.hooks.last {
                try last.hook.detach(from: module)
                module.hooks.removeLast()
            }
            module.explicitExecutionDevice = nil
        }
    }

    /// Tells every hook in the tree that the caller is done with this model for now (Diffusers'
    /// `maybe_free_model_hooks` moment), so that nothing kept for a next forward stays.
    public final func endCall() throws {
        for (_, module) in namedModules() { for (_, hook) in module.hooks { try hook.callEnded(module) } }
    }

    /// Every hook in the tree, by module path and hook name.
    public final func allHooks() -> [(path: String, name: String, hook: any ModuleHook)] {
        namedModules().flatMap { path, module in module.hooks.map { (path, $0.name, $0.hook) } }
    }

    /// Runs `body` as this module's forward on `inputs`: pre-hooks (outermost first), the body,
    /// post-hooks (innermost first). Every module's entry points go through here, `encode` and
    /// `decode` too, and pass their tensor arguments as `inputs`, so that a hook can move them
    /// to the module's device (device maps) and the output back.
    public final func forward<each Input: DeviceMovable, Output>(
        _ inputs: repeat each Input, body: (repeat each Input) throws -> Output
    ) throws -> Output {
        if hooks.isEmpty { return try body(repeat each inputs) }
        // Hooks move and cast weights: that is not part of a captured graph (they run again,
        // as they are, in every replay).
        for (_, hook) in hooks.reversed() { try GraphCapture.excluding { try hook.preForward(self) } }
        let target = hooks.reversed().lazy.compactMap(\.hook.inputDevice).first
        var origin: Device?
        if hooks.contains(where: { $0.hook.returnsOutputToInputDevice }) {
            for input in repeat each inputs { origin = origin ?? input.firstDevice }
        }
        var result = try body(repeat try Self.align(each inputs, to: target))
        for (_, hook) in hooks { try GraphCapture.excluding { try hook.postForward(self) } }
        if let origin, let movable = result as? any DeviceMovable, let moved = try movable.moved(to: origin) as? Output {
            result = moved
        }
        return result
    }

    private static func align<Input: DeviceMovable>(_ input: Input, to device: Device?) throws -> Input {
        guard let device else { return input }
        return try input.moved(to: device)
    }
}

/// A forward argument or result that hooks may move between devices: tensors, optional
/// tensors and arrays of them. Other arguments (flags, counts) are captured by the body as usual.
public protocol DeviceMovable {
    /// The value with its tensors on `device` (unchanged where they already are).
    func moved(to device: Device) throws -> Self
    /// The device of its first tensor, nil when it holds none.
    var firstDevice: Device? { get }
}

extension Tensor: DeviceMovable {
    public func moved(to device: Device) throws -> Tensor { try to(device) }
    public var firstDevice: Device? { device }
}

extension Optional: DeviceMovable where Wrapped: DeviceMovable {
    public func moved(to device: Device) throws -> Self { try map { try $0.moved(to: device) } }
    public var firstDevice: Device? { self?.firstDevice }
}

extension Array: DeviceMovable where Element: DeviceMovable {
    public func moved(to device: Device) throws -> Self { try map { try $0.moved(to: device) } }
    public var firstDevice: Device? { lazy.compactMap(\.firstDevice).first }
}
