import Tensor

/// What `inferAutoDeviceMap` decided.
public struct AutoDeviceMap: Sendable, Equatable {
    /// The map (cleaned unless asked otherwise).
    public var deviceMap: DeviceMap
    /// Devices that received nothing because the first module offered to each did not fit,
    /// with the bytes that module needed there (its size plus the reserve); Accelerate logs
    /// these as "no modules could be assigned to the following devices".
    public var unusedDevices: [MaxMemory.Entry]
}

extension ModuleTree {
    /// An item of Accelerate's `modules_to_treat`: a module, or a tensor (a parameter or buffer).
    struct Pending {
        var name: String
        /// The module's node, or nil for a tensor.
        var node: Int?
    }

    /// Accelerate's `get_max_layer_size`: the largest "layer" in `modules` and the names of
    /// those that reach it. A layer is a module without children, a no-split module, or a
    /// tensor; other modules are searched depth first.
    func maxLayerSize(_ modules: [Pending], sizes: ModuleSizes, noSplit: Set<String>) -> (size: Int, names: [String]) {
        var maxSize = 0
        var names: [String] = []
        // A stack with the front of Accelerate's list at its end.
        var stack = Array(modules.reversed())
        while let item = stack.popLast() {
            let node = item.node.map { nodes[$0] }
            if let node, !node.children.isEmpty, !noSplit.contains(node.className) {
                stack.append(contentsOf: node.children.reversed().map { Pending(name: node.path(of: $0.name), node: $0.node) })
                continue
            }
            let size = sizes[item.name]
            if size > maxSize {
                maxSize = size
                names = [item.name]
            } else if size == maxSize {
                names.append(item.name)
            }
        }
        return (maxSize, names)
    }

    /// The largest layer of the model as Accelerate's `calculate_maximum_sizes` finds it (over
    /// the root's parameters, children and buffers): its size in `dtype` and the names of the
    /// layers of that size. This is what the first accelerator and `cpu` keep free.
    public func largestLayer(noSplitModuleClasses: [String], dtype: DType? = nil) -> (size: Int, names: [String]) {
        let items = root.parameters.map { Pending(name: $0.name, node: nil) }
            + root.children.map { Pending(name: $0.name, node: $0.node) }
            + root.buffers.map { Pending(name: $0.name, node: nil) }
        return maxLayerSize(items, sizes: moduleSizes(dtype: dtype), noSplit: Set(noSplitModuleClasses))
    }

