import Foundation
import NN
import Tensor

/// Moves a device-mapped block's inputs to its device and its output back to where the inputs
/// came from (Accelerate's `AlignDevicesHook`).
///
/// Accelerate returns outputs to the input device only at the root (`io_same_device`) and
/// leaves every other block's output on the block's device; a model split inside a module
/// that adds a child's output to its own input (a residual) then fails with tensors on two
/// devices, which is why models must declare no-split classes. Here every block returns its
/// output, so the glue between blocks always computes on the execution device and any split
/// the map asks for runs; the cost is one activation copy per block boundary.
final class AlignDevicesHook: ModuleHook, @unchecked Sendable {
    let device: Device
    init(device: Device) { self.device = device }
    var inputDevice: Device? { device }
    var returnsOutputToInputDevice: Bool { true }
}

extension Module {
    /// Runs this model as `map` places it (Accelerate's `dispatch_model`, which Diffusers'
    /// `from_pretrained(device_map=...)` calls).
    ///
    /// - A map with one device and no `disk` entry moves the whole model there, no hooks
    ///   (unless that device is the host and `executionDevice` is an accelerator).
    /// - Otherwise the execution device is the first accelerator of the map (the host if it
    ///   names none). Modules mapped to an accelerator get their weights moved there and
    ///   compute there, inputs moved in and the output moved back. Modules mapped to `cpu` or
    ///   `disk` keep their weights on the host or in their files and bring each module's
    ///   weights to the execution device for its own forward (`disk`: read from the mapped
    ///   checkpoint, or from group files written to `offloadFolder` when the weights are not
    ///   mapped from their checkpoint, e.g. after a dtype change; pages are released after use).
    ///
    /// Errors (nothing is left applied): a key naming no module or parameter, parameters
    /// without a device, an accelerator the device set does not declare, a module whose own
    /// parameters are mapped to different devices, `disk` without a needed offload folder.
    ///
    /// - Parameter executionDevice: where the model computes when the map does not say (a
    ///   map of only `cpu`/`disk` entries then still runs there, its weights streamed in:
    ///   Accelerate's `main_device` with `force_hooks`, as Diffusers dispatches a pipeline
    ///   component that fits on no accelerator).
    /// - Returns: what the `cpu`/`disk` modules move per forward.
    @discardableResult
    public func dispatch(deviceMap map: DeviceMap, devices: DeviceSet, executionDevice: Device? = nil,
                         offloadFolder: String? = nil) throws -> TransferStatistics {
        try refuseStackedOffload()
        try map.validate(against: ModuleTree(self))
        for target in map.targets {
            if let index = target.accelIndex, !devices.declaredAccelIndices.isEmpty, !devices.declaredAccelIndices.contains(index) {
                let known = devices.declaredAccelIndices.sorted().map { "accel:\($0)" }.joined(separator: ", ")
                throw OffloadError.unknownDevice(target.description, context: "in the device map (the devices are cpu, \(known))")
            }
        }
        let statistics = TransferStatistics()
        let targets = map.targets
        let main = targets.first(where: \.isAccelerator)?.device(in: devices) ?? executionDevice ?? .cpu
        if targets.count == 1, let device = targets[0].device(in: devices), device == main || main.isCPU {
            try moveParameters(to: device)
            return statistics
        }
        if let folder = offloadFolder, map.usesDisk { try GroupDiskCache.prepare(folder: folder) }
        let placer = DeviceMapPlacer(map: map, devices: devices, main: main, offloadFolder: offloadFolder, statistics: statistics)
        do {
            try placer.place(self, path: "")
            try main.requireRoom(forLargestOf: placer.offloaded, strategy: "the device map's cpu/disk offload")
            if !hooks.contains(where: { $0.name == OffloadHookName.deviceMap }) {
                try registerHook(AlignDevicesHook(device: main), name: OffloadHookName.deviceMap)
            }
        } catch {
            try? removeAllHooks()   // nothing half-applied
            try? moveParameters(to: .cpu)
            throw error
        }
        self.executionDevice = main
        return statistics
    }
}

