/// What can be wrong with a path a user (or a folder a user named) hands us, before its
/// content is looked at. Every case names the path and says the real cause in our own words:
/// Foundation's descriptions ("You don't have permission.") never reach the user.
public enum FileError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(path: String)
    /// Something other than a regular file where one is read: a folder, a named pipe, a
    /// device, a socket. Opening a FIFO or /dev/zero would hang or never end.
    case notARegularFile(path: String, kind: String)
    /// A folder was needed.
    case notAFolder(path: String, kind: String)
    case permissionDenied(path: String, action: String)
    case tooLarge(path: String, bytes: Int, limit: Int)
    /// Any other failure of the system call `action` with the system's reason.
    case system(path: String, action: String, reason: String)
    /// An output path that is unusable before anything is computed.
    case invalidOutput(path: String, reason: String)
    /// Two outputs (or an output and an input) name the same file.
    case collision(path: String, first: String, second: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path) does not exist"
        case let .notARegularFile(path, kind): return "\(path) is \(kind), not a regular file"
        case let .notAFolder(path, kind): return "\(path) is \(kind), not a folder"
        case let .permissionDenied(path, action): return "permission denied: cannot \(action) \(path)"
        case let .tooLarge(path, bytes, limit):
            return "\(path) holds \(bytes) bytes, more than the \(limit) bytes such a file may have"
        case let .system(path, action, reason): return "cannot \(action) \(path): \(reason)"
        case let .invalidOutput(path, reason): return "cannot write \(path): \(reason)"
        case let .collision(path, first, second): return "\(first) and \(second) both name \(path); give each its own file"
        }
    }
}
