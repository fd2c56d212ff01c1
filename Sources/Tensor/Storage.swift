import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Storage {
    /// glibc serves a large allocation with its own mapping, but after one is freed it raises
    /// that threshold (up to 32 MiB) and serves later ones from its heaps, which keep freed
    /// pages: a bf16 SDXL call's per-call f32 weight copies and activations then stayed in the
    /// RSS after their phase (5 GiB after the UNet's weights went). A fixed threshold of the
    /// block cache's minimum keeps every large block a mapping the OS gets back on free;
    /// reuse is the block cache's job.
    static let largeBlocksAreMapped: Void = {
        #if canImport(Glibc)
        // mallopt is in <malloc.h>, which the Glibc module does not export.
        typealias MallocOption = @convention(c) (Int32, Int32) -> Int32
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            _ = unsafeBitCast(symbol, to: MallocOption.self)(mmapThreshold, Int32(BlockCache.minimumBlock))
        }
        #endif
    }()
}

/// A block of bytes on one device: either owned (allocated, accounted to the device's
/// allocator, freed on deinit) or borrowed from a read-only memory mapping (the disk tier:
/// no private copy, pages come and go with the page cache).
public final class Storage: @unchecked Sendable {
    public let device: Device
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer
    /// Keeps a mapping alive while any tensor views it; nil for owned storage.
    public var mapping: AnyObject? { if case .mapped(let owner) = backing { return owner }; return nil }
    public var isMapped: Bool { mapping != nil }
    public var isWritable: Bool { mapping == nil }

    /// Who owns the bytes. `token` of owned storage reports the release to a capture being
    /// recorded; an arena lease marks its slice free when the storage goes.
    private enum Backing {
        case owned(token: AnyObject?)
        case mapped(AnyObject)
        case arena(AnyObject)
        /// Address space a rehearsal reserved where the allocator would not give the bytes
        /// (never touched: no page is committed); accounted like owned bytes, unmapped on release.
        case reserved
    }
    private let backing: Backing
    /// The allocation's index in a capture being recorded or replayed (see `GraphCapture`).
    let captureIndex: Int?

    /// Derived data kept beside the bytes (for instance a convolution weight reordered once
    /// into oneDNN's blocked layout), dropped whenever the bytes change.
    private let cacheLock = NSLock()
    private var derived: [String: AnyObject] = [:]

    static let alignment = 64
    /// The size of a transparent huge page (a PMD's span on x86-64 and arm64 with 4 KiB pages).
    static let hugePageBytes = 2 << 20

    /// A fresh block of `byteCount` bytes from the system (nil if it has none). Blocks of a
    /// huge page or more start on one and ask for huge pages where the kernel grants them on
    /// request (`MADV_HUGEPAGE`): a step's fresh outputs are then faulted in and zeroed 2 MiB
    /// at a time instead of 4 KiB (on a 2-core virtual machine a UNet step at 256² spent an
    /// eighth of its CPU time in the kernel, faulting 4 KiB pages, and ran a quarter faster
    /// with huge ones). Only the whole huge pages inside the block are advised, so the
    /// resident set grows by what is written.
    static func freshBlock(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        var raw: UnsafeMutableRawPointer?
        let huge = byteCount >= hugePageBytes
        guard posix_memalign(&raw, huge ? hugePageBytes : alignment, max(byteCount, 1)) == 0, let raw else { return nil }
        #if os(Linux)
        if huge { _ = madvise(raw, byteCount & ~(hugePageBytes - 1), 14) }  // MADV_HUGEPAGE
        #endif
        return raw
    }

    /// Allocates `byteCount` uninitialised bytes on `device`, accounting them.
    public init(byteCount: Int, device: Device) throws {
        var token: AnyObject?
        var index: Int?
        if let capture = CaptureSession.current {
            switch try capture.allocate(byteCount, on: device) {
            case .untracked: break
            case let .recorded(recordToken, recordIndex):
                token = recordToken; index = recordIndex
            case let .slice(pointer, lease, sliceIndex):
                self.pointer = pointer
                self.byteCount = byteCount
                self.device = device
                self.backing = .arena(lease)
                self.captureIndex = sliceIndex
                return
            }
        }
        try device.allocator.reserve(byteCount)
        var raw = device.allocator.reuseBlock(byteCount)
        let freshPages = raw == nil && byteCount >= BlockCache.minimumBlock
        if raw == nil { raw = Storage.freshBlock(byteCount) }
        if raw == nil, MemoryRehearsal.current != nil,
           let reserved = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
           reserved != MAP_FAILED {
            // A rehearsal asks for what the run would; the system need not be able to give it
            // (the run's plan is what says whether it fits).
            self.pointer = reserved
            self.byteCount = byteCount
            self.device = device
            self.backing = .reserved
            self.captureIndex = index
            MemoryRehearsal.current?.allocated(self, on: device.allocator, freshPages: freshPages)
            return
        }
        guard let raw else {
            device.allocator.release(byteCount)
            throw OutOfMemoryError(device: device.description, requestedBytes: byteCount,
                                   bytesInUse: device.allocator.bytesInUse, capacityBytes: device.allocator.capacity)
        }
        self.pointer = raw
        self.byteCount = byteCount
        self.device = device
        self.backing = .owned(token: token)
        self.captureIndex = index
        MemoryRehearsal.current?.allocated(self, on: device.allocator, freshPages: freshPages)
    }

