import Models
import NN
import Offload
import Tensor

/// The memory techniques of Diffusers' pipelines, applied to every component. Switching
/// technique: `removeAllHooks()` first (as Diffusers requires), then enable another.
extension DiffusionPipeline {
    /// Whole components on `device` one at a time (the UNet stays for all steps).
    public func enableModelCPUOffload(device: Device) throws {
        try refuseIfDeviceMapped("enable_model_cpu_offload")
        modelOffload = try ModelCPUOffload(components: components, device: device, computeDType: dtype)
    }

    /// Each module's weights on `device` only during its own forward.
    @discardableResult
    public func enableSequentialCPUOffload(device: Device) throws -> [TransferStatistics] {
        try refuseIfDeviceMapped("enable_sequential_cpu_offload")
        return try allOrNothing { try components.map { try $0.enableSequentialCPUOffload(device: device, computeDType: dtype) } }
    }

    /// Group offloading of every component.
    @discardableResult
    public func enableGroupOffload(device: Device, options: GroupOffloadOptions) throws -> [GroupOffloadState] {
        var options = options
        options.computeDType = options.computeDType ?? dtype
        let states = try allOrNothing { try components.map { try $0.applyGroupOffloading(device: device, options: options) } }
        groupOffload = (device, options)
        return states
    }

    /// Degrade and retry for a denoising step: the denoiser one plan down, so that fewer of
    /// its weights are in memory while the step runs again — resident on the host (weights
    /// still the mapped checkpoint) to group offloading one block a group, whose pages are let
    /// go; block level to leaf level, on the same device with the same options. Returns what
    /// was done, or nil when there is no plan down (retrying off, converted or moved weights,
    /// layerwise casting, another strategy, or leaf level already).
    func denoiserPlanDown(after error: OutOfMemoryError) throws -> String? {
        // Removing the hooks would take layerwise casting's with them.
        guard degradesOnOutOfMemory, !denoiser.allHooks().contains(where: { $0.name == OffloadHookName.layerwiseCasting }) else { return nil }
        let device: Device, technique: BudgetCandidate.Technique
        var options: GroupOffloadOptions
        if let (current, set) = groupOffload, case .blockLevel = set.type {
            (device, options, technique) = (current, set, .groupLeaf)
            options.type = .leafLevel
        } else if groupOffload == nil, !denoiser.hasOffloadHooks, denoiser.executionDevice.isCPU,
                  denoiser.namedParameters().allSatisfy({ $0.parameter.value?.storage.isMapped ?? true }) {
            var blocks = GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1))
            blocks.computeDType = dtype
            (device, options, technique) = (.cpu, blocks, .groupBlock(blocksPerGroup: 1))
        } else {
            return nil
        }
        try denoiser.removeAllHooks()
        device.allocator.emptyCache()
        onPlanDown?(technique)
        try denoiser.applyGroupOffloading(device: device, options: options)
        denoiser.releaseMappedWeightPages()   // a resident phase had mapped them all
        groupOffload = (device, options)
        let how = technique == .groupLeaf ? "group-offloaded per leaf module" : "group-offloaded one block a group"
        return "a denoising step ran out of memory on \(error.device) (\(formatBytes(error.requestedBytes)) asked with "
            + "\(formatBytes(error.bytesInUse)) in use) and was run again with the denoiser \(how)"
    }

    /// With `castWeightsOnLoad: false`: converts the weights of every component that no
    /// offload hook casts on the way (all of them when `all`), before they compute or move.
    /// A call (not `all`) leaves them to its phases when those release their weights
    /// (`inPhase`), so that the converted copies live for one phase only.
    func castPendingWeights(all: Bool = false) throws {
        guard castPending else { return }
        var remaining = false
        for component in components {
            if !all && (component.hasOffloadHooks || releasesWeightPagesBetweenPhases) { remaining = true; continue }
            for slot in pendingCasts(component) { slot.value = try slot.value.map { try $0.to(dtype) } }
        }
        castPending = remaining
    }

    /// Runs `apply` on the components; if one fails, the hooks the others got are removed.
    private func allOrNothing<T>(_ apply: () throws -> T) throws -> T {
        do { return try apply() } catch {
            for component in components { try? component.removeAllHooks() }
            throw error
        }
    }

    /// Moves every component's weights to `device` (Diffusers' `pipe.to(device)`).
    public func to(_ device: Device) throws {
        try refuseIfDeviceMapped("`pipeline.to()`")
        guard !hasOffloading else {
            throw OffloadError.conflictingStrategy("cannot move a pipeline with offloading enabled; call removeAllHooks() first")
        }
        try castPendingWeights(all: true)
        for component in components { try component.moveParameters(to: device) }
    }

    /// What model offloading moved, when it is enabled.
    public var modelOffloadStatistics: TransferStatistics? { modelOffload?.statistics }

    /// Removes every hook of every component; weights go back to the host.
    public func removeAllHooks() throws {
        for component in components { try component.removeAllHooks() }
        modelOffload = nil
        groupOffload = nil
    }

    /// Whether an offload strategy or device map hooks a component (layerwise casting does not
    /// count: a cast model still moves and maps as a whole).
    var hasOffloading: Bool { components.contains { $0.hasOffloadHooks } }

    /// Every hook in the pipeline, by component and module path.
    public var hooks: [(component: String, path: String, name: String)] {
        namedComponents.flatMap { name, component in
            component.allHooks().map { (name, $0.path, $0.name) }
        }
    }
}
