import Foundation
import NN

/// The package root, found from this file's path (fixtures are not SwiftPM resources).
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }  // Fixtures.swift, TestSupport, Tests
    return url.path
}()

/// Tests/Fixtures: what tools/reference/*.py wrote with PyTorch and Diffusers, read without Python.
public enum Fixtures {
    /// The Tests/Fixtures folder.
    public static let root = URL(fileURLWithPath: packageRoot).appendingPathComponent("Tests/Fixtures")

    /// The path of `relative` inside Tests/Fixtures.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The safetensors file at `relative` inside Tests/Fixtures.
    public static func file(_ relative: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: path(relative)) }
}
