import Foundation

/// The small trained Stable Diffusion pipeline that ships with swift-diffusers (`models/demo`,
/// trained by `tools/demo-model/train.py` on procedurally drawn shapes): what `diffuse generate`
/// uses when no `--model` is given, so that a fresh checkout draws what it is asked.
enum DemoModel {
    /// Overrides where the demo pipeline is looked for.
    static let environmentVariable = "DIFFUSE_DEMO_MODEL"

    /// The folder `diffuse` was built with: `models/demo` of this checkout (found from this
    /// source file's path, as SwiftPM's resource bundles find theirs on Linux).
    static let sourceTreeFolder: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // DemoModel.swift, diffuse, Sources
        return url.appendingPathComponent("models/demo").path
    }()

    /// Where the demo pipeline is looked for, in order: `$DIFFUSE_DEMO_MODEL`, a `demo-model`
    /// folder beside the executable (a copied install), the checkout `diffuse` was built from.
    static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if let forced = environment[environmentVariable], !forced.isEmpty { return [forced] }
        guard let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() else { return [sourceTreeFolder] }
        return [executable.deletingLastPathComponent().appendingPathComponent("demo-model").path, sourceTreeFolder]
    }

    /// The first candidate that holds a pipeline (`model_index.json`), or an error naming where
    /// it looked.
    static func locate() throws -> String {
        let places = candidates()
        if let found = places.first(where: { FileManager.default.fileExists(atPath: $0 + "/model_index.json") }) { return found }
        throw DemoModelError(searched: places)
    }
}

/// No `--model` was given and the demo pipeline is not where `diffuse` looks for it.
struct DemoModelError: Error, CustomStringConvertible {
    let searched: [String]

    var description: String {
        "no --model given and the demo pipeline was not found (looked in \(searched.joined(separator: ", "))); pass --model DIR or set \(DemoModel.environmentVariable)"
    }
}