/// The walk of `dispatch`: finds the largest subtrees that the map sends to one device.
private final class DeviceMapPlacer {
    let map: DeviceMap
    let devices: DeviceSet
    let main: Device
    let offloadFolder: String?
    let statistics: TransferStatistics
    /// The groups of `cpu`/`disk` modules, brought to `main` one module at a time.
    private(set) var offloaded: [ParameterGroup] = []

    init(map: DeviceMap, devices: DeviceSet, main: Device, offloadFolder: String?, statistics: TransferStatistics) {
        self.map = map
        self.devices = devices
        self.main = main
        self.offloadFolder = offloadFolder
        self.statistics = statistics
    }

    func place(_ module: Module, path: String) throws {
        let parameters = module.namedParameters(prefix: path.isEmpty ? "" : path + ".")
        guard !parameters.isEmpty else { return }
        let targets = Set(try parameters.map { try map.requireTarget(for: $0.path) })
        if targets.count == 1, let target = targets.first {
            try placeBlock(module, path: path, target: target, ownOnly: false)
            return
        }
        // Split: each child on its own, then this module's own parameters as a block of one.
        for (name, child) in module.children { try place(child, path: path.isEmpty ? name : path + "." + name) }
        guard !module.parameters.isEmpty else { return }
        let prefix = path.isEmpty ? "" : path + "."
        let own = Set(try module.parameters.map { try map.requireTarget(for: prefix + $0.name) })
        guard own.count == 1, let target = own.first else {
            throw OffloadError.invalidDeviceMap(
                "the parameters of '\(path.isEmpty ? module.className : path)' are mapped to different devices; a module computes on one")
        }
        try placeBlock(module, path: path, target: target, ownOnly: true)
    }

    /// Puts the weights of `module` (its own only, or its whole subtree) where `target` says
    /// and hooks the modules that compute them.
    private func placeBlock(_ module: Module, path: String, target: DeviceTarget, ownOnly: Bool) throws {
        let subtree = ownOnly ? [(path: path, module: module)]
            : module.namedModules().map { (path: join(path, $0.path), module: $0.module) }
        let device: Device
        if let accel = target.accelIndex {
            device = devices.accel(accel)
            for (_, owner) in subtree {
                for (_, slot) in owner.parameters { slot.value = try slot.value.map { try $0.to(device) } }
            }
        } else {
            device = main
            for (ownerPath, owner) in subtree where !owner.parameters.isEmpty {
                let prefix = ownerPath.isEmpty ? "" : ownerPath + "."
                for (_, slot) in owner.parameters { slot.value = try slot.value.map { try $0.to(.cpu) } }
                let group = try ParameterGroup(id: ownerPath.isEmpty ? owner.className : ownerPath,
                                               slots: owner.parameters.map { (prefix + $0.name, $0.parameter) },
                                               statistics: statistics)
                if target == .disk, !group.homes.allSatisfy({ $0.storage.isMapped }) {
                    guard let offloadFolder else {
                        throw OffloadError.invalidDeviceMap(
                            "the device map sends '\(ownerPath)' to disk, but its weights are not memory-mapped from their checkpoint (another dtype?); give an offload folder (--offload-dir) for them")
                    }
                    try GroupDiskCache.rehome(group, folder: offloadFolder)
                }
                offloaded.append(group)
                try owner.registerHook(ResidencyHook(group: group, device: main), name: OffloadHookName.deviceMapOffload)
            }
        }
        for computing in ownOnly ? [module] : computingModules(module) where computing.isForwarding {
            try computing.registerHook(AlignDevicesHook(device: device), name: OffloadHookName.deviceMap)
        }
    }

    /// The modules whose forward runs `module`'s weights: itself, or for a container without
    /// a forward of its own (a module list, a namespace), its children's.
    private func computingModules(_ module: Module) -> [Module] {
        module.isForwarding ? [module] : module.children.flatMap { computingModules($0.module) }
    }

    private func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : b.isEmpty ? a : a + "." + b }
}

extension Module {
    /// Whether this module has a forward of its own (module lists and plain namespaces
    /// such as `time_embedding` only hold children).
    var isForwarding: Bool { !(self is any AnyModuleList) && type(of: self) != Module.self }
}
