import Dispatch
import Foundation
import NN
import Tensor

/// How group offloading cuts a model into groups (Diffusers' `offload_type`).
public enum GroupOffloadType: Sendable, Equatable {
    /// Runs of `blocksPerGroup` consecutive blocks of each repeated-block list; everything else
    /// is one "unmatched" group resident for the whole forward.
    case blockLevel(blocksPerGroup: Int)
    /// Every module that owns parameters is its own group.
    case leafLevel
}

/// Options of `applyGroupOffloading`, named as Diffusers names them.
public struct GroupOffloadOptions: Sendable {
    public var type: GroupOffloadType
    /// Prefetch the next group on a background transfer queue while the current one computes
    /// (the execution order is traced on the first forward).
    public var useStream = false
    /// Accepted for parity with Diffusers; copies here never race the compute, so it changes nothing.
    public var recordStream = false
    /// Accepted for parity: homes are never staged (pinned) copies here, so memory is already low.
    public var lowCPUMemUsage = false
    /// Write each group's weights to a file in this folder once and map them from there (the
    /// disk tier); weights already mapped from their checkpoint need no file.
    public var offloadToDiskPath: String?
    /// With `useStream`: keep copying the groups that follow until this many bytes are on their
    /// way (at least one group). 0 prefetches exactly one group ahead, as Diffusers does; more
    /// lets a large group's copy start behind several small ones, at that many bytes of memory.
    /// On the CPU's disk tier (groups read in place from their mapped files) the same budget
    /// bounds how far ahead the following groups' pages are read into the page cache.
    public var prefetchBytes = 0
    /// Cast floating-point weights to this dtype as each group comes to the device (the homes
    /// keep their dtype, e.g. an f32 checkpoint left memory-mapped); nil: no cast.
    public var computeDType: DType?

    public init(type: GroupOffloadType, useStream: Bool = false, recordStream: Bool = false, lowCPUMemUsage: Bool = false,
                offloadToDiskPath: String? = nil) {
        self.type = type
        self.useStream = useStream
        self.recordStream = recordStream
        self.lowCPUMemUsage = lowCPUMemUsage
        self.offloadToDiskPath = offloadToDiskPath
    }
}

/// The groups of one offloaded model and the order they ran in (for prefetching).
public final class GroupOffloadState: @unchecked Sendable {
    public let device: Device
    public let statistics = TransferStatistics()
    public private(set) var groups: [ParameterGroup] = []
    let prefetching: Bool
    /// The disk tier: on the CPU, groups mapped from their files are read in place; the pages of
    /// the groups that follow are asked for ahead (`ParameterGroup.advisePages`), off the
    /// compute thread, so that a step's reads hide behind its compute.
    let prefetchesPages: Bool
    private let queue = DispatchQueue(label: "swift-diffusers.group-offload.transfers")
    private let pageQueue = DispatchQueue(label: "swift-diffusers.group-offload.page-prefetch")
    /// Group order seen on the first forward; nil until it finished.
    private var order: [ObjectIdentifier: Int]?
    private var trace: [ParameterGroup] = []

    let prefetchBytes: Int
    let computeDType: DType?
    /// On the CPU, the file the packed copies of in-place (mapped) groups go to; nil elsewhere.
    public internal(set) var packedWeightFile: SpillFile?

    init(device: Device, prefetching: Bool, prefetchBytes: Int, computeDType: DType?) {
        self.device = device
        self.prefetching = prefetching
        prefetchesPages = device.isCPU
        self.prefetchBytes = prefetchBytes
        self.computeDType = computeDType
    }

    func add(_ group: ParameterGroup) { groups.append(group) }

    /// A group's onload leader is about to run: make it resident, prefetch its successor.
    func willRun(_ group: ParameterGroup) throws {
        try group.onload(to: device)
        guard prefetching || prefetchesPages else { return }
        if let order, prefetchesPages {
            guard let index = order[ObjectIdentifier(group)] else { return }
            advisePages(trace[(index + 1)...] + trace[..<index])
        } else if let order {
            guard let index = order[ObjectIdentifier(group)] else { return }
            // With a budget the look-ahead runs on into the next forward's first groups (a
            // denoising loop calls again at once), so the copy engine keeps working through
            // the last, compute-heavy groups instead of idling until this forward ends.
            var ahead = 0
            func topUp(_ groups: ArraySlice<ParameterGroup>) -> Bool {
                for next in groups {
                    if ahead > 0 && ahead + next.byteCount > prefetchBytes { return false }
                    next.prefetch(to: device, on: queue)
                    ahead += next.byteCount
                }
                return true
            }
            if topUp(trace[(index + 1)...]), prefetchBytes > 0 { _ = topUp(trace[..<index]) }
        } else if !trace.contains(where: { $0 === group }) {
            trace.append(group)
        }
    }

