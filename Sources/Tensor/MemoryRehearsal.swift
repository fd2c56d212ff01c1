import CDNNL
import Foundation
import Synchronization

/// A dry run of a computation — a memory plan's rehearsal. While one runs, every tensor the
/// real run would allocate is allocated and accounted by its device's allocator, in the same
/// order and sizes (outputs, kernel scratch, packed weights, offloading's copies), but no kernel
/// computes, no bytes are copied and no mapped weight is read: oneDNN primitives and the
/// parallel loops return at once, and pages are not brought in. The values are garbage; the
/// shapes, the allocations and the order of operations are the real run's, because it is the
/// real code path.
///
/// What it records is the memory model's input: the most bytes the process held at once above
/// where it started — every watched allocator's bytes (live, and freed blocks its cache keeps
/// until emptied, which stay in the resident set) plus the mapped weight pages read and not
/// yet let go — each device's peak of live bytes, and per section (`OpProfile.beginSection`:
/// text encoder, first step, decode) the operations by signature. With an `OperationTimes`
/// table, the first operation of each signature of the timed sections not yet in it is run for
/// real — a warm-up, then three timed runs with its weights evicted from the caches, the median
/// kept (mapped weights of that one operation are read): the step-time model's calibration.
///
/// A rehearsal is a mode of the whole process (a prefetch queue's copies must not read weights
/// either), so one runs at a time; the real run starts after it returns.
public final class MemoryRehearsal: @unchecked Sendable {
    /// What a rehearsal measured.
    public struct Figures: Sendable, Equatable {
        /// The most bytes the process held at once above its start (allocators and mapped pages).
        public var processPeakBytes = 0
        /// Per device (`cpu`, `accel:0`): the most live bytes at once above its start.
        public var devicePeakBytes: [String: Int] = [:]
        /// The most mapped weight bytes resident at once.
        public var mappedPeakBytes = 0
        /// The section the process peak was reached in (`vae_decode`, `unet_step`, …).
        public var peakSection = "other"
        /// Per section: how many times it was entered (denoising steps after the first: `unet_step`).
        public var sectionEntries: [String: Int] = [:]
        /// Per section: how many times each operation signature ran.
        public var operations: [String: [String: Int]] = [:]
        /// Per section: mapped bytes whose pages were brought in (read from the file or the page
        /// cache): in a later denoising step, what offloading in place reads again each step.
        public var pageReads: [String: Int] = [:]
        /// Per section: bytes of large allocations that took fresh pages (no freed block of
        /// their size was cached): the kernel faults and zeroes them as they are first written,
        /// and they are unmapped when freed — a step's cost no operation timed alone sees.
        public var freshPageBytes: [String: Int] = [:]
        /// Per section: bytes copied to or from each bandwidth-limited device, by its name.
        public var transfers: [String: [String: Int]] = [:]
        /// The part of `transfers` copied ahead on a background queue (`CopyQueue.Submission`):
        /// it overlaps the computation, where the rest holds it up.
        public var transfersAhead: [String: [String: Int]] = [:]
        /// Per timed section: what its compute thread did, in order (`TimelineEvent`; its
        /// operations once copies are made ahead, a transfer queue's casts among them).
        public var timelines: [String: [TimelineEvent]] = [:]
        /// Per submission of copies ahead (`TimelineEvent.submitAhead`): its bytes by device.
        public var aheadBytes: [Int: [String: Int]] = [:]

        public init() {}
    }

    private let lock = NSLock()
    private let allocators: [DeviceAllocator]
    /// Live bytes of each watched allocator when the rehearsal began.
    private let startBytes: [Int]
    /// Per allocator: the most live bytes since its cache was last emptied (what it holds in the
    /// RSS). Not the allocator's own figure: that counts the timed runs' allocations too.
    private var heldBytes: [Int]
    private var mapped: [ObjectIdentifier: Int] = [:]
    private var mappedBytes = 0
    /// Storages whose derived data (packed weights) the rehearsal made: it is garbage, dropped at the end.
    /// Held weakly: an owned storage (a weight converted for a phase) must go when its phase ends.
    private var derivedOwners: [ObjectIdentifier: WeakStorage] = [:]
    /// Derived copies kept in a spill file (the disk tier's packed weights), by the storage
    /// they were made from: their pages are written, released and read back like a weight's.
    private var spilledCopies: [ObjectIdentifier: [WeakStorage]] = [:]
    /// What the rehearsal allocated (weakly): its values are garbage a timing may overwrite.
    private var rehearsalStorages: [ObjectIdentifier: WeakStorage] = [:]
    private var section = "other"
    private let times: OperationTimes?
    /// Only operations in sections with this prefix are timed (the denoising steps: `unet`).
    private let timedSectionPrefix: String
    private var measured = Figures()
    /// What it measured (read under its lock: a prefetch queue may still be finishing).
    public var figures: Figures { lock.lock(); defer { lock.unlock() }; return measured }

