import NN
import Tensor

/// A pipeline-level `device_map`, as `DiffusionPipeline.from_pretrained` accepts it: the
/// `balanced` strategy, or one device type for every component.
public enum PipelineDeviceMapRequest: Sendable, Equatable {
    /// Whole components spread over the accelerators by size (`assignComponentsToDevices`).
    case balanced
    /// Every component on this device (`"accel"` → accelerator 0, `"cpu"` → host).
    case device(DeviceTarget)

    /// Diffusers' `SUPPORTED_DEVICE_MAP` (`["balanced", get_device(), "cpu"]`), with `accel`
    /// as this port's device type.
    public static let supportedValues = ["balanced", "accel", "cpu"]

    /// Reads the value; anything but `supportedValues` (compared exactly, as Diffusers does)
    /// throws Diffusers' NotImplementedError message, "X not supported. Supported strategies
    /// are: balanced, accel, cpu". `auto` is rejected too (diffusers#11555: a pipeline has no
    /// auto placement), and so are indexed devices such as `accel:1`.
    public init(parsing text: String) throws {
        switch text {
        case "balanced": self = .balanced
        case "accel": self = .device(.accel(0))
        case "cpu": self = .device(.cpu)
        default: throw OffloadError.unsupportedPipelineDeviceMap(text)
        }
    }
}

/// Diffusers' `_assign_components_to_devices` (`device_mapping_strategy="balanced"`).
///
/// Components (largest first, as `balancedPipelineDeviceMap` sorts them) are dealt to the
/// devices along the snake cycle `devices + devices.reversed()` (e.g. 1, 0, 0, 1, 1, 0, …):
/// a component that fits the device at the current position goes there, its size is
/// subtracted and the position advances; one that does not fit goes to `cpu` and the
/// position stays, so the next component tries the same device.
///
/// The map lists devices in the order they first received a component, each device's
/// components in assignment order (Diffusers builds `{device: [components]}` and flattens
/// it), e.g. `{"unet": 1, "vae": 1, "text_encoder": 0}`.
///
/// Deliberate fix: Diffusers writes `mapping["cpu"] = [component]`, so each overflowing
/// component replaces the previous one, which is left out of the map and then loads on the
/// host without the sequential-offload hooks the `cpu` entry gets (while the pipeline runs
/// on the accelerator). That is plainly a bug; here every overflowing component stays in the
/// map under `cpu`. With at most one overflow the result equals Diffusers'.
public func assignComponentsToDevices(_ componentSizes: [(name: String, bytes: Int)],
                                      deviceMemory: [(device: DeviceTarget, bytes: Int)]) -> DeviceMap {
    guard !deviceMemory.isEmpty else { return DeviceMap() }
    let cycle = deviceMemory.map(\.device) + deviceMemory.map(\.device).reversed()
    var free: [DeviceTarget: Int] = [:]
    for (device, bytes) in deviceMemory { free[device] = bytes }
    var byDevice: [(device: DeviceTarget, components: [String])] = []
    func assign(_ component: String, to device: DeviceTarget) {
        if let index = byDevice.firstIndex(where: { $0.device == device }) {
            byDevice[index].components.append(component)
        } else {
            byDevice.append((device, [component]))
        }
    }
    var position = 0
    for (component, bytes) in componentSizes {
        let device = cycle[position % cycle.count]
        if bytes > free[device, default: 0] {
            assign(component, to: .cpu)   // Diffusers: `mapping["cpu"] = [component]` (see above)
        } else {
            assign(component, to: device)
            free[device, default: 0] -= bytes
            position += 1
        }
    }
    return DeviceMap(byDevice.flatMap { entry in entry.components.map { ($0, entry.device) } })
}

/// Diffusers' `_get_final_device_map` for `device_map="balanced"`: the component map of a
/// pipeline, or nil when there is no accelerator budget (then nothing is mapped).
///
/// 1. Each component's size in its target dtype (`componentDTypes[name]`, else `dtype`,
///    float32 by default as in Diffusers; never more than a weight's own dtype), sorted
///    largest first (ties keep the given order).
/// 2. The budgets from `getMaxMemory(maxMemory)`, sorted by size, largest first (ties keep
///    Accelerate's device order), without `cpu`. A `disk` budget the user gave stays in the
///    list and can receive components, as in Diffusers.
/// 3. `assignComponentsToDevices`.
public func balancedPipelineDeviceMap(components: [(name: String, tree: ModuleTree)], dtype: DType = .f32,
                                      componentDTypes: [String: DType] = [:],
                                      maxMemory: [String: MemoryBudget]? = nil,
                                      inventory: MemoryInventory) throws -> DeviceMap? {
    let sizes = components.map { component in
        (name: component.name,
         bytes: component.tree.moduleSizes(dtype: componentDTypes[component.name] ?? dtype).total)
    }
    let sortedSizes = sizes.enumerated().sorted { a, b in
        a.element.bytes != b.element.bytes ? a.element.bytes > b.element.bytes : a.offset < b.offset
    }.map(\.element)
    let budgets = try getMaxMemory(maxMemory, inventory: inventory).entries
        .enumerated()
        .sorted { a, b in a.element.bytes != b.element.bytes ? a.element.bytes > b.element.bytes : a.offset < b.offset }
        .map(\.element)
        .filter { $0.device != .cpu }
    guard !budgets.isEmpty else { return nil }
    return assignComponentsToDevices(sortedSizes, deviceMemory: budgets.map { ($0.device, $0.bytes) })
}

/// `balancedPipelineDeviceMap` for modules.
public func balancedPipelineDeviceMap(components: [(name: String, module: Module)], dtype: DType = .f32,
                                      componentDTypes: [String: DType] = [:],
                                      maxMemory: [String: MemoryBudget]? = nil,
                                      inventory: MemoryInventory) throws -> DeviceMap? {
    try balancedPipelineDeviceMap(components: components.map { ($0.name, ModuleTree($0.module)) }, dtype: dtype,
                                  componentDTypes: componentDTypes, maxMemory: maxMemory, inventory: inventory)
}
