import Files
import Foundation

/// A file that derived copies of mapped weights (packed convolution weights) are written into
/// once and mapped from, so that the disk tier releases them with the weight's own pages and
/// gets them back by a page fault instead of by packing again.
///
/// The file is unlinked as soon as it is created: nothing is left on disk when the process ends
/// or fails, and the bytes live until the last storage mapping them goes. Its pages are ordinary
/// page cache (dirty until written back), so the kernel may write them out and drop them under
/// memory pressure; a freshly written file is held in large folios, which map whole 2 MiB at a
/// fault and are released as cheaply.
public final class SpillFile: @unchecked Sendable {
    /// Where the file was created (it no longer has a name there).
    public let folder: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var end = 0
    private var written = 0

    static let hugeAlignment = 2 << 20
    static let smallAlignment = 64 << 10

    /// Creates the file in `folder` (created when missing) and unlinks it.
    public init(folder: String) throws {
        do { _ = try OutputFolder.create(folder) } catch {
            throw TensorError.invalidArgument("the folder for packed weights cannot be used: \(error)")
        }
        var template = Array((folder + "/swift-diffusers-packed-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.map { mkstemp($0) } ?? -1 }
        guard fd >= 0 else {
            throw TensorError.invalidArgument("cannot create a file for packed weights in \(folder): \(String(cString: strerror(errno)))")
        }
        _ = template.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { unlink($0) } }
        self.folder = folder
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Bytes handed out so far (the file's data, holes between slots excluded).
    public var byteCount: Int { lock.lock(); defer { lock.unlock() }; return written }

    /// A new writable slot of `byteCount` bytes at the file's end, mapped shared: what is written
    /// through the storage's pointer is the file's content. Slots of 2 MiB and more start on a
    /// 2 MiB boundary so that they map in huge pages. The storage counts as mapped (no allocator
    /// accounting; its pages show in the RSS while touched and go with `releaseResidentPages`).
    public func allocate(byteCount: Int) throws -> Storage {
        guard byteCount > 0 else { return try Storage(byteCount: 0, device: .cpu) }
        let alignment = byteCount >= Self.hugeAlignment ? Self.hugeAlignment : Self.smallAlignment
        lock.lock()
        let offset = (end + alignment - 1) / alignment * alignment
        let newEnd = offset + byteCount
        // Blocks are reserved now, so a full disk is this error rather than a SIGBUS when the
        // mapping is written.
        let code = posix_fallocate(descriptor, off_t(offset), off_t(byteCount))
        if code == 0 { end = newEnd; written += byteCount }
        lock.unlock()
        guard code == 0 else {
            throw TensorError.invalidArgument("cannot reserve \(byteCount) bytes for packed weights in \(folder): \(String(cString: strerror(code)))")
        }
        let region = try SpillRegion(descriptor: descriptor, offset: offset, byteCount: byteCount, folder: folder)
        return Storage(mappedPointer: region.base, byteCount: byteCount, owner: region)
    }

    /// Starts writing a filled slot to disk now (asynchronously), so that its pages become clean
    /// (the kernel can drop them under pressure without writing) and the write-back does not
    /// land, 30 s later, in the middle of some other phase's compute.
    public func startWriteBack(of storage: Storage) {
        #if os(Linux)
        guard let region = storage.mapping as? SpillRegion else { return }
        _ = syncFileRange(descriptor, Int64(region.offset), Int64(region.byteCount), 2 /* SYNC_FILE_RANGE_WRITE */)
        #endif
    }
}

#if os(Linux)
/// glibc's `sync_file_range` (not in Swift's Glibc module).
@_silgen_name("sync_file_range")
private func syncFileRange(_ descriptor: Int32, _ offset: Int64, _ count: Int64, _ flags: UInt32) -> Int32
#endif

/// One slot of a `SpillFile`, mapped until the last storage viewing it goes.
final class SpillRegion: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let offset: Int

    init(descriptor: Int32, offset: Int, byteCount: Int, folder: String) throws {
        let mapped = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, off_t(offset))
        guard let mapped, mapped != MAP_FAILED else {
            throw TensorError.invalidArgument("cannot map \(byteCount) bytes of the packed-weight file in \(folder): \(String(cString: strerror(errno)))")
        }
        base = mapped
        self.byteCount = byteCount
        self.offset = offset
    }

    deinit { munmap(base, byteCount) }
}
