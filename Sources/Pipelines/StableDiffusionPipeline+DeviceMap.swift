import Models
import NN
import Offload
import Tensor

/// Pipeline-level placement (Diffusers' `from_pretrained(device_map=...)` for pipelines): whole
/// components spread over the accelerators by size; one that fits nowhere stays on the host with
/// sequential offload onto the first accelerator.
extension StableDiffusionPipeline {
    /// Places the components as `request` says and records `hfDeviceMap`.
    public func applyDeviceMap(_ request: PipelineDeviceMapRequest, devices: DeviceSet,
                               maxMemory: [String: MemoryBudget]? = nil) throws {
        guard hooks.isEmpty, hfDeviceMap == nil else {
            throw OffloadError.conflictingStrategy("the pipeline already has placement or offloading; call resetDeviceMap() or removeAllHooks() first")
        }
        switch request {
        case .device(let target):
            guard let device = target.device(in: devices) else {
                throw OffloadError.invalidDeviceMap("a pipeline cannot be placed on disk as a whole")
            }
            try to(device)
        case .balanced:
            let named = zip(["text_encoder", "unet", "vae"], components).map { (name: $0, module: $1) }
            guard let map = try balancedPipelineDeviceMap(components: named, dtype: dtype, maxMemory: maxMemory,
                                                          inventory: .current(devices: devices)) else {
                throw OffloadError.invalidDeviceMap("device_map 'balanced' needs at least one accelerator (--device accel:N or --accel-capacity)")
            }
            for (name, component) in named {
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
