import Foundation
import Tensor

/// What a run will take, predicted from its rehearsal (`MemoryRehearsal`: the real code path
/// with every allocation made and no kernel computing) before any weight is read: the process's
/// peak resident set, each device's peak, and the time of a denoising step from the measured
/// seconds of its operations (`OperationTimes`, this machine's calibration table).
///
/// The process peak is the resident set before the run, plus the most bytes the rehearsal held
/// at once — every allocator's live bytes and the freed blocks its cache keeps (the accelerator
/// stand-ins live in host memory too), plus the mapped weight pages read and not yet let go —
/// plus the 8-bit pictures and their encoded files the command makes from the images.
public struct RunPrediction: Sendable, Equatable {
    /// The process's resident set when the rehearsal began (code, libraries, tokenizers).
    public private(set) var baseResidentBytes: Int
    /// The most bytes the run holds at once above that, as rehearsed.
    public private(set) var rehearsedPeakBytes: Int
    /// The most mapped checkpoint bytes resident at once.
    public private(set) var mappedPeakBytes: Int
    /// What the command holds beside the run: pictures and encoded files.
    public private(set) var outputBytes: Int
    /// Per device (`cpu`, `accel:0`): the most live bytes its allocator holds at once.
    public private(set) var devicePeakBytes: [String: Int]
    /// Seconds of one denoising step (a step after the first where the run has one), nil when
    /// the rehearsal had no timing table.
    public private(set) var stepSeconds: Double?
    /// `stepSeconds` by op class (`convolution`, `matmul`, …; copies to limited devices as `copy`).
    public private(set) var stepSecondsByClass: [String: Double]
    /// The phase the process peaks in, as rehearsed (`vae_decode`, `unet_step`, …; nil: not known).
    public var peakSection: String?

    public var processPeakResidentBytes: Int { baseResidentBytes + rehearsedPeakBytes + outputBytes }

    public init(baseResidentBytes: Int, rehearsedPeakBytes: Int, mappedPeakBytes: Int, outputBytes: Int,
                devicePeakBytes: [String: Int], stepSeconds: Double?, stepSecondsByClass: [String: Double] = [:]) {
        self.baseResidentBytes = baseResidentBytes
        self.rehearsedPeakBytes = rehearsedPeakBytes
        self.mappedPeakBytes = mappedPeakBytes
        self.outputBytes = outputBytes
        self.devicePeakBytes = devicePeakBytes
        self.stepSeconds = stepSeconds
        self.stepSecondsByClass = stepSecondsByClass
    }

    /// The prediction from a rehearsal's figures. A step's time is its operations' measured
    /// seconds plus its copies to bandwidth-limited devices at their bandwidth (`bandwidths`,
    /// bytes per second by device name): the copies the compute thread makes hold it up in
    /// full; those a prefetch queue makes ahead (`transfersAhead`) share the copy engine and
    /// overlap the computation that runs while they are on their way, so they add only where
    /// the compute thread has to wait for them (`TimelineEvent.copyStall`).
    public init(rehearsal figures: MemoryRehearsal.Figures, baseResidentBytes: Int, outputBytes: Int,
                times: OperationTimes?, bandwidths: [String: Double] = [:]) {
        // A later step is the steady one (the first packs weights, and some schedulers' first
        // step differs); a one-step run has only the first.
        let section = (figures.sectionEntries["unet_step"] ?? 0) > 0 ? "unet_step" : "unet_first_step"
        let entries = Double(max(figures.sectionEntries[section] ?? 1, 1))
        func copySeconds(_ transfers: [String: Int]?) -> Double {
            (transfers ?? [:]).reduce(0.0) { $0 + Double($1.value) / max(bandwidths[$1.key] ?? .infinity, 1) } / entries
        }
        let ahead = copySeconds(figures.transfersAhead[section]), waited = copySeconds(figures.transfers[section]) - ahead
        var byClass: [String: Double] = [:]
        for (opClass, seconds) in times?.secondsByClass(of: figures.operations[section] ?? [:]) ?? [:] { byClass[opClass.rawValue] = seconds / entries }
        // Offloading in place lets pages go and reads them again each step.
        if let perByte = times?.seconds(OperationTimes.pageReadSignature), let bytes = figures.pageReads[section], bytes > 0 {
            byClass["page_reads"] = Double(bytes) * perByte / entries
        }
        // Large blocks in fresh pages: faulted and zeroed as they are written, unmapped when freed.
        if let perByte = times?.seconds(OperationTimes.freshPageSignature), let bytes = figures.freshPageBytes[section], bytes > 0 {
            byClass["fresh_pages"] = Double(bytes) * perByte / entries
        }
        // Copies made ahead: the section's compute-thread timeline replayed against the copy
        // engine tells what the computation hides; without one, the best case (all it can).
        let computing = byClass.values.reduce(0, +)
        var copies = waited + max(0, ahead - computing)
        if ahead > 0, let times, let timeline = figures.timelines[section] {
            copies = TimelineEvent.copyStall(of: timeline, aheadBytes: figures.aheadBytes, times: times, bandwidths: bandwidths) / entries
        }
        if copies > 0 { byClass[OpClass.copy.rawValue, default: 0] += copies }
        self.init(baseResidentBytes: baseResidentBytes, rehearsedPeakBytes: figures.processPeakBytes,
                  mappedPeakBytes: figures.mappedPeakBytes, outputBytes: outputBytes,
                  devicePeakBytes: figures.devicePeakBytes, stepSeconds: times == nil ? nil : byClass.values.reduce(0, +),
                  stepSecondsByClass: byClass)
        peakSection = figures.peakSection
    }

