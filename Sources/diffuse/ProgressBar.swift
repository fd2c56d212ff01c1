import Diffusers
import Foundation

/// Step progress: a redrawn bar with it/s and ETA when stderr is a terminal (drawn there); one
/// plain line per step on stdout otherwise (logs, pipes), so that stderr holds nothing but the
/// one error line of a run that fails.
final class ProgressBar {
    private let interactive = isatty(STDERR_FILENO) != 0
    private let started = Date()
    private var drawn = false

    init(total: Int) {}

    func update(_ event: StepEvent) {
        let elapsed = Date().timeIntervalSince(started)
        let rate = Double(event.step) / max(elapsed, 1e-9)
        let remaining = Double(event.totalSteps - event.step) / max(rate, 1e-9)
        if interactive {
            let width = 30
            let filled = width * event.step / max(event.totalSteps, 1)
            let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            write("\r[\(bar)] \(event.step)/\(event.totalSteps)  " + String(format: "%.2f", rate) + " it/s  ETA \(clock(remaining)) ")
            drawn = true
        } else {
            FileHandle.standardOutput.write(Data(("step \(event.step)/\(event.totalSteps)  " + String(format: "%.2f s  (%.2f it/s", event.seconds, rate)
                  + ", ETA \(clock(remaining)))\n").utf8))
        }
    }

    func finish() { if drawn { write("\n") } }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