    /// Accelerate's `infer_auto_device_map` (without tied parameters, which these models do
    /// not have, and without `fallback_allocation`, which Diffusers does not ask for).
    ///
    /// Devices are the keys of `maxMemory` with `disk` always appended, unbounded (whatever
    /// budget it was given). The first accelerator and `cpu` keep room for the largest layer
    /// still to place (`max_layer_size`), so that an offloaded layer can be brought back.
    /// The root's parameters, children and buffers are walked in order: an item that fits the
    /// current device goes there; one that does not is replaced by its own parameters and
    /// children when it has children and is not of a no-split class; otherwise the next device
    /// is taken (the reserve counted as used on the one left). Sizes follow `moduleSizes(dtype:)`.
    /// With `clean`, subtrees that landed on one device collapse into one key
    /// (`cleanDeviceMap`), and the keys are listed in model order.
    public func inferAutoDeviceMap(maxMemory: MaxMemory, noSplitModuleClasses: [String], dtype: DType? = nil,
                                   specialDTypes: [String: DType] = [:], clean: Bool = true) -> AutoDeviceMap {
        let noSplit = Set(noSplitModuleClasses)
        var devices = maxMemory.devices
        if !devices.contains(.disk) { devices.append(.disk) }
        let accelerators = devices.filter { $0 != .cpu && $0 != .disk }
        // Devices that keep room for the largest layer.
        let mainDevices: Set<DeviceTarget> = accelerators.first.map { [$0, .cpu] } ?? [.cpu]

        let sizes = moduleSizes(dtype: dtype, specialDTypes: specialDTypes)
        // The front of Accelerate's list is the end of this stack.
        var stack: [Pending] = []
        stack += root.parameters.map { Pending(name: $0.name, node: nil) }
        stack += root.children.map { Pending(name: $0.name, node: $0.node) }
        stack += root.buffers.map { Pending(name: $0.name, node: nil) }
        stack.reverse()

        var map: [(String, DeviceTarget)] = []
        var used: [DeviceTarget: Int] = [:]
        var unused: [MaxMemory.Entry] = []
        var current = 0
        var (maxLayer, maxLayerNames) = maxLayerSize(stack.reversed(), sizes: sizes, noSplit: noSplit)

        while let item = stack.popLast() {
            // The largest remaining layer may have been this one.
            maxLayerNames.removeAll { $0 == item.name || $0.hasPrefix(item.name + ".") }
            if maxLayerNames.isEmpty {
                (maxLayer, maxLayerNames) = maxLayerSize(stack.reversed().filter { $0.node != nil }, sizes: sizes,
                                                         noSplit: noSplit)
            }
            let size = sizes[item.name]
            let device = devices[current]
            var capacity = device == .disk ? nil : maxMemory[device]
            var reserved = 0
            if mainDevices.contains(device), let limit = capacity {
                capacity = limit - maxLayer
                reserved = maxLayer
            }
            let deviceUsed = used[device, default: 0]
            guard let limit = capacity, deviceUsed + size > limit else {
                used[device] = deviceUsed + size
                map.append((item.name, device))
                continue
            }
            // It does not fit: split it if it has children and may be split.
            if let index = item.node, !nodes[index].children.isEmpty, !noSplit.contains(nodes[index].className) {
                let node = nodes[index]
                let parts = node.parameters.map { Pending(name: node.path(of: $0.name), node: nil) }
                    + node.children.map { Pending(name: node.path(of: $0.name), node: $0.node) }
                stack.append(contentsOf: parts.reversed())
                (maxLayer, maxLayerNames) = maxLayerSize(stack.reversed().filter { $0.node != nil }, sizes: sizes,
                                                         noSplit: noSplit)
                continue
            }
            // Otherwise move on to the next device, counting the reserve as used on this one.
            if deviceUsed == 0 { unused.append(MaxMemory.Entry(device: device, bytes: size + reserved)) }
            used[device] = deviceUsed + reserved
            current += 1
            stack.append(item)
        }

        var result = DeviceMap(map)
        if clean { result = cleanDeviceMap(result) }
        return AutoDeviceMap(deviceMap: result, unusedDevices: unused)
    }

    /// Accelerate's `clean_device_map`: wherever every key under a module maps to one
    /// device and there is more than one such key, they are replaced by the module's own key;
    /// then the same for each child. Accelerate visits children in a set's order, so its
    /// key order varies between runs; here the keys are sorted into model order.
    public func cleanDeviceMap(_ map: DeviceMap) -> DeviceMap {
        var entries = map.entries.map { ($0.prefix, $0.target) }
        Self.clean(&entries, module: "")
        let order = modelOrder()
        let sorted = entries.enumerated().sorted { a, b in
            let x = order[a.element.0] ?? Int.max, y = order[b.element.0] ?? Int.max
            return x != y ? x < y : a.offset < b.offset
        }
        return DeviceMap(sorted.map(\.element))
    }

    static func clean(_ entries: inout [(String, DeviceTarget)], module: String) {
        let prefix = module.isEmpty ? "" : module + "."
        let values = entries.filter { $0.0.hasPrefix(prefix) }.map(\.1)
        if values.count > 1, Set(values).count == 1 {
            entries.removeAll { $0.0.hasPrefix(prefix) }
            entries.append((module, values[0]))
        }
        let depth = module.isEmpty ? 1 : module.split(separator: ".", omittingEmptySubsequences: false).count + 1
        var children: [String] = []
        for (key, _) in entries where key.hasPrefix(prefix) && key.count > module.count {
            let child = key.split(separator: ".", omittingEmptySubsequences: false).prefix(depth).joined(separator: ".")
            if !children.contains(child) { children.append(child) }
        }
        for child in children { clean(&entries, module: child) }
    }
}
