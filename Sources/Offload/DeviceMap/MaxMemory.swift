import Foundation
import Tensor

/// One device's budget as a user states it: a byte count, or a size string read by
/// `MemorySize.parse` (`"2GiB"`, `"500MB"`, `"8Gb"` = 1 GB).
public enum MemoryBudget: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    case bytes(Int)
    case text(String)

    public init(integerLiteral value: Int) { self = .bytes(value) }
    public init(stringLiteral value: String) { self = .text(value) }

    /// The budget in bytes (Accelerate's `convert_file_size_to_int`): negative integers and
    /// strings without a unit are errors naming the value.
    public func resolved() throws -> Int {
        switch self {
        case .bytes(let count):
            guard count >= 0 else { throw OffloadError.invalidSize(String(count)) }
            return count
        case .text(let text): return try MemorySize.parse(text)
        }
    }
}

/// Bytes available per device, in Accelerate's order: accelerators by index, then `cpu`,
/// then `disk`. This is what `get_max_memory` returns and what `get_balanced_memory` and
/// `infer_auto_device_map` consume.
public struct MaxMemory: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        public var device: DeviceTarget
        public var bytes: Int
        public init(device: DeviceTarget, bytes: Int) {
            self.device = device
            self.bytes = bytes
        }
    }

    /// The budgets, one per device, sorted as Accelerate sorts them.
    public private(set) var entries: [Entry]

    /// Budgets for `pairs`; a device named twice keeps its last value. The entries are
    /// sorted (accelerators by index, `cpu`, `disk`).
    public init(_ pairs: [(DeviceTarget, Int)]) {
        var byDevice: [DeviceTarget: Int] = [:]
        for (device, bytes) in pairs { byDevice[device] = bytes }
        entries = byDevice.keys.sorted().map { Entry(device: $0, bytes: byDevice[$0] ?? 0) }
    }

    /// The budget of `device`, or nil when it has none. Setting a device not yet present
    /// inserts it at its sorted place; setting nil removes it.
    public subscript(device: DeviceTarget) -> Int? {
        get { entries.first { $0.device == device }?.bytes }
        set {
            entries.removeAll { $0.device == device }
            guard let newValue else { return }
            let index = entries.firstIndex { device < $0.device } ?? entries.endIndex
            entries.insert(Entry(device: device, bytes: newValue), at: index)
        }
    }

    /// The devices, in order.
    public var devices: [DeviceTarget] { entries.map(\.device) }

    /// The accelerators, by index.
    public var accelerators: [DeviceTarget] { devices.filter(\.isAccelerator) }

    /// `{0: 1000, 'cpu': 2000}` as Python prints the dictionary.
    public var description: String {
        "{" + entries.map { entry -> String in
            let key = entry.device.accelIndex.map(String.init) ?? "'\(entry.device)'"
            return "\(key): \(entry.bytes)"
        }.joined(separator: ", ") + "}"
    }
}

/// The free memory of each device, as Accelerate asks the driver for it
/// (`torch.cuda.mem_get_info(i)[0]` per GPU and `psutil.virtual_memory().available`).
public struct MemoryInventory: Sendable, Equatable {
    /// Free bytes per accelerator index, by index.
    public var acceleratorFreeBytes: [(index: Int, bytes: Int)]
    /// Host memory available to a new allocation.
    public var cpuAvailableBytes: Int

    public init(acceleratorFreeBytes: [(index: Int, bytes: Int)], cpuAvailableBytes: Int) {
        self.acceleratorFreeBytes = acceleratorFreeBytes.sorted { $0.index < $1.index }
        self.cpuAvailableBytes = cpuAvailableBytes
    }

    public static func == (a: MemoryInventory, b: MemoryInventory) -> Bool {
        a.cpuAvailableBytes == b.cpuAvailableBytes
            && a.acceleratorFreeBytes.map(\.index) == b.acceleratorFreeBytes.map(\.index)
            && a.acceleratorFreeBytes.map(\.bytes) == b.acceleratorFreeBytes.map(\.bytes)
    }

    /// The machine now: each accelerator of `devices` with its capacity less the bytes in
    /// use (an accelerator without a capacity is backed by host memory, so it gets the host's
    /// available memory), and the host's `MemAvailable` from `/proc/meminfo`.
    public static func current(devices: DeviceSet) -> MemoryInventory {
        let host = hostAvailableBytes() ?? 0
        let accels = devices.allDevices.compactMap { device -> (index: Int, bytes: Int)? in
            guard case .accel(let index) = device.kind else { return nil }
            let free = device.allocator.capacity.map { max(0, $0 - device.allocator.bytesInUse) } ?? host
            return (index, free)
        }
        return MemoryInventory(acceleratorFreeBytes: accels, cpuAvailableBytes: host)
    }

    /// `MemAvailable` of `/proc/meminfo` in bytes (what psutil reports as available on
    /// Linux), or nil where the kernel does not tell.
    public static func hostAvailableBytes() -> Int? { ProcessMemory.availableBytes() }
}

/// Accelerate's `get_max_memory`.
///
/// - Without `user` budgets: every accelerator of `inventory` with its free bytes, then
///   `cpu` with the host's available memory.
/// - With them: each value converted to bytes (integers as they are, strings through
///   `MemorySize.parse`), the keys sorted (accelerator indices, `cpu`, `disk`). A key is an
///   accelerator index (`"0"`, or `"accel:0"`), `"cpu"` or `"disk"`; any other key throws
///   Accelerate's "Device k is not recognized" error. Devices the user leaves out are not
///   used, as in Accelerate.
public func getMaxMemory(_ user: [String: MemoryBudget]?, inventory: MemoryInventory) throws -> MaxMemory {
    guard let user else {
        return MaxMemory(inventory.acceleratorFreeBytes.map { (DeviceTarget.accel($0.index), $0.bytes) }
            + [(DeviceTarget.cpu, inventory.cpuAvailableBytes)])
    }
    var pairs: [(DeviceTarget, Int)] = []
    // Accelerate converts every value before it looks at the keys; sorted keys make the
    // first error reported the same on every run.
    let keys = user.keys.sorted()
    for key in keys {
        pairs.append((.cpu, try user[key, default: 0].resolved()))
    }
    var keyOf: [DeviceTarget: String] = [:]
    for (i, key) in keys.enumerated() {
        guard let device = DeviceTarget(parsing: key) else { throw OffloadError.unrecognizedMemoryKey(key) }
        if let other = keyOf[device] {
            throw OffloadError.invalidOption("max_memory gives \(device) twice ('\(other)' and '\(key)')")
        }
        keyOf[device] = key
        pairs[i].0 = device
    }
    return MaxMemory(pairs)
}

/// `getMaxMemory` for the devices of this process (`MemoryInventory.current`).
public func getMaxMemory(_ user: [String: MemoryBudget]?, devices: DeviceSet) throws -> MaxMemory {
    try getMaxMemory(user, inventory: .current(devices: devices))
}
