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

    public var description: String {
        switch self {
        case .invalidSize(let text):
            return "size '\(text)' is not in a valid format; use an integer for bytes, or a string with a unit (like '5.0GB' or '2GiB')"
        case .invalidOption(let message), .conflictingStrategy(let message): return message
        }
    }
}
