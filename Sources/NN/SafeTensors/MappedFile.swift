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

    /// Maps `path`, or throws `SafeTensorsError` naming it (missing, a directory, unreadable).
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw SafeTensorsError.fileNotFound(path: path) }
            if code == EISDIR { throw SafeTensorsError.isDirectory(path: path) }
            throw SafeTensorsError.io(path: path, message: String(cString: strerror(code)))
        }
        // The mapping holds its own reference to the file, so the descriptor can go now.
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SafeTensorsError.io(path: path, message: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw SafeTensorsError.isDirectory(path: path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError.io(path: path, message: "not a regular file")
        }
        byteCount = Int(info.st_size)
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