    /// The root's forward ended: the first one fixes the execution order. With a prefetch
    /// budget, the first groups of the next forward start copying now (a denoising loop calls
    /// the model again at once), so a call does not begin with an idle copy engine; `endCall`
    /// drops them when no call follows.
    func forwardEnded() {
        guard prefetching || prefetchesPages else { return }
        if order == nil {
            order = Dictionary(uniqueKeysWithValues: trace.enumerated().map { (ObjectIdentifier($0.element), $0.offset) })
        }
        if prefetchesPages { return advisePages(trace[...]) }
        guard prefetchBytes > 0 else { return }
        var ahead = 0
        for next in trace {
            if ahead > 0 && ahead + next.byteCount > prefetchBytes { break }
            next.prefetch(to: device, on: queue)
            ahead += next.byteCount
        }
    }

    /// Asks for the pages of the mapped groups at the head of `upcoming`, at least one and up to
    /// `prefetchBytes`, on the page queue (`madvise` may block while it queues the reads).
    private func advisePages(_ upcoming: ArraySlice<ParameterGroup>) {
        var ahead = 0, chosen: [ParameterGroup] = []
        for next in upcoming where next.readsHomesInPlace {
            if ahead > 0 && ahead + next.byteCount > prefetchBytes { break }
            chosen.append(next)
            ahead += next.byteCount
        }
        let storages = chosen.flatMap { $0.claimPageAdvice() }
        guard !storages.isEmpty else { return }
        pageQueue.async { for storage in storages { storage.adviseWillNeed() } }
    }

    /// Drops groups copied ahead for a forward that is not coming.
    func dropPrefetched() {
        for group in trace { group.offload() }
    }

    /// Ids of the groups in the order they first ran (empty before the first forward).
    public var executionOrder: [String] { trace.map(\.id) }
}

final class GroupHook: ModuleHook, @unchecked Sendable {
    let state: GroupOffloadState
    let group: ParameterGroup
    let onloadLeader: Bool, offloadLeader: Bool

    init(state: GroupOffloadState, group: ParameterGroup, onloadLeader: Bool, offloadLeader: Bool) {
        self.state = state
        self.group = group
        self.onloadLeader = onloadLeader
        self.offloadLeader = offloadLeader
    }

    func preForward(_ module: Module) throws { if onloadLeader { try state.willRun(group) } }
    func postForward(_ module: Module) throws { if offloadLeader { group.offload() } }
    func detach(from module: Module) throws { group.offload() }
}

/// On the root: its unmatched group stays resident for the whole forward (synchronously), and
/// the end of the first forward fixes the prefetch order.
final class GroupRootHook: ModuleHook, @unchecked Sendable {
    let state: GroupOffloadState
    let group: ParameterGroup?

    init(state: GroupOffloadState, group: ParameterGroup?) {
        self.state = state
        self.group = group
    }

    func preForward(_ module: Module) throws { try group?.onload(to: state.device) }
    func postForward(_ module: Module) throws {
        group?.offload()
        state.forwardEnded()
    }
    func callEnded(_ module: Module) throws { state.dropPrefetched() }
    func detach(from module: Module) throws {
        state.dropPrefetched()
        group?.offload()
        for group in state.groups { group.spillDerived(to: nil) }
    }
}

extension Module {
    /// Group offloading (Diffusers' `apply_group_offloading` / `enable_group_offload`): the
    /// model's weights live on the host and come to `device` a group at a time.
    @discardableResult
    public func applyGroupOffloading(device: Device, options: GroupOffloadOptions) throws -> GroupOffloadState {
        if options.recordStream && !options.useStream {
            throw OffloadError.invalidOption("recordStream requires useStream")
        }
        if options.useStream && device.isCPU {
            throw OffloadError.invalidOption("using streams for data transfer requires an accelerator device (accel:N), not cpu")
        }
        var type = options.type
        if case .blockLevel(let n) = type {
            guard n >= 1 else { throw OffloadError.invalidOption("blocksPerGroup must be at least 1, not \(n)") }
            // As Diffusers: with streams, one block per group (prefetch assumes it).
            if options.useStream && n != 1 { type = .blockLevel(blocksPerGroup: 1) }
        }
        try refuseStackedOffload()
        if let folder = options.offloadToDiskPath { try GroupDiskCache.prepare(folder: folder) }
        guard options.prefetchBytes >= 0 else { throw OffloadError.invalidOption("prefetchBytes must not be negative") }
        let state = GroupOffloadState(device: device, prefetching: options.useStream, prefetchBytes: options.prefetchBytes,
                                      computeDType: options.computeDType)
        do {
            try installGroups(type, state: state)
            if let folder = options.offloadToDiskPath {
                for group in state.groups where !group.homes.allSatisfy({ $0.storage.isMapped }) {
                    try GroupDiskCache.rehome(group, folder: folder)
                }
            }
            // On the CPU a mapped group is read in place, and its pages go after each forward;
            // the packed copies made from it go to a file too, so they come back by a page fault
            // rather than by packing again at every call.
            let inPlace = device.isCPU ? state.groups.filter(\.readsHomesInPlace) : []
            if !inPlace.isEmpty {
                let file = try SpillFile(folder: options.offloadToDiskPath ?? GroupDiskCache.defaultPackedWeightFolder)
                for group in inPlace { group.spillDerived(to: file) }
                state.packedWeightFile = file
            }
            // Groups read in place take none of the host allocator's bytes.
            try device.requireRoom(forLargestOf: state.groups.filter { group in !inPlace.contains { $0 === group } },
                                   strategy: "group offloading")
        } catch {
            try? removeAllHooks()   // nothing half-applied
            throw error
        }
        executionDevice = device
        return state
    }