    /// - Parameter allocators: the allocators whose bytes are the process's (the host's and
    ///   the accelerator stand-ins', which live in host memory).
    /// - Parameter times: seconds per operation signature, filled in for signatures it lacks.
    /// - Parameter timedSectionPrefix: only operations of sections so named are timed.
    public init(watching allocators: [DeviceAllocator], times: OperationTimes? = nil, timedSectionPrefix: String = "") {
        self.allocators = allocators
        self.timedSectionPrefix = timedSectionPrefix
        startBytes = allocators.map(\.bytesInUse)
        heldBytes = startBytes
        self.times = times
    }

    /// Runs `body` as a rehearsal; afterwards the derived data it made is dropped and the
    /// watched allocators' caches emptied, so the real run starts as if it had not happened.
    public func run<T>(_ body: () throws -> T) throws -> T {
        try MemoryRehearsal.activate(self)
        defer {
            MemoryRehearsal.deactivate()
            lock.lock(); let owners = derivedOwners.values.compactMap(\.storage); derivedOwners = [:]; spilledCopies = [:]; lock.unlock()
            for storage in owners { storage.invalidateDerived() }
            free(scratch); scratch = nil
            for allocator in allocators { allocator.emptyCache() }
        }
        return try body()
    }

    // MARK: The process-wide mode

    private static let activeLock = NSLock()
    nonisolated(unsafe) private static var active: MemoryRehearsal?

    /// Whether a rehearsal runs, read without the lock: the instrumented hot paths (every
    /// operation, allocation and parallel loop) ask it first and take the lock only while one does.
    private static let engaged = Atomic<Bool>(false)

    private static func activate(_ rehearsal: MemoryRehearsal) throws {
        activeLock.lock(); defer { activeLock.unlock() }
        if active != nil { throw TensorError.invalidArgument("a memory rehearsal is already running") }
        active = rehearsal
        engaged.store(true, ordering: .releasing)
    }

    private static func deactivate() {
        activeLock.lock(); active = nil; engaged.store(false, ordering: .releasing); activeLock.unlock()
    }

    private static var isTiming: Bool {
        activeLock.lock(); defer { activeLock.unlock() }
        return timing
    }

    /// The rehearsal running, if any.
    public static var current: MemoryRehearsal? {
        guard engaged.load(ordering: .acquiring) else { return nil }
        activeLock.lock(); defer { activeLock.unlock() }
        return active
    }

    /// Whether kernels and copies on this thread skip their work: a rehearsal runs and this
    /// thread is not timing an operation for it.
    public static var skipsWork: Bool {
        guard engaged.load(ordering: .acquiring) else { return false }
        activeLock.lock(); defer { activeLock.unlock() }
        return active != nil && !timing && integerWork == 0
    }
    /// Operations on integer tensors under way: they compute even in a rehearsal (token ids
    /// and positions are small, and kernels check their values).
    nonisolated(unsafe) private static var integerWork = 0
    /// An operation is being timed for real (on the OpenMP team too, so not per thread).
    nonisolated(unsafe) private static var timing = false

    // MARK: What the instrumented code tells it

