import Foundation

/// The kinds of work a profile sorts time into.
public enum OpClass: String, CaseIterable, Sendable, Codable {
    case convolution, matmul, attention, normalization, elementwise, copy

    /// The class of a backend operation, named as `InterceptingBackend` names it.
    public init(operation name: String) {
        switch name {
        case "conv2d": self = .convolution
        case "matmul", "linear": self = .matmul
        case _ where name.hasPrefix("attention"): self = .attention
        case "groupNorm", "layerNorm", "rmsNorm", "softmax": self = .normalization
        case "concat", "upsampleNearest", "embedding": self = .copy
        default: self = .elementwise   // unary.*, binary.*, affine, clamp
        }
    }
}

/// Where the time of a run went: wall-clock seconds per section (a phase such as one denoising
/// step, named by the code that runs it) and, inside it, per op class. Time is exclusive: a
/// dtype conversion or layout reorder inside a convolution counts as copy, not also as
/// convolution. What no class claims (Swift glue, schedulers, hooks) is the section's wall
/// time less the classes' sum. Records the operations of the thread it is installed on.
public final class OpProfile: @unchecked Sendable {
    /// One section's figures, summed over its entries.
    public struct Section: Sendable, Equatable {
        public var wallSeconds = 0.0
        public var entries = 0
        public var seconds: [OpClass: Double] = [:]
        public var calls: [OpClass: Int] = [:]
        /// Seconds per operation (`conv2d`, `gated.gelu`, `copy`, `conv2d.reorder`, `pack-weight`,
        /// …), the finer split of `seconds`.
        public var operations: [String: Double] = [:]
        /// Wall time no op class claims.
        public var otherSeconds: Double { wallSeconds - seconds.values.reduce(0, +) }
    }

    public private(set) var sections: [String: Section] = [:]
    /// Section names in the order they were first entered.
    public private(set) var sectionOrder: [String] = []
    private var open: (name: String, start: UInt64)?
    /// Elapsed time of measured children, one entry per measurement in progress.
    private var nested: [UInt64] = []

    public init() {}

    /// Runs `body` with this profile installed on the calling thread (in place of any other
    /// until it returns); the section open when it returns is closed.
    public func record<T>(_ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(profileKey)
        pthread_setspecific(profileKey, Unmanaged.passUnretained(self).toOpaque())
        defer {
            endSection()
            pthread_setspecific(profileKey, previous)
        }
        return try withExtendedLifetime(self) { try body() }
    }

    /// Ends the open section of the profile recording on this thread (if any) and opens `name`
    /// (entering a name again adds to its figures); nil only ends it.
    public static func beginSection(_ name: String?) {
        MemoryRehearsal.current?.beginSection(name)
        guard let profile = current else { return }
        profile.endSection()
        guard let name else { return }
        if !profile.sectionOrder.contains(name) { profile.sectionOrder.append(name) }
        profile.open = (name, DispatchTime.now().uptimeNanoseconds)
    }

    /// Times `body` as `opClass` (and as `operation`, the class's name when nil) when a profile
    /// records on this thread.
    public static func measure<T>(_ opClass: OpClass, operation: String? = nil, _ body: () throws -> T) rethrows -> T {
        guard let profile = current else { return try body() }
        return try profile.measure(opClass, operation: operation ?? opClass.rawValue, body)
    }

    static var current: OpProfile? {
        guard let raw = pthread_getspecific(profileKey) else { return nil }
        return Unmanaged<OpProfile>.fromOpaque(raw).takeUnretainedValue()
    }

    func measure<T>(_ opClass: OpClass, operation: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        nested.append(0)
        defer {
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            let children = nested.removeLast()
            if !nested.isEmpty { nested[nested.count - 1] += elapsed }
            if let name = open?.name {
                let seconds = Double(elapsed - min(children, elapsed)) / 1e9
                sections[name, default: Section()].seconds[opClass, default: 0] += seconds
                sections[name, default: Section()].calls[opClass, default: 0] += 1
                sections[name, default: Section()].operations[operation, default: 0] += seconds
            }
        }
        return try body()
    }

    private func endSection() {
        guard let (name, start) = open else { return }
        open = nil
        sections[name, default: Section()].wallSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        sections[name, default: Section()].entries += 1
    }
}

/// The thread-local slot holding the recording profile (unretained: `record` keeps it alive).
private let profileKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
