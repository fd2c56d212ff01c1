import NN
import Tensor

/// Hook names, so that strategies find (and refuse to stack on) each other.
public enum OffloadHookName {
    public static let sequential = "sequential_offload"
    public static let model = "model_offload"
    public static let group = "group_offload"
    public static let groupRoot = "group_offload_root"
    /// A device map's block hooks: inputs to the block's device, the output back.
    public static let deviceMap = "device_map"
    /// A device map's `cpu`/`disk` modules: weights to the execution device per forward.
    public static let deviceMapOffload = "device_map_offload"

    static let all = [sequential, model, group, groupRoot, deviceMap, deviceMapOffload]
}

/// Brings one module's own parameters to the execution device for its forward only.
final class ResidencyHook: ModuleHook, @unchecked Sendable {
    let group: ParameterGroup
    let device: Device
    let onloadBefore: Bool, offloadAfter: Bool

    init(group: ParameterGroup, device: Device, onloadBefore: Bool = true, offloadAfter: Bool = true) {
        self.group = group
        self.device = device
        self.onloadBefore = onloadBefore
        self.offloadAfter = offloadAfter
    }

    func preForward(_ module: Module) throws { if onloadBefore { try group.onload(to: device) } }
    func postForward(_ module: Module) throws { if offloadAfter { group.offload() } }
    func detach(from module: Module) throws { group.offload() }
}

extension Module {
    /// Sequential CPU offload (Accelerate's `cpu_offload` as Diffusers'
    /// `enable_sequential_cpu_offload` applies it): every module that owns parameters has
    /// them on `device` only during its own forward; they live on the host otherwise. The
    /// least memory on the device, the most traffic.
    @discardableResult
    ///
    /// - Parameter computeDType: cast floating-point weights to this dtype as they come to
    ///   the device (their homes keep theirs); nil: no cast.
    public func enableSequentialCPUOffload(device: Device, computeDType: DType? = nil) throws -> TransferStatistics {
        try refuseStackedOffload()
        let statistics = TransferStatistics()
        let groups = try namedModules().filter { !$0.module.parameters.isEmpty }.map { path, module in
            let prefix = path.isEmpty ? "" : path + "."
            return (module, try ParameterGroup(id: path.isEmpty ? className : path,
                                               slots: module.parameters.map { (prefix + $0.name, $0.parameter) },
                                               statistics: statistics, computeDType: computeDType))
        }
        try device.requireRoom(forLargestOf: groups.map(\.1), strategy: "sequential CPU offload")
        for (module, group) in groups {
            try module.registerHook(ResidencyHook(group: group, device: device), name: OffloadHookName.sequential)
        }
        executionDevice = device
        return statistics
    }

    /// Whether an offload strategy or a device map hooks this tree (its weights then move,
    /// and are cast, by those hooks).
    public var hasOffloadHooks: Bool { allHooks().contains { OffloadHookName.all.contains($0.name) } }

    /// Throws when an offload strategy is already on this tree (remove it first).
    func refuseStackedOffload() throws {
        if let existing = allHooks().first(where: { OffloadHookName.all.contains($0.name) }) {
            throw OffloadError.conflictingStrategy(
                "cannot apply another offloading strategy: '\(existing.path.isEmpty ? className : existing.path)' already has '\(existing.name)'; remove the hooks first (removeAllHooks)")
        }
    }
}
