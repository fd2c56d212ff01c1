import Foundation

/// Reading small JSON files (configs, indexes) with errors that name the file.
enum JSONFile {
    static func read(_ path: String) throws -> JSONValue {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.io(path: path, message: "no such file")
        }
        if isDirectory.boolValue { throw CheckpointError.io(path: path, message: "is a directory, not a JSON file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError.io(path: path, message: "cannot read the file")
        }
        do {
            // Python's json writes NaN/Infinity; accept them in these files.
            return try JSONParser.parse(Array(data), allowNonFinite: true)
        } catch {
            throw CheckpointError.invalidJSON(path: path, message: "\(error)")
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}

/// `folder/name` without doubling slashes.
func joinPath(_ folder: String, _ name: String) -> String {
    folder.hasSuffix("/") ? folder + name : folder + "/" + name
}
