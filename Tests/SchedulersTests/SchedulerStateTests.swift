import Foundation
import NN
import Schedulers
import Tensor
import XCTest

/// Run state: explicit, reset by `reset()` and `setTimesteps`, and carried by value.
final class SchedulerStateTests: XCTestCase {
    private func inputs(_ count: Int) throws -> (Tensor, [Tensor]) {
        var generator = TorchGenerator(seed: 5)
        let sample = try generator.randn([1, 4, 8, 8])
        return (sample, try (0..<count).map { _ in try generator.randn([1, 4, 8, 8]) })
    }

    private func run(_ scheduler: inout any Scheduler, _ sample: Tensor, _ outputs: [Tensor]) throws -> [[Float]] {
        var x = try sample.scaled(by: scheduler.initNoiseSigma)
        var trace: [[Float]] = []
        for (i, t) in scheduler.timesteps.enumerated() {
            _ = try scheduler.scaleModelInput(x, timestep: t)
            x = try scheduler.step(modelOutput: outputs[i % outputs.count], timestep: t, sample: x).prevSample
            trace.append(try x.floats())
        }
        return trace
    }

    func testResetReplaysARunAndCopiesContinueIndependently() throws {
        let (sample, outputs) = try inputs(8)
        for variant in ["pndm", "ddim", "euler", "euler_ancestral", "dpm_multistep"] {
            var scheduler = try SchedulerFixtures.config(variant).makeScheduler()
            try scheduler.setTimesteps(6)
            scheduler.generator = TorchGenerator(seed: 11)
            let first = try run(&scheduler, sample, outputs)
            scheduler.reset()
            scheduler.generator = TorchGenerator(seed: 11)
            XCTAssertEqual(try run(&scheduler, sample, outputs), first, "\(variant): reset")
            try scheduler.setTimesteps(6)
            scheduler.generator = TorchGenerator(seed: 11)
            XCTAssertEqual(try run(&scheduler, sample, outputs), first, "\(variant): setTimesteps")

            // A copy taken mid-run continues exactly like the original.
            try scheduler.setTimesteps(6)
            scheduler.generator = TorchGenerator(seed: 11)
            var x = try sample.scaled(by: scheduler.initNoiseSigma)
            for (i, t) in scheduler.timesteps.prefix(3).enumerated() {
                _ = try scheduler.scaleModelInput(x, timestep: t)
                x = try scheduler.step(modelOutput: outputs[i], timestep: t, sample: x).prevSample
            }
            var copy = scheduler
            for (i, t) in scheduler.timesteps.enumerated().dropFirst(3) {
                let a = try scheduler.step(modelOutput: outputs[i], timestep: t, sample: x).prevSample
                let b = try copy.step(modelOutput: outputs[i], timestep: t, sample: x).prevSample
                XCTAssertEqual(try a.floats(), try b.floats(), "\(variant): copy at step \(i)")
                XCTAssertEqual(try a.floats(), first[i], "\(variant): continued run at step \(i)")
                x = a
            }
        }
    }

    func testVisibleState() throws {
        let (sample, outputs) = try inputs(6)
        var pndm = try PNDMScheduler(config: try SchedulerFixtures.config("pndm"))
        try pndm.setTimesteps(4)
        XCTAssertEqual(pndm.timesteps, [751, 501, 501, 251, 1].map { .discrete($0) })
        XCTAssertEqual(pndm.prkTimesteps, [])
        var x = sample
        for (i, t) in pndm.timesteps.enumerated() {
            x = try pndm.step(modelOutput: outputs[i], timestep: t, sample: x).prevSample
            XCTAssertEqual(pndm.state.counter, i + 1)
        }
        XCTAssertEqual(pndm.state.storedModelOutputs, 4)
        pndm.reset()
        XCTAssertEqual(pndm.state.counter, 0)
        XCTAssertEqual(pndm.state.storedModelOutputs, 0)

        var dpm = try DPMSolverMultistepScheduler(config: try SchedulerFixtures.config("dpm_multistep"))
        try dpm.setTimesteps(5)
        XCTAssertNil(dpm.state.stepIndex)
        for (i, t) in dpm.timesteps.prefix(3).enumerated() {
            x = try dpm.step(modelOutput: outputs[i], timestep: t, sample: x).prevSample
        }
        XCTAssertEqual(dpm.state.stepIndex, 3)
        XCTAssertEqual(dpm.state.lowerOrderCount, 2)
        XCTAssertEqual(dpm.state.storedModelOutputs, 2)
        dpm.reset()
        XCTAssertNil(dpm.state.stepIndex)
        XCTAssertEqual(dpm.state.storedModelOutputs, 0)

        var euler = try EulerDiscreteScheduler(config: try SchedulerFixtures.config("euler"))
        try euler.setTimesteps(4)
        XCTAssertNil(euler.stepIndex)
        _ = try euler.scaleModelInput(sample, timestep: euler.timesteps[0])
        XCTAssertEqual(euler.stepIndex, 0)
        euler.setBeginIndex(2)
        euler.reset()
        _ = try euler.scaleModelInput(sample, timestep: euler.timesteps[0])
        XCTAssertEqual(euler.stepIndex, 2, "a begin index wins over the timestep's position")
    }

    /// The denoising loop of the protocol's documentation, end to end on every class: the
    /// sample stays finite and the schedule is consumed exactly.
    func testGenericLoopOverEveryClass() throws {
        let (sample, outputs) = try inputs(4)
        for kind in SchedulerKind.allCases {
            var config = try SchedulerConfig(contentsOf: SchedulerFixtures.path("sd15_scheduler_config.json"), kind: kind)
            config.predictionType = .epsilon
            var scheduler = try config.makeScheduler()
            try scheduler.setTimesteps(20)
            let trace = try run(&scheduler, sample, outputs)
            XCTAssertEqual(trace.count, scheduler.timesteps.count, "\(kind)")
            XCTAssertTrue(trace.allSatisfy { $0.allSatisfy(\.isFinite) }, "\(kind)")
        }
    }
}