    /// This prediction for a run that starts from a process of `resident` bytes where that is
    /// more than the rehearsal started from (later rehearsals leave the allocator's heap larger).
    public func startingFrom(_ resident: Int) -> RunPrediction {
        var rebased = self
        rebased.baseResidentBytes = max(baseResidentBytes, resident)
        return rebased
    }

    /// The prediction of a batch run in chunks from its rehearsed chunk: a step of the whole
    /// batch takes a chunk's step `chunks` times (the batch over the images per chunk; a
    /// step's operations scale with the images they compute).
    public func steppingChunks(_ chunks: Double) -> RunPrediction {
        var chunked = self
        chunked.stepSeconds = stepSeconds.map { $0 * chunks }
        chunked.stepSecondsByClass = stepSecondsByClass.mapValues { $0 * chunks }
        return chunked
    }

    /// The bytes a host allocator may hold under `budget` with this run: its rehearsed peak
    /// plus all the budget the predicted process peak leaves (mapped pages and allocations peak
    /// at different moments: the budget less the mapped peak starved a run whose converted
    /// weights peak when the mapped ones are gone).
    public func hostAllocatorLimit(within budget: Int) -> Int {
        (devicePeakBytes["cpu"] ?? 0) + max(0, budget - processPeakResidentBytes)
    }
}

extension OperationTimes {
    /// How the table's entries are measured; a table measured another way is not reused
    /// (2: operations timed with their weights' address translations evicted, fresh pages and
    /// page reads as medians).
    public static let calibrationVersion = 2

    /// The table kept for this machine in `folder` (created when missing): one JSON object of
    /// seconds by operation signature, per CPU model and thread count, so that a table measured
    /// on one machine is never used on another.
    public static func cacheFile(in folder: String) -> String {
        let name = "\(CPUModel.name)-\(Parallel.threadCount)t".map { $0.isLetter || $0.isNumber ? $0 : "-" }
        return folder + "/operation-times-v\(calibrationVersion)-" + String(name) + ".json"
    }

    /// The table in `path`, or an empty one when there is none or it cannot be read (it is a
    /// cache: a damaged one is measured again).
    public static func load(from path: String) -> OperationTimes {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Double] else { return OperationTimes() }
        return OperationTimes(object)
    }

    /// Writes the table to `path` atomically (a temporary file renamed over it).
    public func save(to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// The CPU's model name (`/proc/cpuinfo`), to key calibration tables by machine.
public enum CPUModel {
    public static let name: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown-cpu" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let value = line.split(separator: ":", maxSplits: 1).last { return value.trimmingCharacters(in: .whitespaces) }
        }
        return "unknown-cpu"
    }()
}