    /// Makes the groups of `groupOffloadLayout(type)` and hooks them: a group around its
    /// blocks' (or leaf's) forward, a nested level's unmatched group around that level's, and
    /// the root's own group (if any) on the root for the whole forward — whose hook, with a
    /// group or without, also tells the groups when a call ends.
    private func installGroups(_ type: GroupOffloadType, state: GroupOffloadState) throws {
        var rootGroup: ParameterGroup?
        for unit in groupOffloadLayout(type) {
            let group = try ParameterGroup(id: unit.id, slots: unit.slots, statistics: state.statistics, computeDType: state.computeDType)
            state.add(group)
            switch unit.runs {
            case .whileForward(_, isRoot: true): rootGroup = group
            case .whileForward(let owner, isRoot: false):
                try owner.registerHook(GroupRootHook(state: state, group: group), name: OffloadHookName.group)
            case .around(let first, let last):
                try first.registerHook(GroupHook(state: state, group: group, onloadLeader: true, offloadLeader: first === last),
                                       name: OffloadHookName.group)
                if first !== last {
                    try last.registerHook(GroupHook(state: state, group: group, onloadLeader: false, offloadLeader: true),
                                          name: OffloadHookName.group)
                }
            }
        }
        try registerHook(GroupRootHook(state: state, group: rootGroup), name: OffloadHookName.groupRoot)
    }
}

/// One group of group offloading as `groupOffloadLayout` lays it out: its id (Diffusers'),
/// its parameters, and when its weights are on the execution device.
public struct GroupOffloadUnit {
    public enum Residence {
        /// For the whole forward of `owner` (a level's unmatched parameters, or the root's own).
        case whileForward(owner: Module, isRoot: Bool)
        /// From the start of `first`'s forward to the end of `last`'s.
        case around(first: Module, last: Module)
    }
    public let id: String
    public let slots: [(path: String, parameter: Parameter)]
    public let runs: Residence
}

extension Module {
    /// The groups `applyGroupOffloading` would make of this model, without hooking anything:
    /// what the hooks are installed from, and what a memory plan sizes.
    public func groupOffloadLayout(_ type: GroupOffloadType) -> [GroupOffloadUnit] {
        switch type {
        case .blockLevel(let n): return blockLayout(prefix: "", blocksPerGroup: max(1, n), isRoot: true)
        case .leafLevel:
            return namedModules().filter { !$0.module.parameters.isEmpty }.map { path, module in
                let prefix = path.isEmpty ? "" : path + "."
                return GroupOffloadUnit(id: path.isEmpty ? className : path, slots: module.parameters.map { (prefix + $0.name, $0.parameter) },
                                        runs: module === self ? .whileForward(owner: self, isRoot: true) : .around(first: module, last: module))
            }
        }
    }

    private func blockLayout(prefix: String, blocksPerGroup n: Int, isRoot: Bool) -> [GroupOffloadUnit] {
        var units: [GroupOffloadUnit] = []
        var unmatched: [(path: String, parameter: Parameter)] = parameters.map { (prefix + $0.name, $0.parameter) }
        for (name, child) in children {
            let path = prefix + name
            if groupOffloadBlockModules.contains(name) {
                units += child.blockLayout(prefix: path + ".", blocksPerGroup: n, isRoot: false)
            } else if let blocks = child as? AnyModuleList {
                let items = blocks.modules
                for start in stride(from: 0, to: items.count, by: n) {
                    let chunk = Array(items[start..<min(start + n, items.count)])
                    let slots = chunk.enumerated().flatMap { offset, module in module.namedParameters(prefix: "\(path).\(start + offset).") }
                    guard !slots.isEmpty, let first = chunk.first, let last = chunk.last else { continue }
                    units.append(GroupOffloadUnit(id: "\(path)_\(start)_\(start + chunk.count - 1)", slots: slots, runs: .around(first: first, last: last)))
                }
            } else {
                unmatched += child.namedParameters(prefix: path + ".")
            }
        }
        if !unmatched.isEmpty {
            units.append(GroupOffloadUnit(id: "\(prefix)\(className)_unmatched_group", slots: unmatched,
                                          runs: .whileForward(owner: self, isRoot: isRoot)))
        }
        return units
    }
}
