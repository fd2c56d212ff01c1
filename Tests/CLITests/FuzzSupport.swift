import Foundation
import NN
import Tensor
import XCTest

/// One malformed input for the fuzz suite: the `diffuse` arguments (with `{model}`, `{out}` and
/// `{work}` standing for the case's pipeline folder, its empty output folder and its scratch
/// folder), the pipeline's replaced files, and a fragment the one-line message must contain
/// (the file, option or value at fault).
struct FuzzCase {
    let name: String
    var arguments: [String]
    var replacing: [String: Replacement] = [:]
    /// Files or folders made in `{work}` or `{out}` before the run (relative paths).
    var prepare: [(path: String, content: Replacement)] = []
    let fragment: String
    /// Controls must succeed; everything else must fail cleanly.
    var succeeds = false

    /// What stands at a path of the mutated pipeline or the scratch folders.
    enum Replacement {
        case bytes([UInt8])
        case text(String)
        case fifo
        case folder
        case link(String)
    }
}

/// Builds the mutated pipelines and runs `diffuse` with a time limit.
struct FuzzHarness {
    let binary: String
    let base: String
    let root: String

    /// A copy of the pipeline at `base` made of symbolic links to its files, except the
    /// replaced ones.
    func pipeline(_ folder: String, replacing: [String: FuzzCase.Replacement]) throws {
        let manager = FileManager.default
        guard let walker = manager.enumerator(atPath: base) else { return }
        try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for case let relative as String in walker {
            let source = base + "/" + relative, target = folder + "/" + relative
            var isFolder: ObjCBool = false
            _ = manager.fileExists(atPath: source, isDirectory: &isFolder)
            if isFolder.boolValue {
                try manager.createDirectory(atPath: target, withIntermediateDirectories: true)
            } else if replacing[relative] == nil {
                try manager.createSymbolicLink(atPath: target, withDestinationPath: source)
            }
        }
        for (relative, replacement) in replacing {
            try place(replacement, at: folder + "/" + relative)
        }
    }

    func place(_ replacement: FuzzCase.Replacement, at path: String) throws {
        let manager = FileManager.default
        try? manager.removeItem(atPath: path)
        try manager.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        switch replacement {
        case .bytes(let bytes): try Data(bytes).write(to: URL(fileURLWithPath: path))
        case .text(let text): try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        case .fifo: guard mkfifo(path, 0o644) == 0 else { throw CocoaError(.fileWriteUnknown) }
        case .folder: try manager.createDirectory(atPath: path, withIntermediateDirectories: true)
        case .link(let destination): try manager.createSymbolicLink(atPath: path, withDestinationPath: destination)
        }
    }

    struct Outcome {
        let status: Int32
        let stdout: String
        let stderr: String
        let seconds: Double
        let timedOut: Bool
    }

    /// Runs `diffuse`, killing it after `limit` seconds.
    func run(_ arguments: [String], limit: Double) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["DIFFUSE_DEMO_MODEL": base]) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        let running = process
        let killed = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        killed.initialize(to: false)
        defer { killed.deallocate() }
        nonisolated(unsafe) let flag = killed
        DispatchQueue.global().asyncAfter(deadline: .now() + limit) {
            if running.isRunning { flag.pointee = true; running.terminate() }
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                       stderr: String(decoding: stderr, as: UTF8.self), seconds: Date().timeIntervalSince(start),
                       timedOut: killed.pointee)
    }

    /// Every path below `folder` (relative), sorted.
    static func contents(_ folder: String) -> [String] {
        ((FileManager.default.enumerator(atPath: folder)?.allObjects as? [String]) ?? []).sorted()
    }
}

/// JSON files with one value replaced by raw text (NaN, Infinity and huge numbers included,
/// which JSONSerialization cannot write).
enum JSONMutation {
    /// `text` (a JSON object) with top-level `key` set to `raw`, or removed when `raw` is nil.
    static func setting(_ key: String, to raw: String?, in text: String) throws -> String {
        guard case .object(let members) = try JSONParser.parse(Array(text.utf8), allowNonFinite: true) else {
            throw CocoaError(.coderInvalidValue)
        }
        var parts: [String] = []
        for (name, value) in members {
            if name == key {
                if let raw { parts.append("  \"\(name)\": \(raw)") }
            } else {
                parts.append("  \"\(name)\": " + JSONWriter.render(value, style: .python(indent: 2)).replacingOccurrences(of: "\n", with: " "))
            }
        }
        if let raw, !members.contains(where: { $0.key == key }) { parts.append("  \"\(key)\": \(raw)") }
        return "{\n" + parts.joined(separator: ",\n") + "\n}\n"
    }
}

/// Safetensors files derived from a valid one.
enum SafeTensorsMutation {
    /// Every floating-point tensor filled with `value`.
    static func filled(_ path: String, with value: Float) throws -> [UInt8] {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for entry in file.entries {
            let tensor = try file.tensor(named: entry.name)
            tensors[entry.name] = tensor.dtype.isFloatingPoint
                ? try Tensor([Float](repeating: value, count: tensor.count), shape: tensor.shape, dtype: tensor.dtype) : tensor
        }
        return try SafeTensorsWriter.serialize(tensors)
    }

    /// The file with the tensor `name` stored as `dtype` (same element count, BOOL/I32/...).
    static func retyped(_ path: String, tensor name: String, to dtype: DType) throws -> [UInt8] {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for entry in file.entries { tensors[entry.name] = try file.tensor(named: entry.name) }
        if let tensor = tensors[name] { tensors[name] = try tensor.to(dtype) }
        return try SafeTensorsWriter.serialize(tensors)
    }

    /// The file without the tensor `name`, or with it renamed to `renamed`.
    static func dropping(_ path: String, tensor name: String, renamed: String? = nil) throws -> [UInt8] {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for entry in file.entries where entry.name != name { tensors[entry.name] = try file.tensor(named: entry.name) }
        if let renamed { tensors[renamed] = try file.tensor(named: name) }
        return try SafeTensorsWriter.serialize(tensors)
    }

    /// The file with the tensor `name` reshaped to a wrong shape of the same size.
    static func reshaped(_ path: String, tensor name: String) throws -> [UInt8] {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for entry in file.entries { tensors[entry.name] = try file.tensor(named: entry.name) }
        if let tensor = tensors[name] { tensors[name] = try tensor.contiguous().reshaped([tensor.count]) }
        return try SafeTensorsWriter.serialize(tensors)
    }
}