    /// `storage` was allocated on `allocator` while rehearsing; `freshPages`: in a block the
    /// system maps anew (large, and no cached block of its size was free).
    func allocated(_ storage: Storage, on allocator: DeviceAllocator, freshPages: Bool) {
        lock.lock(); rehearsalStorages[ObjectIdentifier(storage)] = WeakStorage(storage: storage); lock.unlock()
        if freshPages, !MemoryRehearsal.isTiming, allocators.contains(where: { $0 === allocator }) {
            lock.lock(); let section = self.section; measured.freshPageBytes[section, default: 0] += storage.byteCount; lock.unlock()
            if let times, section.hasPrefix(timedSectionPrefix), times.seconds(OperationTimes.freshPageSignature) == nil,
               let perByte = MemoryRehearsal.freshPageSecondsPerByte() {
                times.record(OperationTimes.freshPageSignature, seconds: perByte)
            }
        }
        allocatorChanged(allocator)
    }

    /// Seconds a byte of a large block in fresh pages costs, as a kernel writing its output
    /// meets them: allocated as a storage's block is, written a byte a page by the computing
    /// threads (each page faulted in and zeroed), freed (unmapped). The median of five 64 MiB
    /// blocks; nil when the system had none to give (nothing is recorded, it is measured again).
    static func freshPageSecondsPerByte() -> Double? {
        let bytes = 64 << 20, page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var runs: [Double] = []
        for _ in 0..<5 {
            var allocated = false
            guard let seconds = try? timed({
                guard let block = Storage.freshBlock(bytes) else { return }
                allocated = true
                Parallel.forEachChunk(bytes / page, grain: 64) { pages in
                    for index in pages { block.storeBytes(of: 1, toByteOffset: index * page, as: UInt8.self) }
                }
                free(block)
            }), allocated else { continue }
            runs.append(seconds / Double(bytes))
        }
        return median(runs)
    }

    /// The middle of `runs` (the upper middle of an even count); nil when empty.
    static func median(_ runs: [Double]) -> Double? {
        runs.isEmpty ? nil : runs.sorted()[runs.count / 2]
    }

    /// An allocation on `allocator` happened.
    private func allocatorChanged(_ allocator: DeviceAllocator) {
        guard !MemoryRehearsal.isTiming, let index = allocators.firstIndex(where: { $0 === allocator }) else { return }
        let live = allocator.bytesInUse
        lock.lock(); defer { lock.unlock() }
        heldBytes[index] = max(heldBytes[index], live)
        measured.devicePeakBytes[allocator.name] = max(measured.devicePeakBytes[allocator.name] ?? 0, live - startBytes[index])
        updateProcessPeak()
    }

    /// `allocator` gave its cached blocks back: it holds only its live bytes now.
    func cacheEmptied(_ allocator: DeviceAllocator) {
        guard let index = allocators.firstIndex(where: { $0 === allocator }) else { return }
        let live = allocator.bytesInUse
        lock.lock(); heldBytes[index] = live; lock.unlock()
    }

    /// The pages of mapped `storage` are (or go on being) read.
    func mappedPagesRead(_ storage: Storage) {
        guard storage.isMapped else { return }
        lock.lock(); defer { lock.unlock() }
        let key = ObjectIdentifier(storage)
        guard mapped[key] == nil else { return }
        mapped[key] = storage.byteCount
        mappedBytes += storage.byteCount
        measured.pageReads[section, default: 0] += storage.byteCount
        measured.mappedPeakBytes = max(measured.mappedPeakBytes, mappedBytes)
        updateProcessPeak()
        measurePageReads(storage)
    }

    /// Seconds a byte of mapped pages takes to bring in and let go, measured once per table on
    /// the first page read of at least 16 MiB in a timed section: that storage's pages are read
    /// for real (from the page cache, where a real step re-reads them) and released again, as
    /// offloading in place does each step; the median of three (one such reading came out a
    /// hundredth of the others).
    private func measurePageReads(_ storage: Storage) {
        guard let times, section.hasPrefix(timedSectionPrefix), storage.byteCount >= 16 << 20,
              times.seconds(OperationTimes.pageReadSignature) == nil else { return }
        storage.releaseMappedPagesForReal()
        var runs: [Double] = []
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            storage.populateMappedPagesForReal()
            storage.releaseMappedPagesForReal()
            runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        if let seconds = MemoryRehearsal.median(runs) { times.record(OperationTimes.pageReadSignature, seconds: seconds / Double(storage.byteCount)) }
    }

