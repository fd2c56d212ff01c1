import Foundation

/// Where a copy is made: on the compute thread, which waits for it, or ahead of its use on a
/// background transfer queue (group offloading's prefetch), where it overlaps the computation.
public enum CopyQueue {
    /// Copies submitted ahead of their use: the rehearsal section they were submitted in (the
    /// step that asked for them, whenever the queue gets to them) and their place in its timeline.
    public struct Submission: Sendable {
        let section: String?
        let id: Int
        /// A submission from the calling (compute) thread, now.
        public init() {
            let rehearsal = MemoryRehearsal.current
            section = rehearsal?.currentSection
            id = rehearsal?.submittedAhead() ?? 0
        }
        /// The compute thread needs the submission's copies now (it waits for them to end).
        public func awaited() { if id != 0 { MemoryRehearsal.current?.awaitedAhead(id) } }
    }
}

/// What the compute thread did in a rehearsed section, in order: the step-time model replays it
/// against the copy engine to tell how much of the copies made ahead the computation hides.
public enum TimelineEvent: Sendable, Equatable {
    /// An operation by signature (`OperationTimes`).
    case operation(String)
    /// Bytes copied through a bandwidth-limited device's engine while the compute thread waits.
    case copy(bytes: Int, device: String)
    /// Copies handed to a transfer queue (their bytes: `Figures.aheadBytes[id]`).
    case submitAhead(id: Int)
    /// The compute thread waits for those copies to end.
    case awaitAhead(id: Int)
}

extension TimelineEvent {
    /// Seconds the copies in `timeline` hold the computation up: the operations run back to
    /// back on the compute thread; one copy engine per run works through the copies in the
    /// order they were booked (a copy ahead from its submission on, a waited one when asked),
    /// as the accelerator stand-ins' engines do; the compute thread stops where it waits for a
    /// copy. Submissions from before the timeline count as done.
    public static func copyStall(of timeline: [TimelineEvent], aheadBytes: [Int: [String: Int]], times: OperationTimes,
                                 bandwidths: [String: Double]) -> Double {
        func seconds(_ bytes: [String: Int]) -> Double {
            bytes.reduce(0.0) { $0 + Double($1.value) / max(bandwidths[$1.key] ?? .infinity, 1) }
        }
        var now = 0.0, computing = 0.0, engineFree = 0.0, ends: [Int: Double] = [:]
        for event in timeline {
            switch event {
            case .operation(let signature):
                let t = times.seconds(signature) ?? 0
                now += t
                computing += t
            case .copy(let bytes, let device):
                engineFree = max(now, engineFree) + seconds([device: bytes])
                now = engineFree
            case .submitAhead(let id):
                engineFree = max(now, engineFree) + seconds(aheadBytes[id] ?? [:])
                ends[id] = engineFree
            case .awaitAhead(let id):
                if let end = ends[id] { now = max(now, end) }
            }
        }
        return now - computing
    }
}
