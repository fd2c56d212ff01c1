#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemRead = Glibc.read
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 { Glibc.open(path, flags) }
#elseif canImport(Darwin)
private let systemRead = Darwin.read
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 { Darwin.open(path, flags) }
#endif

/// The one way files named by users (or found in folders they name) are opened: only regular
/// files, checked before anything blocks or maps them. A named pipe in place of a weight file
/// would block `open` forever and `/dev/zero` would never end; both are refused here.
public enum InputFile {
    /// Opens the regular file at `path` read-only and returns its descriptor and size; the
    /// caller closes it. `open` is non-blocking (a FIFO opens at once instead of waiting for a
    /// writer) and the kind comes from `fstat` of what was opened, so nothing can be swapped
    /// in between the check and the use.
    public static func open(_ path: String) throws -> (fd: Int32, size: Int) {
        guard !path.isEmpty else { throw FileError.notFound(path: "''") }
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw systemError(path, "read") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = systemError(path, "stat")
            close(fd)
            throw error
        }
        let kind = FileKind(mode: info.st_mode)
        guard kind == .regularFile else {
            close(fd)
            throw FileError.notARegularFile(path: path, kind: kind.phrase)
        }
        // Regular files ignore O_NONBLOCK, but reads should not see it set.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(info.st_size))
    }

    /// Throws unless `path` is a regular file this process can read.
    public static func check(_ path: String) throws {
        let (fd, _) = try open(path)
        close(fd)
    }

    /// The bytes of the regular file at `path`, at most `maxBytes` of them.
    public static func read(_ path: String, maxBytes: Int = 1 << 30) throws -> [UInt8] {
        let (fd, size) = try open(path)
        defer { close(fd) }
        guard size <= maxBytes else { throw FileError.tooLarge(path: path, bytes: size, limit: maxBytes) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            while done < size {
                let n = systemRead(fd, base + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw systemError(path, "read")
                }
                if n == 0 { break }   // the file shrank while being read
                done += n
            }
        }
        return done == size ? bytes : Array(bytes[..<done])
    }
}
