#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemRead = Glibc.read
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemRead = Darwin.read
private let systemWrite = Darwin.write
#endif

/// Whole-file reads and atomic writes with errors that name the file.
enum FileIO {
    /// The bytes of the regular file at `path`.
    ///
    /// - Throws: `ImageError.io` when it cannot be opened or read or is not a regular file;
    ///   `ImageError.tooLarge` when it holds more than `maxBytes`.
    static func read(_ path: String, maxBytes: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)   // non-blocking: a FIFO must not hang us
        guard fd >= 0 else { throw ImageError.io(path: path, detail: "cannot open: " + errorText()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ImageError.io(path: path, detail: "cannot stat: " + errorText()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ImageError.io(path: path, detail: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size <= maxBytes else {
            throw ImageError.tooLarge(source: path, detail: "the file holds \(size) bytes, more than the limit of \(maxBytes)")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            while done < size {
                let n = systemRead(fd, base + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImageError.io(path: path, detail: "read failed: " + errorText())
                }
                if n == 0 { break }   // the file shrank while being read
                done += n
            }
        }
        return done == size ? bytes : Array(bytes[..<done])
    }

    /// Writes each `(path, bytes)` pair so that no reader ever sees a half-written file: every
    /// file is written under a hidden temporary name in its destination folder, and only when
    /// all are written are they renamed into place. On failure the temporary files are removed.
    static func writeAtomically(_ files: [(path: String, bytes: [UInt8])]) throws {
        var temporaries: [String] = []
        defer { for path in temporaries where !path.isEmpty { unlink(path) } }   // those not renamed
        for file in files {
            let temporary = try createTemporary(beside: file.path)
            temporaries.append(temporary.path)
            try write(file.bytes, to: temporary.fd, path: file.path)
        }
        for (index, file) in files.enumerated() {
            guard rename(temporaries[index], file.path) == 0 else {
                throw ImageError.io(path: file.path, detail: "cannot rename the finished file into place: " + errorText())
            }
            temporaries[index] = ""   // renamed: nothing to remove
        }
    }

    /// Creates `.NAME.tmp-XXXXXX` in the folder of `path` (mode 0644).
    private static func createTemporary(beside path: String) throws -> (path: String, fd: Int32) {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw ImageError.io(path: path, detail: "the path names a folder, not a file") }
        var template = Array("\(folder.isEmpty ? "/" : folder)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else {
            throw ImageError.io(path: path, detail: "cannot create a temporary file in \(folder.isEmpty ? "/" : folder): " + errorText())
        }
        fchmod(fd, 0o644)
        let temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (temporaryPath, fd)
    }

    /// Writes all of `bytes` to `fd` and closes it.
    private static func write(_ bytes: [UInt8], to fd: Int32, path: String) throws {
        var closed = false
        defer { if !closed { close(fd) } }
        try bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < buffer.count {
                let n = systemWrite(fd, base + done, min(buffer.count - done, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImageError.io(path: path, detail: "write failed: " + errorText())
                }
                done += n
            }
        }
        closed = true
        guard close(fd) == 0 else { throw ImageError.io(path: path, detail: "close failed: " + errorText()) }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
