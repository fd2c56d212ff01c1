import Foundation

/// Where a tensor lives.
///
/// `cpu` is host memory. `accel(n)` is a host-memory-backed stand-in for an accelerator:
/// its own allocator, capacity and optional copy bandwidth, so that placement and offloading
/// are exercised and measured on machines without a GPU. Compute uses the CPU kernels.
public struct Device: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case cpu
        case accel(Int)
    }

    public let kind: Kind
    /// The allocator that accounts every byte placed on this device.
    public let allocator: DeviceAllocator

    /// The host. Host RAM is a process-wide resource, so its accounting is too.
    public static let cpu = Device(kind: .cpu, allocator: DeviceAllocator(name: "cpu", capacity: nil, cachesBlocks: true))

    /// A fresh accelerator stand-in with its own allocator. Prefer `DeviceSet` to get
    /// one `accel:N` per index in a program.
    public static func accel(_ index: Int, capacity: Int? = nil, copyBandwidth: Double? = nil) -> Device {
        Device(kind: .accel(index),
               allocator: DeviceAllocator(name: "accel:\(index)", capacity: capacity, copyBytesPerSecond: copyBandwidth,
                                          cachesBlocks: true))
    }

    public var isCPU: Bool { kind == .cpu }
    public var description: String { allocator.name }

    public static func == (a: Device, b: Device) -> Bool { a.kind == b.kind && a.allocator === b.allocator }
    public func hash(into hasher: inout Hasher) { hasher.combine(kind) }

    /// The backend that computes on this device.
    public var backend: any Backend { CPUBackend.shared }
}

/// The devices a program uses, created once: `devices.device(named: "accel:0")` always
/// answers the same device (and the same allocator) for the same name.
public final class DeviceSet: @unchecked Sendable {
    private let lock = NSLock()
    private var accels: [Int: Device] = [:]
    /// Copy bandwidth of every accelerator of the set (bytes per second), nil for unlimited.
    public let copyBandwidth: Double?
    /// The accelerators given a capacity when the set was made (empty: any index is accepted).
    public let declaredAccelIndices: Set<Int>

    /// - Parameter accelCapacities: capacity in bytes per accelerator index.
    /// - Parameter copyBandwidth: applies to every accelerator, including those first named later.
    public init(accelCapacities: [Int: Int] = [:], copyBandwidth: Double? = nil) {
        self.copyBandwidth = copyBandwidth
        declaredAccelIndices = Set(accelCapacities.keys)
        for (index, capacity) in accelCapacities {
            accels[index] = .accel(index, capacity: capacity, copyBandwidth: copyBandwidth)
        }
    }

    public func accel(_ index: Int) -> Device {
        lock.lock(); defer { lock.unlock() }
        if let device = accels[index] { return device }
        let device = Device.accel(index, copyBandwidth: copyBandwidth)
        accels[index] = device
        return device
    }

    /// Parses `cpu` or `accel:N`.
    public func device(named name: String) throws -> Device {
        let trimmed = name.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "cpu" { return .cpu }
        if trimmed.hasPrefix("accel:"), let index = Int(trimmed.dropFirst(6)), index >= 0 {
            return accel(index)
        }
        throw TensorError.invalidArgument("unknown device '\(name)'; expected cpu or accel:N")
    }

    public var allDevices: [Device] {
        lock.lock(); defer { lock.unlock() }
        return [.cpu] + accels.keys.sorted().compactMap { accels[$0] }
    }
}

/// Thrown when an allocation would exceed a device's capacity, as a GPU would.
public struct OutOfMemoryError: Error, CustomStringConvertible, Sendable {
    public let device: String
    public let requestedBytes: Int
    public let bytesInUse: Int
    /// The device's capacity; nil for the host, whose limit is what the system will give.
    public let capacityBytes: Int?

    public var description: String {
        let start = "out of memory on \(device): tried to allocate \(formatBytes(requestedBytes)) with \(formatBytes(bytesInUse)) in use"
        if let capacityBytes { return start + " of its \(formatBytes(capacityBytes)) capacity" }
        let available = ProcessMemory.availableBytes().map { ", \(formatBytes($0)) of host memory available" } ?? ""
        return start + "; the system refused the allocation\(available)"
    }
}

