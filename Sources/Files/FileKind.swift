#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The type of a file system entry, from `stat`'s mode bits.
public enum FileKind: Sendable, Equatable {
    case regularFile, folder, namedPipe, characterDevice, blockDevice, socket, symbolicLink, other

    init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regularFile
        case S_IFDIR: self = .folder
        case S_IFIFO: self = .namedPipe
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFSOCK: self = .socket
        case S_IFLNK: self = .symbolicLink
        default: self = .other
        }
    }

    /// "a folder", "a named pipe (FIFO)", ... for messages.
    public var phrase: String {
        switch self {
        case .regularFile: return "a regular file"
        case .folder: return "a folder"
        case .namedPipe: return "a named pipe (FIFO)"
        case .characterDevice: return "a character device"
        case .blockDevice: return "a block device"
        case .socket: return "a socket"
        case .symbolicLink: return "a symbolic link"
        case .other: return "a special file"
        }
    }

    /// The kind of the entry at `path` (links followed), or nil when there is none.
    public static func of(_ path: String) -> FileKind? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileKind(mode: info.st_mode)
    }
}

/// The system's reason for the current `errno`, as a `FileError` for `action` on `path`.
func systemError(_ path: String, _ action: String, code: Int32 = errno) -> FileError {
    switch code {
    case ENOENT: return .notFound(path: path)
    case EACCES, EPERM: return .permissionDenied(path: path, action: action)
    case EISDIR: return .notARegularFile(path: path, kind: FileKind.folder.phrase)
    case ENOTDIR: return .system(path: path, action: action, reason: "a part of the path before the last is a file, not a folder")
    default: return .system(path: path, action: action, reason: String(cString: strerror(code)))
    }
}
