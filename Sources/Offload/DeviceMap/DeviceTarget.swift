import Foundation
import Tensor

/// Where a device map sends a module's weights: an accelerator (Accelerate's integer GPU
/// index), host memory, or the disk tier (weights read on demand).
///
/// The order is Accelerate's allocation order: accelerators by index, then `cpu`, then
/// `disk` (`get_max_memory` sorts its keys this way and `infer_auto_device_map` fills them in
/// this order).
public enum DeviceTarget: Hashable, Comparable, Sendable, CustomStringConvertible {
    case accel(Int)
    case cpu
    case disk

    /// `accel:N`, `cpu` or `disk`.
    public var description: String {
        switch self {
        case .accel(let index): return "accel:\(index)"
        case .cpu: return "cpu"
        case .disk: return "disk"
        }
    }

    /// The value as Diffusers prints it in `hf_device_map`: a bare integer for an
    /// accelerator, a quoted string otherwise (`0`, `"cpu"`, `"disk"`).
    public var hfValue: String {
        switch self {
        case .accel(let index): return String(index)
        case .cpu: return "\"cpu\""
        case .disk: return "\"disk\""
        }
    }

    /// True for accelerators (the devices that compute).
    public var isAccelerator: Bool {
        if case .accel = self { return true }
        return false
    }

    /// The accelerator index, or nil for `cpu` and `disk`.
    public var accelIndex: Int? {
        if case .accel(let index) = self { return index }
        return nil
    }

    /// Parses `accel:N`, a bare index `N` (Accelerate's integer keys), `cpu` or `disk`,
    /// ignoring case and surrounding spaces; nil for anything else (negative indices included).
    public init?(parsing text: String) {
        let name = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch name {
        case "cpu": self = .cpu
        case "disk": self = .disk
        default:
            let digits = name.hasPrefix("accel:") ? String(name.dropFirst(6)) : name
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), let index = Int(digits) else { return nil }
            self = .accel(index)
        }
    }

    /// The device that holds weights mapped here (`disk` has none: its weights stay in files
    /// and are brought to the execution device per forward).
    public func device(in devices: DeviceSet) -> Device? {
        switch self {
        case .accel(let index): return devices.accel(index)
        case .cpu: return .cpu
        case .disk: return nil
        }
    }

    public static func < (a: DeviceTarget, b: DeviceTarget) -> Bool {
        switch (a, b) {
        case let (.accel(x), .accel(y)): return x < y
        case (.accel, _): return true
        case (.cpu, .disk): return true
        default: return false
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
