import Foundation
import NN
import Schedulers
import Tensor
import TestSupport
import XCTest

/// `FlowMatchEulerDiscreteScheduler` against Diffusers 0.42.1 (Fixtures/schedulers/flow-match,
/// written by tools/reference/make_flow_match_fixtures.py). Every comparison is bit for bit:
/// the schedules are float32/float64 arithmetic in Diffusers' order with correctly rounded
/// operations only (no library exp/log on the float32 path: e^μ is one float64 `exp` rounded
/// once), and the steps and `scale_noise` are one or two float32 (or bf16) roundings per value.
final class FlowMatchEulerDiscreteSchedulerTests: XCTestCase {
    static let folder = "flow-match"

    private func expected() throws -> (json: JSONValue, tensors: SafeTensorsFile) {
        let data = try Data(contentsOf: SchedulerFixtures.root.appendingPathComponent("\(Self.folder)/expected.json"))
        return (try JSONParser.parse(Array(data)), try SafeTensorsFile(path: SchedulerFixtures.path("\(Self.folder)/expected.safetensors")))
    }

    private func config(_ name: String) throws -> SchedulerConfig {
        try SchedulerConfig(contentsOf: SchedulerFixtures.path("\(Self.folder)/\(name)/scheduler_config.json"))
    }

    private func scheduler(_ name: String) throws -> FlowMatchEulerDiscreteScheduler {
        try FlowMatchEulerDiscreteScheduler(config: config(name))
    }

    private func mu(_ json: JSONValue, _ size: String) throws -> Double { try XCTUnwrap(json["mu"]?[size]?.doubleValue) }

    private func assertExact(_ actual: [Float], _ expected: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        assertBitExact(actual, try expected.floats(), label, file: file, line: line)
    }

    /// The sigmas and timesteps of every case (FLUX.1-dev at four image sizes and five step
    /// counts with the pipeline's sigmas and mu, its float64 default layout, schnell, and the
    /// class's other options), bit for bit.
    func testSchedulesEqualDiffusers() throws {
        let (json, tensors) = try expected()
        let cases = try XCTUnwrap(json["cases"]?.arrayValue)
        XCTAssertEqual(cases.count, 40)
        for entry in cases {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let config: SchedulerConfig
            if let file = entry["config"]?.stringValue {
                config = try self.config(file)
            } else {
                config = try SchedulerConfig(json: try XCTUnwrap(entry["config"]), path: name, kind: .flowMatchEulerDiscrete)
            }
            var scheduler = try FlowMatchEulerDiscreteScheduler(config: config)
            func doubles(_ key: String) -> [Double]? { entry[key]?.arrayValue?.compactMap(\.doubleValue) }
            try scheduler.setTimesteps(entry["steps"]?.intValue, sigmas: doubles("sigmas"), mu: entry["mu"]?.doubleValue,
                                       timesteps: doubles("timesteps"))
            try assertExact(scheduler.sigmas, tensors.tensor(named: "\(name).sigmas"), "\(name) sigmas")
            try assertExact(scheduler.timesteps.map(\.value), tensors.tensor(named: "\(name).timesteps"), "\(name) timesteps")
            XCTAssertEqual(scheduler.numInferenceSteps, scheduler.timesteps.count, name)
            XCTAssertTrue(scheduler.timesteps.allSatisfy { $0.dtype == .f32 }, name)
        }
    }

    /// FluxPipeline's inputs: its sigmas `np.linspace(1, 1/N, N)` and `calculate_shift`'s mu,
    /// equal to the float64 values the fixture recorded.
    func testPipelineInputsEqualDiffusers() throws {
        let (json, _) = try expected()
        for entry in try XCTUnwrap(json["cases"]?.arrayValue) {
            guard let name = entry["name"]?.stringValue, name.hasPrefix("dev-") && !name.hasPrefix("dev-default") || name.hasPrefix("schnell-"),
                  let sigmas = entry["sigmas"]?.arrayValue?.compactMap(\.doubleValue) else { continue }
            XCTAssertEqual(FlowMatchEulerDiscreteScheduler.linearSigmas(count: sigmas.count), sigmas, name)
        }
        let dev = try scheduler("flux-dev")
        for (size, tokens) in [("256x256", 256), ("512x512", 1024), ("1024x1024", 4096), ("768x1360", 48 * 85)] {
            XCTAssertEqual(try dev.calculateShift(imageSequenceLength: tokens), try mu(json, size), size)
        }
        XCTAssertEqual(try mu(json, "1024x1024"), 1.15, accuracy: 1e-12)
        XCTAssertEqual(try mu(json, "512x512"), 0.63, accuracy: 1e-12)
    }

