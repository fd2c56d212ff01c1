import Foundation

/// How oneDNN's OpenMP threads (libgomp) wait between parallel regions. libgomp's default is to
/// spin 300 000 times before sleeping; when another process keeps the cores busy, a thread
/// spinning at a region's end holds the core its team-mate needs, and every region costs a
/// scheduler time slice: the demo model's denoising step took 2.2 s instead of 0.02 s beside a
/// two-thread training job on the 2-core development machine. Spinning 1 000 times keeps that
/// case at 0.04 s and costs nothing measurable on an idle machine (demo step 0.013 s against
/// 0.012 s, SD 1.5-size step the same); never spinning (OMP_WAIT_POLICY=passive) doubles the
/// demo's idle step. libgomp reads its settings when it loads, before `main`, so `diffuse`
/// sets them and runs itself again once.
enum OpenMPWaitPolicy {
    /// The settings `diffuse` runs with unless the user chose their own.
    static let defaults = ["GOMP_SPINCOUNT": "1000"]

    /// Variables that mean the user decided how libgomp waits.
    static let userChoices = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"]

    /// Sets `defaults` and replaces the process with a fresh run of the same executable and
    /// arguments, unless the user set any of `userChoices` (or this is the second run). If the
    /// exec fails, returns and the run goes on with libgomp's own defaults.
    static func applyByRestarting() {
        #if os(Linux)
        let environment = ProcessInfo.processInfo.environment
        guard userChoices.allSatisfy({ environment[$0] == nil }) else { return }
        for (key, value) in defaults { setenv(key, value, 1) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #endif
    }
}