/// Accounts every allocation on one device: bytes in use, the peak since the last reset,
/// and an optional capacity that is enforced.
public final class DeviceAllocator: @unchecked Sendable {
    public let name: String
    /// The most bytes this device holds at once (enforced); nil: no limit of its own.
    public var capacity: Int? { lock.lock(); defer { lock.unlock() }; return limit }
    private var limit: Int?
    /// When set, copies onto or off this device take at least `bytes / copyBytesPerSecond`.
    public let copyBytesPerSecond: Double?

    private let lock = NSLock()
    private var inUse = 0
    private var peak = 0
    private var allocationCount = 0
    /// The most bytes ever in use at once (never reset).
    private var highWater = 0
    /// The most bytes in use at once since the cache was last emptied: what bytes in use and
    /// cached together may reach. Per stretch, not per process, so that a phase's footprint is
    /// its own running peak whatever ran before it (an earlier phase, or a plan's rehearsal),
    /// and a rehearsal's figures predict it.
    private var cacheLimit = 0
    /// Freed large blocks kept for reuse, as PyTorch's caching allocator keeps a GPU's: a fresh
    /// block is faulted in and zeroed by the kernel page by page (on the host a tenth of a UNet
    /// step's time at 512² went to clearing pages; a reused block is not cleared). Cached and
    /// live bytes together stay within the most ever in use, so caching never raises the
    /// footprint a run already needed since the cache was emptied (a cache as large as the high-water mark on top of live
    /// bytes held per-call f32 weight copies of every shape: 9.2 GiB against 6 GiB for SDXL's
    /// bf16 step). The host's pipelines empty it between phases, whose sizes differ. Nil: freed
    /// at once.
    private let cache: BlockCache?

    /// When the copy engine finishes the copies already given to it (uptime nanoseconds).
    private var copyEngineFreeAt: UInt64 = 0

    /// Books a copy of `bytes` on this device's one copy engine and returns when it ends:
    /// copies from several threads (the compute thread and a prefetch queue) queue behind each
    /// other as on a real bus instead of each getting the full bandwidth. Nil without a limit.
    func bookCopy(bytes: Int, startingAt start: UInt64) -> UInt64? {
        guard let bandwidth = copyBytesPerSecond, bandwidth > 0 else { return nil }
        lock.lock(); defer { lock.unlock() }
        let begin = max(start, copyEngineFreeAt)
        copyEngineFreeAt = begin + UInt64(Double(bytes) / bandwidth * 1e9)
        return copyEngineFreeAt
    }

    public init(name: String, capacity: Int?, copyBytesPerSecond: Double? = nil, cachesBlocks: Bool = false) {
        self.name = name
        limit = capacity
        self.copyBytesPerSecond = copyBytesPerSecond
        cache = cachesBlocks ? BlockCache() : nil
        Storage.largeBlocksAreMapped  // before any block is allocated through an allocator
    }

    deinit { for block in cache?.drain() ?? [] { free(block) } }

    /// Bytes allocated and live (what `peakBytes` and the capacity check count).
    public var bytesInUse: Int { lock.lock(); defer { lock.unlock() }; return inUse }
    /// Bytes of freed blocks kept for reuse (PyTorch's reserved minus allocated); they count
    /// against the capacity and are given back when an allocation would not fit otherwise.
    public var bytesCached: Int { lock.lock(); defer { lock.unlock() }; return cache?.bytes ?? 0 }
    public var peakBytes: Int { lock.lock(); defer { lock.unlock() }; return peak }
    /// The most bytes ever in use at once (not reset by `resetPeak`).
    public var highWaterBytes: Int { lock.lock(); defer { lock.unlock() }; return highWater }
    /// Live allocations (not bytes).
    public var liveAllocations: Int { lock.lock(); defer { lock.unlock() }; return allocationCount }

    /// Starts a new peak window at the current usage.
    public func resetPeak() { lock.lock(); peak = inUse; lock.unlock() }

