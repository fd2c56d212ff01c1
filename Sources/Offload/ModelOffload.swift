import NN
import Tensor

/// Model CPU offload (Diffusers' `enable_model_cpu_offload`): whole components move to the
/// device when their forward starts, the previous one in the sequence leaving as the next
/// arrives. A component stays on the device until another needs it (the UNet stays for all
/// steps); `offloadAll()` sends everything home at the end of a call.
public final class ModelCPUOffload: @unchecked Sendable {
    public let device: Device
    public let statistics = TransferStatistics()
    private var groups: [ObjectIdentifier: ParameterGroup] = [:]
    private var current: ParameterGroup?

    /// Hooks each of `components` (in the order the pipeline calls them).
    ///
    /// A component already under group offloading keeps its own hooks and is left out of the
    /// chain; when it runs, the chained component on the device leaves first. (Diffusers
    /// refuses the combination — "contains components with group offloading enabled" — but
    /// group-offloading the largest model and model-offloading the rest is the natural setup
    /// for a small device, and both strategies already agree on where weights live.)
    ///
    /// - Parameter computeDType: cast floating-point weights to this dtype as a component
    ///   comes to the device (the homes keep theirs); nil: no cast.
    public init(components all: [Module], device: Device, computeDType: DType? = nil) throws {
        self.device = device
        let grouped = all.filter { $0.allHooks().contains { $0.name == OffloadHookName.groupRoot } }
        let components = all.filter { c in !grouped.contains { $0 === c } }
        for component in components { try component.refuseStackedOffload() }
        let componentGroups = try components.map {
            try ParameterGroup(id: $0.className, slots: $0.namedParameters(), statistics: statistics, computeDType: computeDType)
        }
        try device.requireRoom(forLargestOf: componentGroups, strategy: "model CPU offload")
        for (component, group) in zip(components, componentGroups) {
            groups[ObjectIdentifier(component)] = group
            try component.registerHook(ModelOffloadHook(owner: self, group: group), name: OffloadHookName.model)
            component.executionDevice = device
        }
        for component in grouped {
            try component.registerHook(ModelOffloadYieldHook(owner: self), name: OffloadHookName.model)
        }
    }

    fileprivate func activate(_ group: ParameterGroup) throws {
        if current !== group { current?.offload() }
        try group.onload(to: device)
        current = group
    }

    /// A component outside the chain runs: the chained one on the device leaves.
    fileprivate func yield() {
        current?.offload()
        current = nil
    }

    /// Every component back to the host (Diffusers' `maybe_free_model_hooks`).
    public func offloadAll() {
        for group in groups.values { group.offload() }
        current = nil
    }
}

private final class ModelOffloadHook: ModuleHook, @unchecked Sendable {
    weak var owner: ModelCPUOffload?
    let group: ParameterGroup

    init(owner: ModelCPUOffload, group: ParameterGroup) {
        self.owner = owner
        self.group = group
    }

    func preForward(_ module: Module) throws { try owner?.activate(group) }
    func detach(from module: Module) throws { group.offload() }
}

/// On a group-offloaded component: makes room by sending the chained component home.
private final class ModelOffloadYieldHook: ModuleHook, @unchecked Sendable {
    weak var owner: ModelCPUOffload?
    init(owner: ModelCPUOffload) { self.owner = owner }
    func preForward(_ module: Module) throws { owner?.yield() }
}
