import Tensor

extension ModuleTree {
    /// Accelerate's `get_balanced_memory`: budgets that spread the model evenly over the
    /// accelerators, for `inferAutoDeviceMap`.
    ///
    /// - `n` counts the accelerators with a budget above 0. With none, `maxMemory` is returned
    ///   as is. With one, `lowZero` is off and, when the user set no budget
    ///   (`userSetMaxMemory == false`), that accelerator keeps 90 % of its memory for
    ///   activations (Accelerate stores `0.9 × free` as a float; here it is rounded down, which
    ///   places every module the same way since sizes are whole bytes).
    /// - `perAccelerator = total / (n − 1 if lowZero else n) + buffer`, where `buffer` is
    ///   `int(1.25 × max(size of the first-seen instance of the largest no-split class,
    ///   mean size of the final modules))`.
    /// - Every accelerator but the last (by index) is capped at `min(perAccelerator, budget)`;
    ///   the last keeps its budget in case the buffer was not enough. With `lowZero`, accelerator
    ///   0 keeps its budget in that pass and is then capped at `max(0, total − Σ budgets of
    ///   accelerators 1..<n)`.
    ///
    /// Sizes are in the target `dtype` (as `moduleSizes`).
    public func balancedMemory(_ maxMemory: MaxMemory, userSetMaxMemory: Bool, noSplitModuleClasses: [String],
                               dtype: DType? = nil, specialDTypes: [String: DType] = [:],
                               lowZero: Bool = false) throws -> MaxMemory {
        var maxMemory = maxMemory
        let accelerators = maxMemory.entries.filter { $0.device.isAccelerator && $0.bytes > 0 }.map(\.device)
        let count = accelerators.count
        guard count > 0 else { return maxMemory }
        var lowZero = lowZero
        if count == 1 {
            // Low-zero cannot apply to a single accelerator; it still keeps a buffer.
            lowZero = false
            if !userSetMaxMemory, let first = maxMemory.accelerators.first, let bytes = maxMemory[first] {
                // Accelerate scales the first integer key only (then `break`s).
                maxMemory[first] = Int(Double(bytes) * 0.9)
            }
        }

        let sizes = moduleSizes(dtype: dtype, specialDTypes: specialDTypes)
        var perAccelerator = sizes.total / (lowZero ? count - 1 : count)

        // The first instance met (in parameter order) of each no-split class, and the largest of those.
        var noSplitBuffer = 0
        if !noSplitModuleClasses.isEmpty {
            let wanted = Set(noSplitModuleClasses)
            var firstSeen: [String: Int] = [:]
            for path in sizes.order where !path.isEmpty {
                // Tensor paths are not modules, so their class is never a no-split class.
                if let node = node(at: path), wanted.contains(node.className), firstSeen[node.className] == nil {
                    firstSeen[node.className] = sizes[path]
                }
                if Set(firstSeen.keys) == wanted { break }
            }
            noSplitBuffer = firstSeen.values.max() ?? 0
        }

        // The mean size of the final modules: drop the leaves of the size table (the tensors),
        // and the leaves of what remains are the modules that own tensors but no such children.
        let leaves = Self.leaves(of: sizes)
        let modules = sizes.removing(Set(leaves))
        let finalModules = Self.leaves(of: modules)
        let sum = finalModules.reduce(0) { $0 + modules[$1] }
        let meanLeaves = Int(Double(sum) / Double(max(finalModules.count, 1)))
        perAccelerator += Int(1.25 * Double(max(noSplitBuffer, meanLeaves)))

        let indices = accelerators.compactMap(\.accelIndex).sorted()
        for index in indices.dropLast() {
            let device = DeviceTarget.accel(index)
            let current = maxMemory[device] ?? 0
            // With lowZero, accelerator 0 is left as is here (Accelerate: `min(max_memory[0], max_memory[0])`).
            let cap = lowZero && index == 0 ? (maxMemory[.accel(0)] ?? current) : perAccelerator
            maxMemory[device] = min(cap, current)
        }
        if lowZero {
            // Accelerate sums accelerators 1..<n by index, whatever indices were given.
            var others = 0
            for index in 1..<count {
                guard let bytes = maxMemory[.accel(index)] else {
                    throw OffloadError.invalidOption(
                        "balanced_low_0 needs budgets for accel:0..<accel:\(count) (Accelerate reads them by index), "
                            + "but accel:\(index) has none")
                }
                others += bytes
            }
            guard let zero = maxMemory[.accel(0)] else {
                throw OffloadError.invalidOption("balanced_low_0 needs a budget for accel:0")
            }
            maxMemory[.accel(0)] = min(max(0, modules.total - others), zero)
        }
        return maxMemory
    }

    /// Accelerate's `get_module_leaves`: the keys of `sizes` (other than "") that no other key
    /// extends by one dotted component. Top-level keys are nobody's children, as in Accelerate.
    static func leaves(of sizes: ModuleSizes) -> [String] {
        var childCount: [String: Int] = [:]
        for path in sizes.order where !path.isEmpty {
            guard let dot = path.lastIndex(of: ".") else { continue }
            childCount[String(path[..<dot]), default: 0] += 1
        }
        return sizes.order.filter { !$0.isEmpty && childCount[$0, default: 0] == 0 }
    }
}
