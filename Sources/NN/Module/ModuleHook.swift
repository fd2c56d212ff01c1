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
}

extension ModuleHook {
    public func preForward(_ module: Module) throws {}
    public func postForward(_ module: Module) throws {}
    public func detach(from module: Module) throws {}
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

    /// Every hook in the tree, by module path and hook name.
    public final func allHooks() -> [(path: String, name: String, hook: any ModuleHook)] {
        namedModules().flatMap { path, module in module.hooks.map { (path, $0.name, $0.hook) } }
    }

    /// Runs `body` as this module's forward: pre-hooks (outermost first), the body, post-hooks
    /// (innermost first). Every module's entry points go through here, `encode`/`decode` too.
    public final func forward<T>(_ body: () throws -> T) throws -> T {
        if hooks.isEmpty { return try body() }
        for (_, hook) in hooks.reversed() { try hook.preForward(self) }
        let result = try body()
        for (_, hook) in hooks { try hook.postForward(self) }
        return result
    }
}
