import Foundation
import NN
import Schedulers
import Tensor
import XCTest

/// Every scheduler variant of the fixtures against Diffusers: timesteps exactly, sigmas and
/// init_noise_sigma to float32 precision, a full run of `scaleModelInput`/`step` and `addNoise`
/// within 1e-5 relative L2.
final class SchedulerFixtureTests: XCTestCase {
    func testFixturesArePresent() {
        XCTAssertEqual(SchedulerFixtures.variants.count, 17, "variants: \(SchedulerFixtures.variants)")
    }

    func testTimestepsSigmasAndInitNoiseSigma() throws {
        for variant in SchedulerFixtures.variants {
            let reference = try SchedulerFixtures.reference(variant)
            let info = try SchedulerFixtures.info(variant)
            let config = try SchedulerFixtures.config(variant)
            let initSigmas = info["init_noise_sigma"]
            for n in [1, 4, 10, 25] {
                var scheduler = try config.makeScheduler()
                try scheduler.setTimesteps(n)
                let expected = try reference.tensor(named: "N\(n).timesteps")
                let label = "\(variant) N=\(n)"
                XCTAssertEqual(scheduler.timesteps.count, expected.count, "\(label): timestep count")
                if expected.dtype == .i64 {
                    XCTAssertEqual(scheduler.timesteps.map { $0.integerValue.map(Int64.init) }, try expected.int64s(), label)
                    XCTAssertTrue(scheduler.timesteps.allSatisfy { $0.dtype == .i64 }, label)
                } else {
                    assertBitExact(scheduler.timesteps.map(\.value), try expected.floats(), "\(label) timesteps")
                    XCTAssertTrue(scheduler.timesteps.allSatisfy { $0.dtype == .f32 }, label)
                }
                if reference.entry(named: "N\(n).sigmas") != nil {
                    let sigmas = try reference.tensor(named: "N\(n).sigmas").floats()
                    let ours = try XCTUnwrap(sigmasOf(scheduler), label)
                    XCTAssertEqual(ours.count, sigmas.count, "\(label): sigma count")
                    for (a, b) in zip(ours, sigmas) {
                        XCTAssertEqual(a, b, accuracy: max(abs(b) * 2e-6, 1e-9), "\(label): sigma")
                    }
                }
                if let sigma = initSigmas?["N\(n)"]?.doubleValue {
                    XCTAssertEqual(Double(scheduler.initNoiseSigma), sigma, accuracy: abs(sigma) * 2e-6, "\(label): init_noise_sigma")
                }
            }
        }
    }

    func testStepRunsMatchDiffusers() throws {
        for variant in SchedulerFixtures.variants {
            let reference = try SchedulerFixtures.reference(variant)
            var scheduler = try SchedulerFixtures.config(variant).makeScheduler()
            try scheduler.setTimesteps(4)
            var x = try reference.tensor(named: "step.sample0")
            for (i, t) in scheduler.timesteps.enumerated() {
                let output = try reference.tensor(named: "step.model_output.\(i)")
                let scaled = try scheduler.scaleModelInput(x, timestep: t)
                try assertClose(scaled, try reference.tensor(named: "step.scaled.\(i)"), "\(variant) scaled \(i)")
                let noise = reference.entry(named: "step.noise.\(i)") == nil ? nil : try reference.tensor(named: "step.noise.\(i)")
                let result = try scheduler.step(modelOutput: output, timestep: t, sample: x, noise: noise)
                try assertClose(result.prevSample, try reference.tensor(named: "step.prev_sample.\(i)"), "\(variant) prev_sample \(i)")
                if reference.entry(named: "step.pred_original_sample.\(i)") != nil {
                    let predicted = try XCTUnwrap(result.predOriginalSample, "\(variant) pred_original_sample \(i)")
                    try assertClose(predicted, try reference.tensor(named: "step.pred_original_sample.\(i)"),
                                    "\(variant) pred_original_sample \(i)")
                }
                // Continue from Diffusers' sample so that each step is checked on its own inputs.
                x = try reference.tensor(named: "step.prev_sample.\(i)")
            }
        }
        ParityLog.report("step")
    }

    /// Euler ancestral with its noise drawn from `TorchGenerator(seed: 1234)`: the draws equal
    /// the noise Diffusers' step took from `torch.Generator().manual_seed(1234)`, bit for bit.
    func testAncestralNoiseFromTheGenerator() throws {
        for variant in SchedulerFixtures.variants where variant.hasPrefix("euler_ancestral") {
            let reference = try SchedulerFixtures.reference(variant)
            var scheduler = try SchedulerFixtures.config(variant).makeScheduler()
            try scheduler.setTimesteps(4)
            scheduler.generator = TorchGenerator(seed: 1234)
            var x = try reference.tensor(named: "step.sample0")
            for (i, t) in scheduler.timesteps.enumerated() {
                var expectedDraw = scheduler.generator
                let drawn = expectedDraw.normalFloats(count: x.count)
                assertBitExact(drawn, try reference.tensor(named: "step.noise.\(i)").floats(), "\(variant) noise \(i)")
                x = try scheduler.scaleModelInput(x, timestep: t) // sets the step index as the pipeline does
                x = try reference.tensor(named: i == 0 ? "step.sample0" : "step.prev_sample.\(i - 1)")
                let result = try scheduler.step(modelOutput: try reference.tensor(named: "step.model_output.\(i)"),
                                                timestep: t, sample: x)
                try assertClose(result.prevSample, try reference.tensor(named: "step.prev_sample.\(i)"), "\(variant) prev_sample \(i)")
                x = result.prevSample
            }
        }
    }

    func testAddNoiseMatchesDiffusers() throws {
        for variant in SchedulerFixtures.variants {
            let reference = try SchedulerFixtures.reference(variant)
            var scheduler = try SchedulerFixtures.config(variant).makeScheduler()
            try scheduler.setTimesteps(10)
            let stamps = try reference.tensor(named: "add_noise.timesteps")
            let timesteps: [Timestep] = stamps.dtype == .i64
                ? try stamps.int64s().map { .discrete(Int($0)) }
                : try stamps.floats().map { .continuous($0) }
            XCTAssertEqual(timesteps, [scheduler.timesteps[2], scheduler.timesteps[7]], variant)
            let noisy = try scheduler.addNoise(original: try reference.tensor(named: "add_noise.original"),
                                               noise: try reference.tensor(named: "add_noise.noise"), timesteps: timesteps)
            try assertClose(noisy, try reference.tensor(named: "add_noise.out"), "\(variant) add_noise")
        }
        ParityLog.report("add_noise")
    }

    func testTrainingScheduleOfStableDiffusion() throws {
        let common = try SafeTensorsFile(path: SchedulerFixtures.path("common.safetensors"))
        let config = try SchedulerConfig(contentsOf: SchedulerFixtures.path("sd15_scheduler_config.json"))
        let schedule = try NoiseSchedule(config: config, terminalFloor: false)
        assertBitExact(schedule.betas, try common.tensor(named: "betas").floats(), "betas")
        assertBitExact(schedule.alphasCumprod, try common.tensor(named: "alphas_cumprod").floats(), "alphas_cumprod")
    }
}
