import Dispatch
import Foundation
import NN
import Tensor

/// Parameters that move together between their home (the offload tier: host memory or a
/// memory-mapped file) and an execution device. Onloading copies each home tensor to the
/// device; offloading drops the device copies (weights do not change during inference, so
/// nothing is copied back — Diffusers' streamed path does the same).
public final class ParameterGroup: @unchecked Sendable {
    public let id: String
    let slots: [(path: String, parameter: Parameter)]
    /// The offload-tier tensors, one per slot.
    private(set) var homes: [Tensor]
    public private(set) var onloadedDevice: Device?
    /// Floating-point weights are cast to this dtype on their way to the execution device
    /// (the homes keep theirs, e.g. a memory-mapped f32 checkpoint); nil: no cast.
    let computeDType: DType?
    /// Bytes of the group's weights as they arrive on the execution device.
    public let byteCount: Int
    let statistics: TransferStatistics

    /// A copy running in the background (prefetch) and the tensors it will publish.
    private var pending: (group: DispatchGroup, device: Device, result: PendingCopy, submission: CopyQueue.Submission)?

    init(id: String, slots: [(path: String, parameter: Parameter)], statistics: TransferStatistics,
         computeDType: DType? = nil) throws {
        self.id = id
        self.slots = slots
        self.statistics = statistics
        self.computeDType = computeDType
        homes = try slots.map { try $0.parameter.tensor($0.path) }
        byteCount = homes.reduce(0) { $0 + Self.arrivingByteCount($1, computeDType) }
        casts = homes.contains { Self.castTarget($0, computeDType) != nil }
    }

    /// The dtype `home` is cast to on onload, or nil when it arrives as it is. float8 homes are
    /// layerwise casting's storage: they travel as they are and its hook upcasts them per layer.
    private static func castTarget(_ home: Tensor, _ dtype: DType?) -> DType? {
        guard let dtype, home.dtype.isComputeType, home.dtype != dtype else { return nil }
        return dtype
    }

    /// Bytes `home` takes on the execution device: cast to `computeDType` or as it is.
    static func arrivingByteCount(_ home: Tensor, _ computeDType: DType?) -> Int {
        castTarget(home, computeDType).map { home.count * $0.itemSize } ?? home.byteCount
    }

    /// Whether any home needs a cast on its way to the device (`rehome` keeps dtypes).
    private let casts: Bool

    /// The homes as the device gets them: cast on the host first (so that the copy moves the
    /// smaller dtype), then copied. A cast from a mapped file lets the file's pages go after.
    private static func deviceTensors(_ homes: [Tensor], computeDType: DType?, on device: Device,
                                      submittedAt: UInt64 = DispatchTime.now().uptimeNanoseconds, ahead: CopyQueue.Submission? = nil) throws -> [Tensor] {
        try homes.map { home in
            guard let dtype = castTarget(home, computeDType) else { return try home.to(device, submittedAt: submittedAt, ahead: ahead) }
            let cast = try home.to(dtype).to(device, submittedAt: submittedAt, ahead: ahead)
            if home.storage.isMapped { home.storage.releaseResidentPages() }
            return cast
        }
    }

    /// Whether onloading to the CPU reads the homes where they are: all mapped, none cast.
    var readsHomesInPlace: Bool { !casts && homes.allSatisfy { $0.storage.isMapped } }

    /// Whether the homes' pages were asked for ahead of this group's next onload.
    private var pagesAdvised = false

    /// The disk tier's prefetch: the mapped homes' storages whose pages the kernel should start
    /// reading into the page cache (`Storage.adviseWillNeed`), so that the forward's page faults
    /// find them there instead of waiting for the disk. Once per onload (on the compute thread,
    /// which owns this state); empty when already asked, resident, or nothing is mapped.
    func claimPageAdvice() -> [Storage] {
        guard !pagesAdvised, onloadedDevice == nil else { return [] }
        pagesAdvised = true
        statistics.addPrefetch()
        return homes.map(\.storage).filter(\.isMapped)
    }

    /// Derived copies of the homes (packed weights) go to `file`, or to memory when nil.
    func spillDerived(to file: SpillFile?) {
        for home in homes { home.storage.spillFile = file }
    }

