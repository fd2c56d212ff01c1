import Tensor
import Foundation

/// Memory sizes exactly as Accelerate's `convert_file_size_to_int` reads them (device budgets,
/// `--max-memory`, `--accel-capacity`): `"1GiB"`/`"1MiB"`/`"1KiB"` binary, `"1GB"`/`"1MB"`/`"1KB"`
/// decimal, a trailing lower-case `b` on the decimal units means bits (`"8Gb"` is 1 GB).
/// A number without a unit is only accepted as an integer value, not as text.
public enum MemorySize {
    /// Parses `text`, or throws `OffloadError.invalidSize` naming it.
    public static func parse(_ text: String) throws -> Int {
        let upper = text.uppercased()
        func number(_ count: Int) throws -> Double {
            guard let value = Double(text.dropLast(count).trimmingCharacters(in: .whitespaces)), value.isFinite else {
                throw OffloadError.invalidSize(text)
            }
            return value
        }
        var bytes: Double
        if upper.hasSuffix("GIB") { bytes = try number(3) * 1_073_741_824 }
        else if upper.hasSuffix("MIB") { bytes = try number(3) * 1_048_576 }
        else if upper.hasSuffix("KIB") { bytes = try number(3) * 1024 }
        else if upper.hasSuffix("GB") { bytes = try number(2) * 1e9 }
        else if upper.hasSuffix("MB") { bytes = try number(2) * 1e6 }
        else if upper.hasSuffix("KB") { bytes = try number(2) * 1e3 }
        else { throw OffloadError.invalidSize(text) }
        guard bytes >= 0, bytes < 9.2e18 else { throw OffloadError.invalidSize(text) }
        var size = Int(bytes)
        if text.hasSuffix("b") && !upper.hasSuffix("IB") { size /= 8 }   // "5Gb": gigabits
        return size
    }
}

/// Errors of planning and applying placement and offloading; each names the option at fault.
public enum OffloadError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidSize(String)
    case invalidOption(String)
    case conflictingStrategy(String)
    /// A device map value or device name that is not `accel:N` (or `N`), `cpu` or `disk`;
    /// `context` says where it was met (a map key, an option).
    case unknownDevice(String, context: String)
    /// A device-map key that is neither a module nor a parameter path of `model`.
    case unknownModule(String, model: String)
    /// Accelerate's `check_device_map`: parameters no map key covers.
    case uncoveredParameters([String])
    /// Diffusers' loader: a parameter without a device (no matching prefix and no `""`).
    case parameterWithoutDevice(String)
    /// A `maxMemory` key other than an accel index, `cpu` or `disk` (Accelerate's `get_max_memory`).
    case unrecognizedMemoryKey(String)
    /// A strategy asked of a model that declares no no-split classes (Diffusers' `_no_split_modules`).
    case noSplitModulesUndeclared(model: String, strategy: String)
    /// A model-level device-map string that is neither a device nor a strategy.
    case invalidDeviceMapString(String)
    /// A negative device index given as a whole-model device map.
    case negativeDeviceMapIndex(Int)
    /// A pipeline-level device map other than `balanced` or a device type (Diffusers' NotImplementedError).
    case unsupportedPipelineDeviceMap(String)
    /// A device-map file or text that is not a JSON object of paths to devices.
    case invalidDeviceMap(String)
    /// The execution device cannot hold the largest set of weights a strategy must bring to it
    /// at once (found when the strategy is applied, not in the middle of a run).
    case insufficientCapacity(device: String, unit: String, unitBytes: Int, freeBytes: Int, strategy: String)

    public var description: String {
        switch self {
        case .invalidSize(let text):
            // Accelerate's `convert_file_size_to_int` wording.
            return "`size` \(text) is not in a valid format. Use an integer for bytes, or a string with an unit (like '5.0GB')."
        case .invalidOption(let message), .conflictingStrategy(let message), .invalidDeviceMap(let message): return message
        case let .insufficientCapacity(device, unit, unitBytes, freeBytes, strategy):
            return "\(strategy) needs \(formatBytes(unitBytes)) on \(device) at once for '\(unit)', but \(device) has "
                + "\(formatBytes(freeBytes)) free; give it more capacity or split the model finer"
        case let .unknownDevice(value, context):
            return "unknown device '\(value)' \(context); expected an accel index (0, 1, ...), 'accel:N', 'cpu' or 'disk'"
        case let .unknownModule(path, model):
            return "the device map names '\(path)', which is neither a module nor a parameter of \(model)"
        case .uncoveredParameters(let names):
            return "The device_map provided does not give any device for the following parameters: "
                + names.joined(separator: ", ")
        case .parameterWithoutDevice(let name):
            return "\(name) doesn't have any device set."
        case .unrecognizedMemoryKey(let key):
            return "Device \(key) is not recognized, available devices are integers (for accel devices), 'cpu' and 'disk'"
        case let .noSplitModulesUndeclared(model, strategy):
            return "\(model) does not support `device_map='\(strategy)'`. To implement support, the model class needs to "
                + "implement the `_no_split_modules` attribute (`noSplitModuleClasses` in this port)."
        case .invalidDeviceMapString(let value):
            return "When passing device_map as a string, the value needs to be a device name (e.g. cpu, accel:0) or "
                + "'auto', 'balanced', 'balanced_low_0', 'sequential' but found \(value)."
        case .negativeDeviceMapIndex(let index):
            return "You can't pass device_map as a negative int (\(index)). If you want to put the model on the cpu, "
                + "pass device_map = 'cpu'"
        case .unsupportedPipelineDeviceMap(let value):
            return "\(value) not supported. Supported strategies are: \(PipelineDeviceMapRequest.supportedValues.joined(separator: ", "))"
        }
    }
}