    /// Wraps bytes inside a read-only mapping kept alive by `owner`. Not accounted: mapped
    /// pages belong to the page cache (they show in the process RSS while touched).
    public init(mappedPointer: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        self.pointer = UnsafeMutableRawPointer(mutating: mappedPointer)
        self.byteCount = byteCount
        self.device = .cpu
        self.backing = .mapped(owner)
        self.captureIndex = nil
    }

    deinit {
        switch backing {
        case .owned: device.allocator.release(byteCount, block: pointer)
        case .reserved:
            device.allocator.release(byteCount)
            munmap(pointer, byteCount)
        case .mapped:
            // Its pages go with it (the mapping is dropped with the file's last tensor).
            MemoryRehearsal.current?.mappedPagesReleased(self)
        case .arena: break
        }
    }

    /// The storages of the derived data kept with these bytes (packed copies).
    var derivedStorages: [Storage] {
        cacheLock.lock(); defer { cacheLock.unlock() }
        return derived.values.compactMap { ($0 as? StorageBackedValue)?.backingStorage }
    }

    /// Returns the derived object stored under `key`, creating it with `make` once.
    public func derived<T: AnyObject>(_ key: String, make: () throws -> T) rethrows -> T {
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let existing = derived[key] as? T { return existing }
        // Made once and kept with the bytes: not an activation of a capture.
        let value = try CaptureSession.withoutRecording(make)
        MemoryRehearsal.current?.derivedDataMade(on: self, value)
        derived[key] = value
        return value
    }

    /// Where derived copies of these bytes are written: the disk tier's packed-weight file, so
    /// that they can be released and faulted back like the bytes themselves. nil: derived
    /// copies are allocated like any storage. Setting it drops the derived data made so far.
    public var spillFile: SpillFile? {
        get { spillLock.lock(); defer { spillLock.unlock() }; return spill }
        set {
            spillLock.lock(); spill = newValue; spillLock.unlock()
            invalidateDerived()
        }
    }
    private let spillLock = NSLock()
    private var spill: SpillFile?

    /// Room for a derived copy of `byteCount` bytes: a slot of the spill file when one is set,
    /// else an ordinary allocation on this storage's device.
    public func derivedStorage(byteCount: Int) throws -> Storage {
        if let file = spillFile { return try file.allocate(byteCount: byteCount) }
        return try Storage(byteCount: byteCount, device: device)
    }

    /// For mapped storage: tells the kernel these pages may go (they are read again from the
    /// file on the next touch), so the process's resident set drops. Derived data goes too,
    /// except copies in a spill file, whose pages are released the same way; with
    /// `keepingDerived` all derived data stays (the bytes are read only through a derived copy,
    /// such as a packed convolution weight, so they need not stay resident beside it). Owned
    /// storage is left alone. This is how the disk tier releases a group after use.
    /// Asks the kernel to read a mapped storage's pages into the page cache ahead of use
    /// (`madvise(MADV_WILLNEED)`: the reads are queued, not waited for, and the pages count in
    /// no process's resident set until touched). Nothing for owned storage.
    public func adviseWillNeed() {
        if MemoryRehearsal.current != nil { return }   // a rehearsal reads no weight
        adviseMappedPages(MADV_WILLNEED)
    }

    /// Maps a mapped storage's pages into the process now, in one call
    /// (`madvise(MADV_POPULATE_READ)`, Linux 5.14+; a no-op elsewhere), rather than a fault at
    /// a time as the first reads touch them: reading pages the page cache holds costs a
    /// fraction of what demand faults do. Nothing for owned storage.
    public func populateResidentPages() {
        if let rehearsal = MemoryRehearsal.current { return rehearsal.mappedPagesRead(self) }
        adviseMappedPages(22)  // MADV_POPULATE_READ
    }

    public func releaseResidentPages(keepingDerived: Bool = false) {
        if !keepingDerived {
            cacheLock.lock()
            derived = derived.filter { ($0.value as? StorageBackedValue)?.backingStorage.isMapped == true }
            let spilled = derived.values.compactMap { ($0 as? StorageBackedValue)?.backingStorage }
            cacheLock.unlock()
            for storage in spilled { storage.releaseResidentPages() }
        }
        if let rehearsal = MemoryRehearsal.current { return rehearsal.mappedPagesReleased(self) }
        adviseMappedPages(MADV_DONTNEED)
    }

    /// `populateResidentPages` and `releaseResidentPages` as a real run does them, also while a
    /// rehearsal runs (which measures what they cost).
    func populateMappedPagesForReal() { adviseMappedPages(22) }
    func releaseMappedPagesForReal() { adviseMappedPages(MADV_DONTNEED) }

    /// `madvise(advice)` over the whole pages a mapped storage spans; nothing for owned storage.
    private func adviseMappedPages(_ advice: Int32) {
        guard mapping != nil, byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: pointer) & ~(page - 1)
        let end = (Int(bitPattern: pointer) + byteCount + page - 1) & ~(page - 1)
        if let base = UnsafeMutableRawPointer(bitPattern: start) {
            _ = madvise(base, end - start, advice)
        }
    }

    /// Call after writing into the bytes so that derived data is rebuilt.
    public func invalidateDerived() {
        cacheLock.lock(); derived.removeAll(); cacheLock.unlock()
    }
}

/// Derived data that lives in a storage of its own (a packed weight): when that storage is a
/// spill-file slot, `releaseResidentPages` keeps the value and releases its pages instead.
public protocol StorageBackedValue: AnyObject {
    var backingStorage: Storage { get }
}