    /// The pages of mapped `storage` were let go.
    func mappedPagesReleased(_ storage: Storage) {
        lock.lock(); defer { lock.unlock() }
        if let bytes = mapped.removeValue(forKey: ObjectIdentifier(storage)) { mappedBytes -= bytes }
    }

    private func hasPackedCopy(_ storage: Storage) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return derivedOwners[ObjectIdentifier(storage)]?.storage === storage
    }

    func derivedDataMade(on storage: Storage, _ value: AnyObject) {
        let key = ObjectIdentifier(storage)
        lock.lock(); defer { lock.unlock() }
        derivedOwners[key] = WeakStorage(storage: storage)
        if let copy = (value as? StorageBackedValue)?.backingStorage, copy.isMapped {
            spilledCopies[key, default: []].append(WeakStorage(storage: copy))
        }
    }

    /// The spill-file copies made from `storage` (empty unless the disk tier packs it).
    private func spilledCopies(of storage: Storage) -> [Storage] {
        lock.lock(); defer { lock.unlock() }
        return spilledCopies[ObjectIdentifier(storage)]?.compactMap(\.storage) ?? []
    }

    func beginSection(_ name: String?) {
        lock.lock(); section = name ?? "other"; if let name { measured.sectionEntries[name, default: 0] += 1 }; lock.unlock()
    }

    /// The section operations are being booked to now.
    var currentSection: String { lock.lock(); defer { lock.unlock() }; return section }

    /// A copy of `bytes` through `device`'s copy engine: booked to the running section, or,
    /// submitted ahead on a transfer queue, to the section that submitted it (in a denoising
    /// loop each step then counts the copies it asks for, however late the queue makes them).
    func transferred(_ bytes: Int, through device: Device, ahead: CopyQueue.Submission?) {
        lock.lock()
        let booked = ahead?.section ?? section
        measured.transfers[booked, default: [:]][device.description, default: 0] += bytes
        if let ahead {
            measured.transfersAhead[booked, default: [:]][device.description, default: 0] += bytes
            measured.aheadBytes[ahead.id, default: [:]][device.description, default: 0] += bytes
        } else {
            record(.copy(bytes: bytes, device: device.description))
        }
        lock.unlock()
    }

    private var submissions = 0
    /// Copies handed to a transfer queue now: their id in the timeline.
    func submittedAhead() -> Int {
        lock.lock(); defer { lock.unlock() }
        submissions += 1
        record(.submitAhead(id: submissions))
        return submissions
    }

    func awaitedAhead(_ id: Int) { lock.lock(); record(.awaitAhead(id: id)); lock.unlock() }

    /// Appends to the running section's timeline where it is timed. Operations only once copies
    /// are made ahead (only those need them replayed; the copies are few). Must be called with
    /// the lock held.
    private func record(_ event: TimelineEvent) {
        if case .operation = event, submissions == 0 { return }
        guard section.hasPrefix(timedSectionPrefix) else { return }
        measured.timelines[section, default: []].append(event)
    }

    /// Must be called with the lock held.
    private func updateProcessPeak() {
        let held = zip(heldBytes, startBytes).reduce(0) { $0 + max(0, $1.0 - $1.1) }
        if held + mappedBytes > measured.processPeakBytes {
            measured.processPeakBytes = held + mappedBytes
            measured.peakSection = section
        }
    }

    /// An operation: its mapped inputs are read, `call` runs (allocating, computing nothing),
    /// its signature is counted, and timed for real once when a table lacks it.
    func operation(_ name: String, inputs: [Tensor?], _ call: () throws -> Tensor) throws -> Tensor {
        defer {
            // A mapped operand's pages are read, unless the kernel reads it through a packed copy
            // kept with it (a convolution's weight: its own pages are let go once packed).
            // (Not asked of the storage: its lock is held while a packed copy is made.)
            // A packed copy in a spill file is read (written, the first time) in its place.
            for case let input? in inputs where input.storage.isMapped {
                if !hasPackedCopy(input.storage) { mappedPagesRead(input.storage) }
                for copy in spilledCopies(of: input.storage) { mappedPagesRead(copy) }
            }
        }
        let out: Tensor
        if inputs.allSatisfy({ $0.map { !$0.dtype.isFloatingPoint } ?? true }) {
            MemoryRehearsal.activeLock.lock(); MemoryRehearsal.integerWork += 1; MemoryRehearsal.activeLock.unlock()
            defer { MemoryRehearsal.activeLock.lock(); MemoryRehearsal.integerWork -= 1; MemoryRehearsal.activeLock.unlock() }
            out = try call()
        } else {
            out = try call()
        }
        let signature = MemoryRehearsal.signature(name, inputs: inputs, output: out)
        lock.lock()
        let section = self.section
        measured.operations[section, default: [:]][signature, default: 0] += 1
        record(.operation(signature))
        lock.unlock()
        if let times, section.hasPrefix(timedSectionPrefix), times.seconds(signature) == nil,
           MemoryRehearsal.canTimeForReal(inputs: inputs, output: out) {
            // The operands the rehearsal made are filled with ordinary numbers first: untouched
            // they read as the kernel's shared zero page (no memory traffic), and reused blocks
            // hold denormals. A first run is not kept: it writes pages the rehearsal's blocks
            // never touched (faults a real step, reusing its blocks, does not take).
            fillRehearsalOperands(inputs)
            _ = try MemoryRehearsal.timed { _ = try call() }
            // A step reads each weight once, from memory: the weights (a product's operands after
            // the first) leave the caches the first run left them in; activations, which the
            // previous operation just wrote, stay.
            let flushesWeights = ["linear", "conv2d", "embedding"].contains(name)
            let weights = flushesWeights ? inputs.dropFirst().compactMap { $0 }.flatMap { [$0.storage] + $0.storage.derivedStorages } : []
            // Nor are a weight's address translations: a step last read its pages a step ago,
            // so each computing thread's translation buffer and the cached page tables hold
            // other pages (on a virtual machine, a translation missed costs two tables' walks).
            // A scratch block larger than the caches, read a word a cache line on every thread,
            // evicts them; the activation, which the previous operation just wrote, is then read once.
            let activation = inputs.first??.storage
            // The median of three such runs: one timing on a shared machine varies by a third.
            var runs: [Double] = []
            for _ in 0..<3 {
                if flushesWeights {
                    for storage in weights { swift_diffusers_flush(storage.pointer, storage.byteCount) }
                    try evictCachesAndTranslations()
                    if let activation { _ = swift_diffusers_touch(activation.pointer, activation.byteCount, 64) }
                }
                runs.append(try MemoryRehearsal.timed { _ = try call() })
            }
            if let seconds = MemoryRehearsal.median(runs) { times.record(signature, seconds: seconds) }
        }
        return out
    }

    /// A block of 64 MiB, written once (its pages real), that timings read to evict the caches
    /// and address translations an operation's earlier runs left warm; freed when the
    /// rehearsal ends (the run that follows must not hold it).
    private var scratch: UnsafeMutableRawPointer?
    private static let scratchBytes = 64 << 20

    /// Reads the scratch block a word a cache line, split over the computing threads (each
    /// thread's share has more pages than its translation buffer holds entries).
    private func evictCachesAndTranslations() throws {
        if scratch == nil, let block = malloc(MemoryRehearsal.scratchBytes) {
            memset(block, 1, MemoryRehearsal.scratchBytes)
            scratch = block
        }
        guard let scratch else { return }
        _ = try MemoryRehearsal.timed {
            Parallel.forEachChunk(MemoryRehearsal.scratchBytes / 64, grain: 1 << 14) { lines in
                _ = swift_diffusers_touch(scratch + lines.lowerBound * 64, lines.count * 64, 64)
            }
        }
    }

    /// Whether an operation can be run for real to time it: its operands are written and its
    /// output made four times, so together they must stay small — at most 512 MiB and a quarter
    /// of the memory available (a denoising step at 1024² with batch 4 stays under 100 MiB an
    /// operation). Larger ones — 64 images at 2048² — are rehearsed, not timed (timing them
    /// took minutes and 11 GiB): the step time of such a run lacks them.
    static func canTimeForReal(inputs: [Tensor?], output: Tensor) -> Bool {
        let bytes = inputs.reduce(output.storage.byteCount) { $0 + ($1?.storage.byteCount ?? 0) }
        return bytes <= min(512 << 20, (ProcessMemory.availableBytes() ?? 0) / 4)
    }

    /// Writes a small normal number (the byte 0x3C repeated: 0.0115 in f32 and bf16, 1.06 in
    /// f16, 1.5 in f8e4m3) over every floating-point operand the rehearsal allocated.
    private func fillRehearsalOperands(_ inputs: [Tensor?]) {
        for case let input? in inputs where input.dtype.isFloatingPoint && input.storage.isWritable {
            lock.lock(); let ours = rehearsalStorages[ObjectIdentifier(input.storage)]?.storage === input.storage; lock.unlock()
            if ours { memset(input.storage.pointer, 0x3C, input.storage.byteCount) }
        }
    }

    /// Runs `body` for real on this thread (kernels compute) and returns its seconds; its
    /// allocations are not part of the rehearsal's figures.
    static func timed(_ body: () throws -> Void) throws -> Double {
        activeLock.lock(); timing = true; activeLock.unlock()
        // The values are garbage, denormals among them, whose microcode assists made products
        // several times slower than on real activations: treat them as zero (DAZ, FTZ) on
        // every thread while timing, then restore each thread's register.
        let denormalsAreZero: UInt32 = 0x8040
        let savedBox = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: Parallel.threadCount)
        defer { savedBox.deallocate() }
        Parallel.onEveryThread {
            let slot = Int(omp_get_thread_num())
            let value = swift_diffusers_get_mxcsr()
            if slot < savedBox.count { savedBox[slot] = value }
            swift_diffusers_set_mxcsr(value | denormalsAreZero)
        }
        defer {
            Parallel.onEveryThread {
                let slot = Int(omp_get_thread_num())
                if slot < savedBox.count { swift_diffusers_set_mxcsr(savedBox[slot]) }
            }
            activeLock.lock(); timing = false; activeLock.unlock()
        }
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// `name` and each operand's and the result's shape, dtype and layout: operations with one
    /// signature do the same work.
    static func signature(_ name: String, inputs: [Tensor?], output: Tensor) -> String {
        func describe(_ t: Tensor) -> String {
            let layout = t.isContiguous ? "" : t.memoryFormat == .channelsLast ? "@nhwc" : "@\(t.strides.map(String.init).joined(separator: ","))"
            return "\(t.dtype)\(t.shape)\(layout)"
        }
        return name + "(" + inputs.map { $0.map(describe) ?? "-" }.joined(separator: " ") + ")->" + describe(output)
    }
}

