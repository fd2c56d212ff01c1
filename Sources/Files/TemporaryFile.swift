#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// A file written beside its final path under a hidden temporary name and renamed into
/// place by `commit()`, so that readers never see it half-written. Dropping it without
/// committing deletes it. Several files that belong together go through `OutputFiles`.
public final class TemporaryFile {
    public let finalPath: String
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false

    /// Creates the temporary file in the folder of `finalPath` (which must exist).
    public init(finalPath: String) throws {
        self.finalPath = finalPath
        let (folder, name) = splitPath(finalPath)
        guard !name.isEmpty else { throw FileError.invalidOutput(path: finalPath, reason: "the path names a folder, not a file") }
        var template = Array("\(folder)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else { throw systemError(folder, "create a file in") }
        // mkstemp makes the file private (0600); outputs are ordinary files.
        fchmod(fd, 0o644)
        self.fd = fd
        self.temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { discard() }

    /// Appends `count` bytes from `pointer`.
    public func write(_ pointer: UnsafeRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let n = systemWrite(fd, pointer + done, min(count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw systemError(finalPath, "write")
            }
            done += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress { try write(base, count: buffer.count) }
        }
    }

    /// Closes the file, so that a failing close (a full disk on some file systems) is seen
    /// before anything is renamed.
    public func finish() throws {
        guard fd >= 0 else { return }
        let status = close(fd)
        fd = -1
        guard status == 0 else { throw systemError(finalPath, "write") }
    }

    /// Closes the file and renames it to `finalPath` (replacing any file there).
    public func commit() throws {
        guard !committed else { return }
        try finish()
        guard rename(temporaryPath, finalPath) == 0 else { throw systemError(finalPath, "move the finished file to") }
        committed = true
    }

    /// Deletes the temporary file unless it was committed.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(temporaryPath); committed = true }
    }
}

/// The folder ("." when none, "/" for the root) and last component of `path`.
func splitPath(_ path: String) -> (folder: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let folder = String(path[..<slash])
    return (folder.isEmpty ? "/" : folder, String(path[path.index(after: slash)...]))
}
