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
/// committing deletes it.
public final class TemporaryFile {
    public let finalPath: String
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false

    /// Creates the temporary file in the folder of `finalPath` (which must exist).
    public init(finalPath: String) throws {
        self.finalPath = finalPath
        let slash = finalPath.lastIndex(of: "/")
        let folder = slash.map { String(finalPath[..<$0]) } ?? "."
        let name = slash.map { String(finalPath[finalPath.index(after: $0)...]) } ?? finalPath
        var template = Array("\(folder.isEmpty ? "/" : folder)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else {
            throw SafeTensorsError.io(path: finalPath, message: "cannot create a temporary file: " + String(cString: strerror(errno)))
        }
        // mkstemp makes the file private (0600); checkpoints are ordinary files.
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
                throw SafeTensorsError.io(path: finalPath, message: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress { try write(base, count: buffer.count) }
        }
    }

    /// Closes the file and renames it to `finalPath` (replacing any file there).
    public func commit() throws {
        guard !committed else { return }
        if fd >= 0 {
            let status = close(fd)
            fd = -1
            guard status == 0 else {
                throw SafeTensorsError.io(path: finalPath, message: "close failed: " + String(cString: strerror(errno)))
            }
        }
        guard rename(temporaryPath, finalPath) == 0 else {
            throw SafeTensorsError.io(path: finalPath, message: "rename failed: " + String(cString: strerror(errno)))
        }
        committed = true
    }

    /// Deletes the temporary file unless it was committed.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(temporaryPath); committed = true }
    }
}
