import Models
import NN
import Offload
import Tensor

/// Pipeline-level placement (Diffusers' `from_pretrained(device_map=...)` for pipelines): whole
/// components spread over the accelerators by size; one that fits nowhere stays on the host with
/// sequential offload onto the first accelerator.
extension DiffusionPipeline {
    /// Places the components as `request` says and records `hfDeviceMap`.
    public func applyDeviceMap(_ request: PipelineDeviceMapRequest, devices: DeviceSet,
                               maxMemory: [String: MemoryBudget]? = nil) throws {
        guard !hasOffloading, hfDeviceMap == nil else {
            throw OffloadError.conflictingStrategy("the pipeline already has placement or offloading; call resetDeviceMap() or removeAllHooks() first")
        }
        try castPendingWeights(all: true)
        switch request {
        case .device(let target):
            guard let device = target.device(in: devices) else {
                throw OffloadError.invalidDeviceMap("a pipeline cannot be placed on disk as a whole")
            }
            try to(device)
        case .balanced:
            guard let map = try balancedPipelineDeviceMap(components: namedComponents, dtype: dtype, maxMemory: maxMemory,
                                                          inventory: .current(devices: devices)) else {
                throw OffloadError.invalidDeviceMap("device_map 'balanced' needs at least one accelerator (--device accel:N or --accel-capacity)")
            }
            for (name, component) in namedComponents {
                switch map.target(for: name) {
                case .accel(let index)?:
                    let device = devices.accel(index)
                    try component.moveParameters(to: device)
                    component.executionDevice = device
                default:
                    // Diffusers dispatches it with main_device=0 and force_hooks: sequential offload.
                    try component.enableSequentialCPUOffload(device: devices.accel(0))
                }
            }
            hfDeviceMap = map
        }
    }

    /// Module-level placement inside the components (each `dispatch`ed as Accelerate's
    /// `dispatch_model` does): `map` keys are a component name (`"vae": "disk"`) or a module
    /// path under one (`"unet.down_blocks.0": 0`, `"unet.mid_block": "cpu"`). A component the
    /// map does not name stays on the host. Records the map as `hfDeviceMap`.
    ///
    /// - Parameter offloadFolder: where `disk` weights not mapped from their checkpoint are
    ///   written (one subfolder per component).
    /// - Returns: what each mapped component's `cpu`/`disk` modules move, by component name.
    @discardableResult
    public func applyDeviceMap(_ map: DeviceMap, devices: DeviceSet, offloadFolder: String? = nil) throws -> [String: TransferStatistics] {
        guard !hasOffloading, hfDeviceMap == nil else {
            throw OffloadError.conflictingStrategy("the pipeline already has placement or offloading; call resetDeviceMap() or removeAllHooks() first")
        }
        try castPendingWeights(all: true)
        var perComponent: [String: DeviceMap] = [:]
        for entry in map.entries {
            let parts = entry.prefix.split(separator: ".", maxSplits: 1).map(String.init)
            guard let name = parts.first, namedComponents.contains(where: { $0.name == name }) else {
                throw OffloadError.unknownModule(
                    entry.prefix, model: "\(layout.className) (components \(namedComponents.map(\.name).joined(separator: ", ")))")
            }
            perComponent[name, default: DeviceMap()][parts.count > 1 ? parts[1] : ""] = entry.target
        }
        var statistics: [String: TransferStatistics] = [:]
        // A component mapped only to cpu/disk still computes on the pipeline's first accelerator.
        let execution = map.targets.first(where: \.isAccelerator).flatMap { $0.device(in: devices) }
        do {
            for (name, component) in namedComponents {
                guard let componentMap = perComponent[name] else { continue }
                statistics[name] = try component.dispatch(deviceMap: componentMap, devices: devices, executionDevice: execution,
                                                          offloadFolder: offloadFolder.map { $0 + "/" + name })
            }
        } catch {
            for component in components { try? component.removeAllHooks(); try? component.moveParameters(to: .cpu) }
            throw error
        }
        hfDeviceMap = map
        return statistics
    }

    /// Module-level maps computed per component with Accelerate's `strategy` (`auto` as in
    /// `ModelMixin.from_pretrained(device_map="auto")`), then `applyDeviceMap(_:)`. Components
    /// are planned in call order, each against what the earlier ones left: the devices' free
    /// memory, or `maxMemory` less what was already placed.
    @discardableResult
    public func applyDeviceMap(strategy: DeviceMapStrategy, devices: DeviceSet, maxMemory: [String: MemoryBudget]? = nil,
                               offloadFolder: String? = nil) throws -> [String: TransferStatistics] {
        var remaining = try maxMemory.map { try getMaxMemory($0, devices: devices) }
        var combined = DeviceMap()
        for (name, component) in namedComponents {
            let tree = ModuleTree(component)
            let budgets = remaining.map { Dictionary(uniqueKeysWithValues: $0.entries.map { ($0.device.description, MemoryBudget.bytes($0.bytes)) }) }
            let map = try determineDeviceMap(for: tree, request: .strategy(strategy), maxMemory: budgets, dtype: dtype,
                                             inventory: .current(devices: devices))
            for entry in map.entries { combined[entry.prefix.isEmpty ? name : name + "." + entry.prefix] = entry.target }
            if var left = remaining {
                let sizes = tree.moduleSizes(dtype: dtype)
                for entry in map.entries { left[entry.target] = left[entry.target].map { max(0, $0 - sizes[entry.prefix]) } }
                remaining = left
            }
        }
        return try applyDeviceMap(combined, devices: devices, offloadFolder: offloadFolder)
    }

    /// Undoes `applyDeviceMap`: hooks removed, every component back on the host.
    public func resetDeviceMap() throws {
        guard hfDeviceMap != nil else { return }
        for component in components {
            try component.removeAllHooks()
            try component.moveParameters(to: .cpu)
        }
        hfDeviceMap = nil
    }

    /// Diffusers refuses `.to()` and the offload methods on a device-mapped pipeline.
    func refuseIfDeviceMapped(_ what: String) throws {
        if let map = hfDeviceMap, map.count > 1 {
            throw OffloadError.conflictingStrategy("it seems like you have activated a device mapping strategy on the pipeline which doesn't allow \(what); call resetDeviceMap() first")
        }
    }
}
