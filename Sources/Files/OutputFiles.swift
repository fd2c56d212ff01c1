#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The outputs of one run, checked before the run starts and committed together at its end.
///
/// `claim` checks each output path up front (its folder exists and is writable, it is not a
/// folder or special file, no two outputs and no output and input name the same file), so that
/// a run never computes for minutes and then fails to save. Outputs are staged as temporary
/// files beside their targets; `commit` moves them all into place, and if any move fails the
/// ones already moved are undone (files they replaced are restored). Whatever was staged but
/// not committed is removed when this object goes away: a failed run leaves nothing behind.
public final class OutputFiles {
    private struct Claim {
        let path: String
        let role: String
        let identity: String
    }

    private var claims: [Claim] = []
    private var inputs: [(identity: String, role: String, device: UInt64, inode: UInt64)] = []
    private var staged: [TemporaryFile] = []

    public init() {}

    /// The paths claimed so far, in order.
    public var paths: [String] { claims.map(\.path) }

    /// Registers an input file, so that no output may overwrite it.
    public func noteInput(_ path: String, role: String) {
        var info = stat()
        let exists = stat(path, &info) == 0
        inputs.append((Self.identity(of: path), role, exists ? UInt64(info.st_dev) : 0, exists ? UInt64(info.st_ino) : 0))
    }

    /// Checks `path` as an output named by `role` (an option such as `--out`) and claims it.
    public func claim(_ path: String, role: String) throws {
        let (folder, name) = splitPath(path)
        guard !path.isEmpty else { throw FileError.invalidOutput(path: "''", reason: "\(role) is empty") }
        guard !name.isEmpty, name != ".", name != ".." else {
            throw FileError.invalidOutput(path: path, reason: "\(role) names a folder; give a file name")
        }
        guard let folderKind = FileKind.of(folder) else {
            throw FileError.invalidOutput(path: path, reason: "its folder \(folder) does not exist")
        }
        guard folderKind == .folder else {
            throw FileError.invalidOutput(path: path, reason: "\(folder) is \(folderKind.phrase), not a folder")
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw FileError.invalidOutput(path: path, reason: "the folder \(folder) is not writable")
        }
        var info = stat()
        if stat(path, &info) == 0 {
            let kind = FileKind(mode: info.st_mode)
            guard kind == .regularFile else {
                throw FileError.invalidOutput(path: path, reason: "it is \(kind.phrase); only a regular file may be replaced")
            }
            if let input = inputs.first(where: { $0.device == UInt64(info.st_dev) && $0.inode == UInt64(info.st_ino) }) {
                throw FileError.collision(path: path, first: input.role, second: role)
            }
        }
        let identity = Self.identity(of: path)
        if let input = inputs.first(where: { $0.identity == identity }) {
            throw FileError.collision(path: path, first: input.role, second: role)
        }
        if let earlier = claims.first(where: { $0.identity == identity }) {
            throw FileError.collision(path: path, first: earlier.role, second: role)
        }
        claims.append(Claim(path: path, role: role, identity: identity))
    }

    /// Writes a claimed output to its temporary file through `body`.
    public func stage(_ path: String, _ body: (TemporaryFile) throws -> Void) throws {
        guard claims.contains(where: { $0.path == path }) else {
            throw FileError.invalidOutput(path: path, reason: "it was not checked before the run (an internal error)")
        }
        let file = try TemporaryFile(finalPath: path)
        do {
            try body(file)
            try file.finish()
        } catch {
            file.discard()
            throw error
        }
        staged.append(file)
    }

    public func stage(_ path: String, bytes: [UInt8]) throws {
        try stage(path) { try $0.write(bytes) }
    }

    /// Moves every staged file into place, all or none; returns their paths in claim order.
    @discardableResult
    public func commit() throws -> [String] {
        var done: [(file: TemporaryFile, backup: String?)] = []
        do {
            for file in staged {
                // A file being replaced is kept under a second name until all moves succeed.
                var backup: String?
                if FileKind.of(file.finalPath) == .regularFile {
                    let name = file.temporaryPath + ".previous"
                    if link(file.finalPath, name) == 0 { backup = name }
                }
                do {
                    try file.commit()
                } catch {
                    if let backup { unlink(backup) }
                    throw error
                }
                done.append((file, backup))
            }
        } catch {
            for (file, backup) in done.reversed() {
                if let backup { rename(backup, file.finalPath) } else { unlink(file.finalPath) }
            }
            for file in staged { file.discard() }
            staged = []
            throw error
        }
        for case let (_, backup?) in done { unlink(backup) }
        let written = Set(staged.map(\.finalPath))
        staged = []
        return claims.map(\.path).filter(written.contains)
    }

    /// Removes everything staged and not committed.
    public func discard() {
        for file in staged { file.discard() }
        staged = []
    }

    deinit { discard() }

    /// An absolute, normalised spelling of `path` for comparisons: the folder resolved by
    /// `realpath` (links and `..` followed), the last component as given.
    static func identity(of path: String) -> String {
        let (folder, name) = splitPath(path)
        guard let resolved = realpath(folder, nil) else { return path }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return (base == "/" ? "" : base) + "/" + name
    }
}

/// Output folders (`--out DIR` of shard and cast).
public enum OutputFolder {
    /// Creates `path` and any missing parents (`mkdir -p`); returns the folders it created,
    /// deepest last, so that a failed run can remove exactly those. An existing folder is fine;
    /// anything else at the path is an error.
    public static func create(_ path: String) throws -> [String] {
        guard !path.isEmpty else { throw FileError.invalidOutput(path: "''", reason: "the folder name is empty") }
        if let kind = FileKind.of(path) {
            guard kind == .folder else { throw FileError.notAFolder(path: path, kind: kind.phrase) }
            guard access(path, W_OK | X_OK) == 0 else { throw FileError.invalidOutput(path: path, reason: "the folder is not writable") }
            return []
        }
        let (parent, _) = splitPath(path)
        var created = parent == path ? [] : try create(parent)
        guard mkdir(path, 0o755) == 0 || (errno == EEXIST && FileKind.of(path) == .folder) else {
            let error = systemError(path, "create the folder")
            remove(created)
            throw error
        }
        created.append(path)
        return created
    }

    /// Removes folders `create` made (deepest first), if they are still empty.
    public static func remove(_ created: [String]) {
        for folder in created.reversed() { rmdir(folder) }
    }
}