    /// Replaces the home tensors (the disk tier maps them from a file instead of RAM).
    func rehome(_ tensors: [Tensor]) {
        homes = tensors
        if onloadedDevice == nil { for (slot, home) in zip(slots, tensors) { slot.parameter.value = home } }
    }

    /// Makes the weights live on `device`: waits for a prefetch of them, or copies now.
    func onload(to device: Device) throws {
        if let pending {
            let start = DispatchTime.now().uptimeNanoseconds
            pending.submission.awaited()
            pending.group.wait()
            statistics.addWait(seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            self.pending = nil
            if pending.device == device, let tensors = try pending.result.take() {
                publish(tensors, on: device)
                return
            }
        }
        if onloadedDevice == device { return }
        // The disk tier: weights mapped from a file are read in place on the host — the pages
        // come in as the forward touches them and leave at `offload`.
        if device.isCPU && readsHomesInPlace {
            publish(homes, on: device)
            return
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let tensors = try Self.deviceTensors(homes, computeDType: computeDType, on: device)
        statistics.addWait(seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        publish(tensors, on: device)
    }

    /// Starts copying the weights to `device` on `queue`; `onload` publishes them.
    func prefetch(to device: Device, on queue: DispatchQueue) {
        guard onloadedDevice != device, pending == nil else { return }
        statistics.addPrefetch()
        let group = DispatchGroup()
        let result = PendingCopy()
        let homes = self.homes, dtype = computeDType
        let submitted = DispatchTime.now().uptimeNanoseconds, submission = CopyQueue.Submission()
        group.enter()
        queue.async {
            result.set(Result { try Self.deviceTensors(homes, computeDType: dtype, on: device, submittedAt: submitted, ahead: submission) })
            group.leave()
        }
        pending = (group, device, result, submission)
    }

    /// Back to the home tensors; device copies are freed when nothing else holds them.
    func offload() {
        if let pending {
            pending.group.wait()
            pending.result.discard()   // freed now, not when the copy's closure lets go of it
            self.pending = nil
        }
        guard onloadedDevice != nil else { return }
        for (slot, home) in zip(slots, homes) { slot.parameter.value = home }
        // Mapped homes drop their pages and packed copies, so the resident set is the groups in use.
        for home in homes where home.storage.isMapped { home.storage.releaseResidentPages() }
        onloadedDevice = nil
        pagesAdvised = false
    }

    private func publish(_ tensors: [Tensor], on device: Device) {
        for (slot, tensor) in zip(slots, tensors) { slot.parameter.value = tensor }
        onloadedDevice = device
        if !device.isCPU || casts || homes.first?.storage.isMapped == true { statistics.addTransfer(bytes: byteCount) }
    }
}

/// The outcome of a background copy, handed from the copy queue to the compute thread.
final class PendingCopy: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<[Tensor], Error>?
    func set(_ r: Result<[Tensor], Error>) { lock.lock(); result = r; lock.unlock() }
    func discard() { lock.lock(); result = nil; lock.unlock() }
    /// The tensors, nil if the copy has not finished, or the copy's error.
    func take() throws -> [Tensor]? {
        lock.lock(); defer { lock.unlock() }
        return try result?.get()
    }
}

/// What a strategy moved: bytes, transfers and the time the compute thread waited for them.
public final class TransferStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes = 0, count = 0, wait = 0.0, prefetches = 0

    public init() {}

    public var bytesMoved: Int { lock.lock(); defer { lock.unlock() }; return bytes }
    public var transfers: Int { lock.lock(); defer { lock.unlock() }; return count }
    /// Seconds the compute thread spent copying or waiting for copies.
    public var waitSeconds: Double { lock.lock(); defer { lock.unlock() }; return wait }
    /// Copies started on the transfer queue ahead of need.
    public var prefetchCount: Int { lock.lock(); defer { lock.unlock() }; return prefetches }

    func addTransfer(bytes b: Int) { lock.lock(); bytes += b; count += 1; lock.unlock() }
    func addWait(seconds: Double) { lock.lock(); wait += seconds; lock.unlock() }
    func addPrefetch() { lock.lock(); prefetches += 1; lock.unlock() }
    public func reset() { lock.lock(); bytes = 0; count = 0; wait = 0; prefetches = 0; lock.unlock() }
}
