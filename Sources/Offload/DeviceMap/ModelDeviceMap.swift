import Foundation
import NN
import Tensor

/// How Accelerate computes a model's device map (Diffusers' string `device_map` values).
public enum DeviceMapStrategy: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Same as `balanced` in Diffusers.
    case auto
    /// Budgets from `balancedMemory`: the model spread evenly over the accelerators.
    case balanced
    /// `balanced`, with as little as possible on accelerator 0.
    case balancedLow0 = "balanced_low_0"
    /// The raw budgets: fill accelerator 0, then 1, …, then `cpu`, then `disk`.
    case sequential

    public var description: String { rawValue }
}

/// A model-level `device_map` as Diffusers' `ModelMixin.from_pretrained` accepts it.
public enum ModelDeviceMapRequest: Sendable, Equatable {
    /// Compute the map with a strategy.
    case strategy(DeviceMapStrategy)
    /// The given map (`{"": target}` for a whole-model device).
    case map(DeviceMap)

    /// Reads a string value: a strategy name (`auto`, `balanced`, `balanced_low_0`,
    /// `sequential`) or a device (`cpu`, `accel`, `accel:N`, or an index `N`), which means
    /// `{"": device}`. Anything else throws Diffusers' "needs to be a device name ... but found X".
    /// `disk` is not a device name here, as in Diffusers (`torch.device("disk")` fails); it is
    /// a valid value inside a map.
    public init(parsing text: String) throws {
        if let strategy = DeviceMapStrategy(rawValue: text) {
            self = .strategy(strategy)
            return
        }
        let name = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let index = Int(name), index < 0 { throw OffloadError.negativeDeviceMapIndex(index) }
        if name == "accel" {
            // torch.device("cuda") without an index means the current device, 0.
            self = .map(.wholeModel(.accel(0)))
            return
        }
        guard let target = DeviceTarget(parsing: name), target != .disk else {
            throw OffloadError.invalidDeviceMapString(text)
        }
        self = .map(.wholeModel(target))
    }

    /// An integer value: `{"": accel(index)}`; a negative one throws Diffusers' error.
    public init(index: Int) throws {
        guard index >= 0 else { throw OffloadError.negativeDeviceMapIndex(index) }
        self = .map(.wholeModel(.accel(index)))
    }
}

/// Diffusers' `ModelMixin._get_no_split_modules`: the union of the no-split classes declared
/// by the model and by every model nested in it (a module declaring a non-empty list),
/// without descending into modules already of a no-split class. The root must declare some,
/// else Diffusers' "does not support device_map=..." error naming the class and `strategy`.
public func noSplitModuleClasses(of tree: ModuleTree, strategy: DeviceMapStrategy) throws -> [String] {
    guard !tree.root.noSplitModuleClasses.isEmpty else {
        throw OffloadError.noSplitModulesUndeclared(model: tree.root.className, strategy: strategy.rawValue)
    }
    var classes: [String] = []
    var stack = [0]
    while let index = stack.popLast() {
        let node = tree.nodes[index]
        guard !classes.contains(node.className) else { continue }
        for name in node.noSplitModuleClasses where !classes.contains(name) { classes.append(name) }
        stack += node.children.map(\.node)
    }
    return classes
}

/// Diffusers' `_determine_device_map` for one model.
///
/// - `.map`: returned as given, after checking it against the model (`DeviceMap.validate`).
/// - `.strategy`: the no-split classes of the model (an error if it declares none); then
///   budgets: `sequential` → `getMaxMemory(maxMemory)`, the others → `balancedMemory`
///   (`balanced_low_0` with `lowZero`); then `inferAutoDeviceMap` in `dtype`.
///
/// - Parameters:
///   - maxMemory: the user's budgets (`nil`: each device's free memory from `inventory`).
///   - dtype: the dtype the weights will be loaded in (`torch_dtype`); nil keeps each
///     parameter's own.
///   - specialDTypes: parameters kept in another dtype (Diffusers' `_keep_in_fp32_modules`).
public func determineDeviceMap(for tree: ModuleTree, request: ModelDeviceMapRequest,
                               maxMemory: [String: MemoryBudget]? = nil, dtype: DType? = nil,
                               specialDTypes: [String: DType] = [:], inventory: MemoryInventory) throws -> DeviceMap {
    switch request {
    case .map(let map):
        try map.validate(against: tree)
        return map
    case .strategy(let strategy):
        let noSplit = try noSplitModuleClasses(of: tree, strategy: strategy)
        var budgets = try getMaxMemory(maxMemory, inventory: inventory)
        if strategy != .sequential {
            budgets = try tree.balancedMemory(budgets, userSetMaxMemory: maxMemory != nil, noSplitModuleClasses: noSplit,
                                              dtype: dtype, specialDTypes: specialDTypes,
                                              lowZero: strategy == .balancedLow0)
        }
        return tree.inferAutoDeviceMap(maxMemory: budgets, noSplitModuleClasses: noSplit, dtype: dtype,
                                       specialDTypes: specialDTypes).deviceMap
    }
}

/// `determineDeviceMap` for a model.
public func determineDeviceMap(for model: Module, request: ModelDeviceMapRequest,
                               maxMemory: [String: MemoryBudget]? = nil, dtype: DType? = nil,
                               specialDTypes: [String: DType] = [:], inventory: MemoryInventory) throws -> DeviceMap {
    try determineDeviceMap(for: ModuleTree(model), request: request, maxMemory: maxMemory, dtype: dtype,
                           specialDTypes: specialDTypes, inventory: inventory)
}
