import Foundation

/// Reading small JSON files (configs, indexes) with errors that name the file.
enum JSONFile {
    static func read(_ path: String) throws -> JSONValue {
        // Configs and indexes are small; 64 MiB bounds a hostile one.
        let data = try InputFile.read(path, maxBytes: 64 << 20)
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