struct WeakStorage {
    weak var storage: Storage?
}

/// Seconds per operation signature, measured on this machine by rehearsals (the step-time
/// model's calibration table), shared by the rehearsals of one plan and kept in a cache file.
public final class OperationTimes: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [String: Double]
    /// Signatures timed since this table was made or loaded.
    public private(set) var measuredCount = 0

    public init(_ table: [String: Double] = [:]) { self.table = table }

    /// The entry holding seconds per byte of mapped pages brought in and let go.
    public static let pageReadSignature = "page-read(per byte)"
    /// The entry holding seconds per byte of a large block in fresh pages (faulted, zeroed, unmapped).
    public static let freshPageSignature = "fresh-pages(per byte)"

    public func seconds(_ signature: String) -> Double? {
        lock.lock(); defer { lock.unlock() }
        return table[signature]
    }

    public func record(_ signature: String, seconds: Double) {
        lock.lock(); table[signature] = seconds; measuredCount += 1; lock.unlock()
    }

    public var entries: [String: Double] {
        lock.lock(); defer { lock.unlock() }
        return table
    }

    /// Σ count × seconds over `operations` by op class (the class of a signature's operation
    /// name; signatures missing from the table count nothing).
    public func secondsByClass(of operations: [String: Int]) -> [OpClass: Double] {
        lock.lock(); defer { lock.unlock() }
        var result: [OpClass: Double] = [:]
        for (signature, count) in operations {
            let name = String(signature.prefix { $0 != "(" })
            result[name == "copy" ? .copy : OpClass(operation: name), default: 0] += Double(count) * (table[signature] ?? 0)
        }
        return result
    }
}

