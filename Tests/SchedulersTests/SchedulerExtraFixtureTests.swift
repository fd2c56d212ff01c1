import Foundation
import NN
import Schedulers
import Tensor
import XCTest

/// The cases of tools/reference/make_scheduler_extra_fixtures.py: PNDM's Runge–Kutta
/// warm-up, DDIM with eta/clipping/thresholding/zero SNR, Euler's Karras/exponential/log-linear
/// sigmas, churn and continuous timesteps, every DPM-Solver algorithm, order and solver type,
/// and image-to-image runs from a begin index. Stochastic steps draw from
/// `TorchGenerator(seed: 777)` exactly as Diffusers drew from `torch.Generator().manual_seed(777)`.
final class SchedulerExtraFixtureTests: XCTestCase {
    private static let folder = SchedulerFixtures.root.appendingPathComponent("extra")

    private var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Self.folder.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent("\($0)/case.json").path) }.sorted()
    }

    /// Zero-terminal-SNR schedules are ill-conditioned in float32: PyTorch's float32 `sqrt`
    /// (MKL's, not correctly rounded) and IEEE `sqrt` differ in the last place, σ_max =
    /// √(2²⁴ − 1) is a near-tie (PyTorch 4096, IEEE 4095.9998), small sigmas come from 1 − ᾱ
    /// with ᾱ ≈ 1, and the first Euler step from σ ≈ 4096 cancels about ten bits. Agreement
    /// there is 1e-5 (sigmas) and 1e-4 (steps); everything else meets 3e-6 and 1e-5.
    private func tolerances(_ name: String) -> (sigma: Float, step: Double) {
        name.contains("zero-snr") ? (1e-5, 1e-4) : (3e-6, 1e-5)
    }

    func testCaseCount() {
        XCTAssertEqual(cases.count, 45)
    }

    func testTimestepsAndSigmas() throws {
        for name in cases {
            let (info, reference, config) = try load(name)
            for n in [1, 2, 3, 7, 15, 50] {
                var scheduler = try config.makeScheduler()
                if info["errors"]?["N\(n)"] != nil {
                    XCTAssertThrowsError(try scheduler.setTimesteps(n), "\(name) N=\(n) fails in Diffusers too")
                    continue
                }
                try scheduler.setTimesteps(n)
                let expected = try reference.tensor(named: "N\(n).timesteps")
                let label = "\(name) N=\(n)"
                if expected.dtype == .i64 {
                    XCTAssertEqual(scheduler.timesteps.map { $0.integerValue.map(Int64.init) }, try expected.int64s(), label)
                } else {
                    let ours = scheduler.timesteps.map(\.value), theirs = try expected.floats()
                    XCTAssertEqual(ours.count, theirs.count, label)
                    // Exact for interpolated schedules; Karras/exponential timesteps come from
                    // NumPy's float32 log and agree to float32 rounding.
                    for (a, b) in zip(ours, theirs) { XCTAssertEqual(a, b, accuracy: max(abs(b) * 3e-6, 2e-6), label) }
                }
                if reference.entry(named: "N\(n).sigmas") != nil {
                    let theirs = try reference.tensor(named: "N\(n).sigmas").floats()
                    let ours = try XCTUnwrap(sigmasOf(scheduler), label)
                    XCTAssertEqual(ours.count, theirs.count, "\(label) sigma count")
                    let tolerance = tolerances(name).sigma
                    for (a, b) in zip(ours, theirs) { XCTAssertEqual(a, b, accuracy: max(abs(b) * tolerance, 1e-9), "\(label) sigma") }
                }
            }
        }
    }

    func testRuns() throws {
        for name in cases {
            let (info, reference, config) = try load(name)
            var scheduler = try configure(try config.makeScheduler(), info["step_kwargs"])
            let runSteps = try XCTUnwrap(info["run_steps"]?.intValue, name)
            try scheduler.setTimesteps(runSteps)
            scheduler.generator = TorchGenerator(seed: 777, normalKernel: .vectorized)
            var timesteps = scheduler.timesteps
            var x = try reference.tensor(named: "run.sample0")
            if let begin = info["begin_index"]?.intValue {
                // Diffusers' img2img: strength 0.6 of 10 steps starts at index 4, 0.7 at 3.
                let strength = Double(runSteps - begin) / Double(runSteps)
                timesteps = try scheduler.imageToImageTimesteps(steps: runSteps, strength: strength)
                XCTAssertEqual(timesteps, Array(scheduler.timesteps.dropFirst(begin)), name)
                let noisy = try scheduler.addNoise(original: try reference.tensor(named: "add_noise.original"),
                                                   noise: try reference.tensor(named: "add_noise.noise"), timestep: timesteps[0])
                try assertClose(noisy, try reference.tensor(named: "add_noise.out"), "\(name) add_noise")
            }
            let expectedTimesteps = info["run_timesteps"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            XCTAssertEqual(timesteps.map { Double($0.value) }.count, expectedTimesteps.count, name)
            for (i, t) in timesteps.enumerated() {
                let scaled = try scheduler.scaleModelInput(x, timestep: t)
                try assertClose(scaled, try reference.tensor(named: "run.scaled.\(i)"), "\(name) scaled \(i)")
                let result = try scheduler.step(modelOutput: try reference.tensor(named: "run.model_output.\(i)"),
                                                timestep: t, sample: x)
                try assertClose(result.prevSample, try reference.tensor(named: "run.prev_sample.\(i)"),
                                tolerance: tolerances(name).step, "\(name) prev_sample \(i)")
                x = try reference.tensor(named: "run.prev_sample.\(i)")
            }
        }
        ParityLog.report("extra")
    }

    private func load(_ name: String) throws -> (JSONValue, SafeTensorsFile, SchedulerConfig) {
        let base = Self.folder.appendingPathComponent(name)
        let info = try JSONParser.parse(Array(try Data(contentsOf: base.appendingPathComponent("case.json"))), allowNonFinite: true)
        let reference = try SafeTensorsFile(path: base.appendingPathComponent("reference.safetensors").path)
        let config = try SchedulerConfig(contentsOf: base.appendingPathComponent("scheduler_config.json").path)
        return (info, reference, config)
    }

    /// Applies Diffusers' `step(...)` keyword arguments of a case.
    private func configure(_ scheduler: any Scheduler, _ kwargs: JSONValue?) throws -> any Scheduler {
        guard let kwargs, let members = kwargs.objectMembers, !members.isEmpty else { return scheduler }
        if var ddim = scheduler as? DDIMScheduler {
            ddim.eta = kwargs["eta"]?.doubleValue ?? 0
            ddim.useClippedModelOutput = kwargs["use_clipped_model_output"]?.boolValue ?? false
            return ddim
        }
        if var euler = scheduler as? EulerDiscreteScheduler {
            euler.churn = .init(churn: kwargs["s_churn"]?.doubleValue ?? 0, tMin: kwargs["s_tmin"]?.doubleValue ?? 0,
                                tMax: kwargs["s_tmax"]?.doubleValue ?? .infinity, noise: kwargs["s_noise"]?.doubleValue ?? 1)
            return euler
        }
        XCTFail("step arguments \(members.map(\.key)) for \(type(of: scheduler))")
        return scheduler
    }
}
