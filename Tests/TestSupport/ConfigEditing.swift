import Foundation
import NN

/// Malformed model folders for validation tests, derived from valid ones without copying
/// weights: configs are rewritten with some keys changed, weight files are linked.
public enum ConfigEditing {
    /// The JSON object in `source` with `changes` applied — each value a JSON literal
    /// (`"0"`, `"NaN"`, `"[64, 96]"`), nil to remove the key — written to `destination`.
    public static func write(from source: String, to destination: String, _ changes: [String: String?]) throws {
        let original = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: source))), allowNonFinite: true)
        guard var members = original.objectMembers else { throw CheckpointError.invalidConfig(path: source, reason: "not an object") }
        for (key, literal) in changes.sorted(by: { $0.key < $1.key }) {
            members.removeAll { $0.key == key }
            if let literal { members.append((key, try JSONParser.parse(Array(literal.utf8), allowNonFinite: true))) }
        }
        try Data(JSONWriter.render(.object(members), style: .python(indent: 2)).utf8).write(to: URL(fileURLWithPath: destination))
    }

    /// A copy of the model or pipeline folder `source` at `destination`: every JSON and text
    /// file copied (so that tests may edit them), every other file symbolically linked.
    public static func linkedCopy(of source: String, to destination: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: source) {
            let from = source + "/" + name, to = destination + "/" + name
            var isDirectory: ObjCBool = false
            _ = manager.fileExists(atPath: from, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                try linkedCopy(of: from, to: to)
            } else if name.hasSuffix(".json") || name.hasSuffix(".txt") {
                try manager.copyItem(atPath: from, toPath: to)
            } else {
                try manager.createSymbolicLink(atPath: to, withDestinationPath: from)
            }
        }
    }

    /// A `linkedCopy` of `source` in a fresh temporary folder, named as `source`'s last part;
    /// `removeTemporaryCopy` removes it with its folder.
    public static func temporaryCopy(of source: String, label: String) throws -> String {
        let copy = try temporaryFolder(label) + "/" + (source as NSString).lastPathComponent
        try linkedCopy(of: source, to: copy)
        return copy
    }

    public static func removeTemporaryCopy(_ copy: String) {
        try? FileManager.default.removeItem(atPath: (copy as NSString).deletingLastPathComponent)
    }

    /// A fresh empty folder under the temporary directory (the caller removes it).
    public static func temporaryFolder(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + label + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
