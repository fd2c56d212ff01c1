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
    public init(components: [Module], device: Device) throws {
        self.device = device
        for component in components { try component.refuseStackedOffload() }
        let componentGroups = try components.map {
            try ParameterGroup(id: $0.className, slots: $0.namedParameters(), statistics: statistics)
        }
        try device.requireRoom(forLargestOf: componentGroups, strategy: "model CPU offload")
        for (component, group) in zip(components, componentGroups) {
            groups[ObjectIdentifier(component)] = group
            try component.registerHook(ModelOffloadHook(owner: self, group: group), name: OffloadHookName.model)
            component.executionDevice = device
        }
    }

    fileprivate func activate(_ group: ParameterGroup) throws {
        if current !== group { current?.offload() }
        try group.onload(to: device)
        current = group
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
