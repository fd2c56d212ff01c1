#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only (`PROT_READ`, `MAP_PRIVATE`). Tensors borrow its bytes
/// through `Storage(mappedPointer:byteCount:owner:)` and keep it alive; the mapping is
/// removed when the last of them (and this object) goes away.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// Start of the mapping; nil for an empty file (which cannot be mapped).
    public let base: UnsafeRawPointer?
    public let byteCount: Int

    /// Maps `path`, or throws `FileError` naming it (missing, a folder or special file,
    /// unreadable) or `SafeTensorsError.io` when the mapping fails.
    public init(path: String) throws {
        self.path = path
        let (fd, size) = try InputFile.open(path)
        // The mapping holds its own reference to the file, so the descriptor can go now.
        defer { close(fd) }
        byteCount = size
        if byteCount == 0 { base = nil; return }
        let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw SafeTensorsError.io(path: path, message: "mmap failed: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), byteCount) }
    }

    /// The mapped bytes (empty for an empty file).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : byteCount) }
}