    /// Schnell's four steps, and the dev schedule's documented start (reference notes section 8).
    func testKnownSchedules() throws {
        var schnell = try scheduler("flux-schnell")
        try schnell.setTimesteps(nil, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: 4), mu: 1.15)
        XCTAssertEqual(schnell.sigmas, [1, 0.75, 0.5, 0.25, 0])
        XCTAssertEqual(schnell.timesteps.map(\.value), [1000, 750, 500, 250])
        try schnell.setTimesteps(4)   // without dynamic shifting no mu is needed
        XCTAssertEqual(schnell.timesteps.count, 4)
        var dev = try scheduler("flux-dev")
        try dev.setTimesteps(nil, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: 28), mu: dev.calculateShift(imageSequenceLength: 4096))
        // The notes print 7 digits.
        for (value, documented) in zip(dev.sigmas.prefix(4) + dev.sigmas.suffix(3), [1.0, 0.9884086, 0.9762225, 0.9633944, 0.1954546, 0.1047209, 0] as [Float]) {
            XCTAssertEqual(value, documented, accuracy: 6e-8)
        }
        XCTAssertEqual(dev.initNoiseSigma, 1)
        XCTAssertEqual(dev.order, 1)
    }

    /// The step runs: FLUX.1-dev's 4 steps at 1024² in f32 and bf16 (the product with v in
    /// bf16, the sum in f32, the result bf16), and stochastic sampling from a seeded generator.
    func testStepsEqualDiffusers() throws {
        let (json, tensors) = try expected()
        for run in ["step-f32", "step-bf16", "step-stochastic"] {
            let info = try XCTUnwrap(json["runs"]?[run])
            var config = try self.config("flux-dev")
            config.stochasticSampling = info["stochastic_sampling"]?.boolValue ?? false
            var scheduler = try FlowMatchEulerDiscreteScheduler(config: config)
            let steps = try XCTUnwrap(info["steps"]?.intValue)
            try scheduler.setTimesteps(nil, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: steps),
                                       mu: mu(json, XCTUnwrap(info["mu_size"]?.stringValue)))
            scheduler.setBeginIndex(0)
            if let seed = info["generator_seed"]?.intValue { scheduler.generator = TorchGenerator(seed: seed) }
            var x = try tensors.tensor(named: "\(run).sample0")
            for (i, t) in scheduler.timesteps.enumerated() {
                let v = try tensors.tensor(named: "\(run).model_output.\(i)")
                x = try scheduler.step(modelOutput: v, timestep: t, sample: x).prevSample
                let reference = try tensors.tensor(named: "\(run).prev_sample.\(i)")
                XCTAssertEqual(x.dtype, reference.dtype, run)
                XCTAssertEqual(x.shape, reference.shape, run)
                try assertExact(x.floats(), reference, "\(run) step \(i)")
            }
            XCTAssertEqual(scheduler.stepIndex, steps)
            XCTAssertThrowsError(try scheduler.step(modelOutput: x, timestep: scheduler.timesteps[0], sample: x), "past the end")
        }
    }

    /// Image-to-image noising as FluxImg2ImgPipeline: strength 0.6 of 28 steps starts at index
    /// 11 (`int(N − N·s)`) with the begin index set; and without a begin index, each batch
    /// item's σ from its own timestep.
    func testScaleNoiseEqualsDiffusers() throws {
        let (json, tensors) = try expected()
        let mu = try self.mu(json, "1024x1024")
        for run in ["scale-noise-img2img-float32", "scale-noise-img2img-bfloat16"] {
            let info = try XCTUnwrap(json["runs"]?[run])
            var scheduler = try scheduler("flux-dev")
            try scheduler.setTimesteps(nil, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: 28), mu: mu)
            let start = try XCTUnwrap(info["t_start"]?.intValue)
            XCTAssertEqual(start, Int(28 - 28 * 0.6))
            scheduler.setBeginIndex(start)
            let t = scheduler.timesteps[start]
            let out = try scheduler.scaleNoise(tensors.tensor(named: "\(run).x0"), timesteps: [t, t], noise: tensors.tensor(named: "\(run).noise"))
            let reference = try tensors.tensor(named: "\(run).out")
            XCTAssertEqual(out.dtype, reference.dtype)
            try assertExact(out.floats(), reference, run)
            // The protocol's addNoise is the same forward process.
            let added = try scheduler.addNoise(original: tensors.tensor(named: "\(run).x0"), noise: tensors.tensor(named: "\(run).noise"), timestep: t)
            XCTAssertEqual(try added.floats(), try out.floats())
        }
        var scheduler = try scheduler("flux-dev")
        try scheduler.setTimesteps(nil, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: 28), mu: mu)
        let lookup = try scheduler.scaleNoise(tensors.tensor(named: "scale-noise-lookup.x0"),
                                              timesteps: [scheduler.timesteps[3], scheduler.timesteps[10]],
                                              noise: tensors.tensor(named: "scale-noise-lookup.noise"))
        try assertExact(lookup.floats(), tensors.tensor(named: "scale-noise-lookup.out"), "scale-noise-lookup")
    }

    /// The class loads by its Diffusers name from a pipeline's scheduler config, and runs as
    /// any `Scheduler` (unit noise, unscaled input, a step per timestep).
    func testFactoryAndProtocol() throws {
        let config = try self.config("flux-dev")
        XCTAssertEqual(config.kind, .flowMatchEulerDiscrete)
        XCTAssertTrue(config.useDynamicShifting)
        XCTAssertEqual(config.shift, 3)
        XCTAssertEqual(SchedulerKind(name: "flow-match"), .flowMatchEulerDiscrete)
        XCTAssertEqual(SchedulerKind(name: "FlowMatchEulerDiscreteScheduler"), .flowMatchEulerDiscrete)
        XCTAssertFalse(SchedulerKind.flowMatchEulerDiscrete.hasNoiseSchedule)
        var generic = try config.makeScheduler()
        XCTAssertTrue(generic is FlowMatchEulerDiscreteScheduler)
        XCTAssertThrowsError(try generic.setTimesteps(4)) { error in
            XCTAssertTrue("\(error)".contains("mu must be passed"), "\(error)")
        }
        var schnell = try self.config("flux-schnell").makeScheduler()
        try schnell.setTimesteps(4)
        var x = try Tensor([Float](repeating: 0.5, count: 8), shape: [1, 2, 4])
        XCTAssertEqual(try schnell.scaleModelInput(x, timestep: schnell.timesteps[0]).floats(), try x.floats())
        for t in schnell.timesteps {
            x = try schnell.step(modelOutput: Tensor([Float](repeating: 1, count: 8), shape: [1, 2, 4]), timestep: t, sample: x).prevSample
        }
        // x + (0 − 1)·1 over the whole schedule
        XCTAssertEqual(try x.floats(), [Float](repeating: -0.5, count: 8))
        // Reading another class's config as flow matching keeps only what it states.
        let pndm = try SchedulerConfig(contentsOf: SchedulerFixtures.path("sd15_scheduler_config.json"), kind: .flowMatchEulerDiscrete)
        XCTAssertEqual(pndm.shift, 1)
        XCTAssertNoThrow(try pndm.makeScheduler())
        XCTAssertEqual(config.converted(to: .eulerDiscrete).converted(to: .flowMatchEulerDiscrete).shift, 3)
    }

    /// A shift set later applies to the next schedule (`set_shift`), over the training range of
    /// the constructor's shift (1 here: σ from 1 to 0.001, shifted once; a config shift of 3
    /// would have shifted that range too, as Diffusers does).
    func testSetShift() throws {
        var scheduler = try self.scheduler("flux-schnell")
        try scheduler.setShift(3)
        XCTAssertEqual(scheduler.shift, 3)
        try scheduler.setTimesteps(10)
        let (start, stop) = (1000.0, Double(Float(1) / 1000) * 1000)
        let expected = (0..<10).map { i -> Float in
            let t = i == 9 ? stop : Double(i) * ((stop - start) / 9) + start
            let s = t / 1000
            return Float(3 * s / (1 + 2 * s))
        }
        XCTAssertEqual(Array(scheduler.sigmas.dropLast()), expected)
        var configured = try config("flux-schnell")
        configured.shift = 3
        var fromConfig = try FlowMatchEulerDiscreteScheduler(config: configured)
        try fromConfig.setTimesteps(10)
        XCTAssertNotEqual(fromConfig.sigmas, scheduler.sigmas, "the constructor's shift also moves the training range")
        XCTAssertThrowsError(try scheduler.setShift(0))
    }

    // MARK: - Errors

    private func assertError(_ mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue(error is SchedulerError, "\(error)", file: file, line: line)
            for mention in mentions {
                XCTAssertTrue("\(error)".contains(mention), "\(error) does not mention \(mention)", file: file, line: line)
            }
        }
    }

    private func parsed(_ fields: String) throws -> SchedulerConfig {
        let json = try JSONParser.parse(Array("{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", \(fields)}".utf8))
        return try SchedulerConfig(json: json, path: "flow.json")
    }

    func testBadConfigsAreRefused() throws {
        assertError(["time_shift_type", "'cubic'", "'exponential'", "'linear'"]) { try self.parsed("\"time_shift_type\": \"cubic\"") }
        assertError(["shift", "0"]) { try self.parsed("\"shift\": 0") }
        assertError(["shift_terminal", "1"]) { try self.parsed("\"shift_terminal\": 1.0") }
        assertError(["base_image_seq_len"]) { try self.parsed("\"base_image_seq_len\": 0") }
        assertError(["use_beta_sigmas"]) { try FlowMatchEulerDiscreteScheduler(config: self.parsed("\"use_beta_sigmas\": true")) }
        assertError(["only one of"]) {
            try FlowMatchEulerDiscreteScheduler(config: self.parsed("\"use_karras_sigmas\": true, \"use_exponential_sigmas\": true"))
        }
        var programmatic = SchedulerConfig(kind: .flowMatchEulerDiscrete)
        programmatic.shift = -2
        assertError(["shift"]) { try FlowMatchEulerDiscreteScheduler(config: programmatic) }
        programmatic.shift = 1
        programmatic.shiftTerminal = 1.5
        assertError(["shift_terminal"]) { try FlowMatchEulerDiscreteScheduler(config: programmatic) }
        let equal = try parsed("\"base_image_seq_len\": 64, \"max_image_seq_len\": 64")
        assertError(["divide by zero"]) { try FlowMatchEulerDiscreteScheduler(config: equal).calculateShift(imageSequenceLength: 4096) }
        // A null stated value takes the default, as Diffusers' constructor does.
        XCTAssertNil(try parsed("\"shift_terminal\": null").shiftTerminal)
    }

    func testBadCallsAreRefused() throws {
        var dev = try scheduler("flux-dev")
        assertError(["mu must be passed"]) { try dev.setTimesteps(nil, sigmas: [1, 0.5]) }
        assertError(["mu must be finite"]) { try dev.setTimesteps(nil, sigmas: [1, 0.5], mu: .nan) }
        assertError(["3 sigmas for 2 steps"]) { try dev.setTimesteps(2, sigmas: [1, 0.6, 0.3], mu: 1) }
        assertError(["2 sigmas and 3 timesteps"]) { try dev.setTimesteps(nil, sigmas: [1, 0.5], mu: 1, timesteps: [1000, 500, 1]) }
        assertError(["give a step count"]) { try dev.setTimesteps(nil, mu: 1) }
        assertError(["at least 1"]) { try dev.setTimesteps(0, mu: 1) }
        assertError(["at least 1"]) { try dev.setTimesteps(nil, sigmas: [], mu: 1) }
        assertError(["finite"]) { try dev.setTimesteps(nil, sigmas: [1, .infinity], mu: 1) }
        var terminal = try config("flux-schnell")
        terminal.shiftTerminal = 0.1
        var stretched = try FlowMatchEulerDiscreteScheduler(config: terminal)
        assertError(["shift_terminal", "last sigma is 1"]) { try stretched.setTimesteps(nil, sigmas: [1]) }
        var exponential = try config("flux-schnell")
        exponential.useExponentialSigmas = true
        var logSpaced = try FlowMatchEulerDiscreteScheduler(config: exponential)
        assertError(["positive first and last"]) { try logSpaced.setTimesteps(nil, sigmas: [1, 0.5, 0]) }

        try dev.setTimesteps(nil, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: 4), mu: 1.15)
        let x = try Tensor([Float](repeating: 0, count: 4), shape: [1, 4])
        assertError(["not the integer 1000"]) { try dev.step(modelOutput: x, timestep: .discrete(1000), sample: x) }
        assertError(["timestep 123.0 is not in the current schedule"]) { try dev.step(modelOutput: x, timestep: .continuous(123), sample: x) }
        assertError(["shape"]) { try dev.step(modelOutput: x, timestep: dev.timesteps[0], sample: Tensor.zeros([2, 4])) }
        assertError(["not in the current schedule"]) { try dev.scaleNoise(x, timesteps: [.continuous(5)], noise: x) }
        assertError(["3 timesteps for a batch of 1"]) { try dev.scaleNoise(x, timesteps: Array(dev.timesteps.prefix(3)), noise: x) }
        assertError(["shape"]) { try dev.scaleNoise(x, timesteps: [dev.timesteps[0]], noise: Tensor.zeros([4])) }
        assertError(["at least one timestep"]) { try dev.scaleNoise(x, timesteps: [], noise: x) }
        dev.setBeginIndex(9)
        assertError(["index 9"]) { try dev.scaleNoise(x, timesteps: [dev.timesteps[0]], noise: x) }
    }
}