    /// Sets the capacity, e.g. the part of a host memory budget left to the computation once a
    /// plan has placed its weights (`--memory-budget`); nil lifts it. Allocations past it
    /// throw `OutOfMemoryError`, as on an accelerator, instead of growing until the system
    /// kills the process.
    public func limitCapacity(to bytes: Int?) {
        lock.lock(); limit = bytes; lock.unlock()
    }

    /// Records `bytes` as allocated, or throws if the capacity would be exceeded.
    public func reserve(_ bytes: Int) throws {
        lock.lock(); defer { lock.unlock() }
        if let capacity = limit, inUse + (cache?.bytes ?? 0) + bytes > capacity {
            for block in cache?.drain() ?? [] { free(block) }   // cached blocks give way first
            if inUse + bytes > capacity {
                throw OutOfMemoryError(device: name, requestedBytes: bytes, bytesInUse: inUse, capacityBytes: capacity)
            }
        }
        inUse += bytes
        allocationCount += 1
        if inUse > peak { peak = inUse }
        if inUse > highWater { highWater = inUse }
        if inUse > cacheLimit { cacheLimit = inUse }
    }

    public func release(_ bytes: Int) {
        lock.lock(); inUse -= bytes; allocationCount -= 1; lock.unlock()
    }

    /// A cached block of exactly `bytes` for a new allocation (already reserved), if any. When
    /// there is none the allocation will take fresh pages, and the oldest cached blocks are
    /// freed first as far as needed to keep live and cached bytes within the running peak:
    /// blocks cached at a release would otherwise stay beside the allocations that follow
    /// (an SD VAE decode at 512² held 960 MiB for a 769 MiB peak).
    func reuseBlock(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard let cache else { return nil }
        lock.lock()
        if let block = cache.take(bytes) { lock.unlock(); return block }
        let evicted = cache.evict(downTo: cacheLimit - inUse)
        lock.unlock()
        for block in evicted { free(block) }
        return nil
    }

    /// Releases an allocation of `bytes` at `block`: kept for reuse when this allocator caches
    /// blocks (while live and cached bytes stay within the most it ever had in use), freed
    /// otherwise.
    func release(_ bytes: Int, block: UnsafeMutableRawPointer) {
        lock.lock()
        inUse -= bytes
        allocationCount -= 1
        let toFree = cache?.keep(block, size: bytes, limit: cacheLimit - inUse) ?? [block]
        lock.unlock()
        for pointer in toFree { free(pointer) }
    }

    /// Frees every cached block (`torch.cuda.empty_cache()`).
    public func emptyCache() {
        lock.lock(); let blocks = cache?.drain() ?? []; cacheLimit = inUse; lock.unlock()
        for block in blocks { free(block) }
        MemoryRehearsal.current?.cacheEmptied(self)
    }

    /// Runs `body` and returns its result with the peak bytes reached on this device meanwhile.
    public func measuringPeak<T>(_ body: () throws -> T) rethrows -> (result: T, peakBytes: Int) {
        resetPeak()
        let result = try body()
        return (result, peakBytes)
    }
}

/// The process's resident-set figures, read from `/proc/self/status`.
public enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes, or nil where the kernel does not tell.
    public static var peakResidentBytes: Int? { field("VmHWM:") }
    /// Current resident set size (VmRSS) in bytes.
    public static var residentBytes: Int? { field("VmRSS:") }

    /// Resets the kernel's high-water mark to the current RSS (Linux ≥ 4.0).
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)); return true } catch { return false }
    }

    /// `MemAvailable` of `/proc/meminfo` in bytes (what psutil reports as available on
    /// Linux), or nil where the kernel does not tell.
    public static func availableBytes() -> Int? { field("MemAvailable:", in: "/proc/meminfo") }

    private static func field(_ name: String, in file: String = "/proc/self/status") -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:\t  123456 kB", and with 8 digits or more no space after the tab.
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2, let kib = Int(parts[1]) { return kib * 1024 }
        }
        return nil
    }
}

/// "1.50 GiB"-style figure for messages.
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while abs(value) >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.2f", value) + " " + units[unit]
}
