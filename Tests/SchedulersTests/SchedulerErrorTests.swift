import Foundation
import NN
import Schedulers
import Tensor
import XCTest

/// Bad configurations and bad calls: each a typed error naming the field or value.
final class SchedulerErrorTests: XCTestCase {
    private func config(_ text: String, kind: SchedulerKind? = nil) throws -> SchedulerConfig {
        try SchedulerConfig(json: try JSONParser.parse(Array(text.utf8), allowNonFinite: true), path: "test.json", kind: kind)
    }

    /// Asserts that `body` throws a `SchedulerError` accepted by `matches`, whose message
    /// mentions `mention`.
    private func assertSchedulerError<T>(_ body: @autoclosure () throws -> T, mentions mention: String,
                                         file: StaticString = #filePath, line: UInt = #line,
                                         _ matches: (SchedulerError) -> Bool) {
        do {
            _ = try body()
            XCTFail("nothing thrown", file: file, line: line)
        } catch let error as SchedulerError {
            XCTAssertTrue(matches(error), "unexpected \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(mention), "'\(error)' does not mention \(mention)", file: file, line: line)
        } catch {
            XCTFail("expected a SchedulerError, got \(error)", file: file, line: line)
        }
    }

    func testUnknownAndMissingClass() {
        assertSchedulerError(try config(#"{"_class_name": "LMSDiscreteScheduler"}"#), mentions: "LMSDiscreteScheduler") {
            $0 == .unknownClass(name: "LMSDiscreteScheduler", path: "test.json")
        }
        assertSchedulerError(try config(#"{"num_train_timesteps": 1000}"#), mentions: "_class_name") {
            $0 == .missingClassName(path: "test.json")
        }
        // An explicit class needs no _class_name.
        XCTAssertEqual(try config(#"{"num_train_timesteps": 10}"#, kind: .ddim).numTrainTimesteps, 10)
    }

    func testUnknownEnumValues() {
        for (field, value) in [("timestep_spacing", "quadratic"), ("beta_schedule", "sigmoid"),
                               ("prediction_type", "noise"), ("algorithm_type", "unipc"), ("solver_type", "rk4"),
                               ("final_sigmas_type", "one"), ("interpolation_type", "cubic"), ("timestep_type", "mixed"),
                               ("variance_type", "fixed_small"), ("time_shift_type", "quadratic")] {
            assertSchedulerError(try config(#"{"_class_name": "EulerDiscreteScheduler", "\#(field)": "\#(value)"}"#),
                                 mentions: field) {
                if case .invalidValue(let f, let v, _, _) = $0 { return f == field && v.contains(value) }
                return false
            }
        }
    }

    func testOutOfRangeNumbers() {
        for (field, value) in [("num_train_timesteps", "0"), ("solver_order", "4"), ("steps_offset", "-1"),
                               ("beta_end", "1.5"), ("beta_start", "-0.1"), ("flow_shift", "0"), ("sigma_min", "-1"),
                               ("dynamic_thresholding_ratio", "2"), ("sample_max_value", "0")] {
            assertSchedulerError(try config(#"{"_class_name": "DPMSolverMultistepScheduler", "\#(field)": \#(value)}"#),
                                 mentions: field) {
                if case .invalidValue(let f, _, _, _) = $0 { return f == field }
                return false
            }
        }
    }

    func testWrongJSONTypesNameTheKey() {
        XCTAssertThrowsError(try config(#"{"_class_name": "DDIMScheduler", "num_train_timesteps": "1000"}"#)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .configKeyType(path: "test.json", key: "num_train_timesteps", expected: "an integer", found: "a string"))
        }
        XCTAssertThrowsError(try config(#"{"_class_name": "DDIMScheduler", "clip_sample": 1}"#)) { error in
            XCTAssertTrue("\(error)".contains("clip_sample"), "\(error)")
        }
        XCTAssertThrowsError(try config(#"{"_class_name": "DDIMScheduler", "trained_betas": [0.1, "x"]}"#)) { error in
            XCTAssertTrue("\(error)".contains("trained_betas"), "\(error)")
        }
    }

    func testUnreadableFiles() throws {
        XCTAssertThrowsError(try SchedulerConfig(contentsOf: "/nonexistent/scheduler_config.json")) { error in
            XCTAssertEqual(error as? FileError, .notFound(path: "/nonexistent/scheduler_config.json"))
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).json")
        try Data("{\"_class_name\": ".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        XCTAssertThrowsError(try SchedulerConfig(contentsOf: file.path)) { error in
            guard case .invalidJSON(let path, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, file.path)
        }
    }

    func testStepCounts() throws {
        for kind in SchedulerKind.allCases {
            var scheduler = try SchedulerConfig(kind: kind).makeScheduler()
            for count in [-3, 0] {
                assertSchedulerError(try scheduler.setTimesteps(count), mentions: "\(count)") {
                    if case .invalidStepCount(let n, _) = $0 { return n == count }
                    return false
                }
            }
            // Flow matching's continuous sigmas take any count, as in Diffusers.
            if kind.hasNoiseSchedule {
                assertSchedulerError(try scheduler.setTimesteps(1001), mentions: "num_train_timesteps") {
                    if case .invalidStepCount(1001, _) = $0 { return true }
                    return false
                }
            }
            XCTAssertNoThrow(try scheduler.setTimesteps(1000), "\(kind)")
        }
        var prk = try SchedulerConfig(kind: .pndm).makeScheduler()
        assertSchedulerError(try prk.setTimesteps(3), mentions: "skip_prk_steps") {
            if case .invalidStepCount(3, _) = $0 { return true }
            return false
        }
    }

    func testConflictingAndUnsupportedOptions() throws {
        var euler = SchedulerConfig(kind: .eulerDiscrete)
        euler.useKarrasSigmas = true
        euler.useExponentialSigmas = true
        assertSchedulerError(try euler.makeScheduler(), mentions: "use_karras_sigmas") {
            if case .conflictingOptions = $0 { return true }
            return false
        }
        euler.useExponentialSigmas = false
        euler.useKarrasSigmas = false
        euler.useBetaSigmas = true
        assertSchedulerError(try euler.makeScheduler(), mentions: "use_beta_sigmas") { $0 == .unsupported(field: "use_beta_sigmas", reason: "beta-distributed sigmas are not implemented") }
        var dpm = SchedulerConfig(kind: .dpmSolverMultistep)
        dpm.algorithmType = .dpmsolver
        assertSchedulerError(try dpm.makeScheduler(), mentions: "sigma_min") {
            if case .conflictingOptions = $0 { return true }
            return false
        }
        var ancestral = SchedulerConfig(kind: .eulerAncestralDiscrete)
        ancestral.predictionType = .sample
        assertSchedulerError(try ancestral.makeScheduler(), mentions: "prediction_type") {
            if case .unsupported(field: "prediction_type", _) = $0 { return true }
            return false
        }
        var trained = SchedulerConfig(kind: .ddim)
        trained.trainedBetas = [0.1, 0.2]
        assertSchedulerError(try trained.makeScheduler(), mentions: "trained_betas") {
            if case .invalidValue(field: "trained_betas", _, _, _) = $0 { return true }
            return false
        }
    }

    /// Configs built in code are checked when the scheduler is made, like parsed ones.
    func testProgrammaticConfigsAreValidated() {
        var config = SchedulerConfig(kind: .eulerDiscrete)
        config.numTrainTimesteps = -5
        XCTAssertThrowsError(try config.makeScheduler()) { error in
            guard case .invalidValue(field: "num_train_timesteps", _, _, _)? = error as? SchedulerError else { return XCTFail("\(error)") }
        }
        var dpm = SchedulerConfig(kind: .dpmSolverMultistep)
        dpm.solverOrder = 0
        XCTAssertThrowsError(try dpm.makeScheduler())
        var ddim = SchedulerConfig(kind: .ddim)
        ddim.betaEnd = .nan
        XCTAssertThrowsError(try ddim.makeScheduler())
        var offset = SchedulerConfig(kind: .pndm)
        offset.stepsOffset = -1
        XCTAssertThrowsError(try offset.makeScheduler())
    }

    /// A multistep run whose model output changes shape mid-run is an error naming the run.
    func testHistoryShapeChanges() throws {
        let small = try Tensor([Float](repeating: 0.1, count: 16), shape: [1, 1, 4, 4])
        let large = try Tensor([Float](repeating: 0.1, count: 32), shape: [2, 1, 4, 4])
        for variant in ["pndm", "dpm_multistep"] {
            var scheduler = try SchedulerFixtures.config(variant).makeScheduler()
            try scheduler.setTimesteps(5)
            _ = try scheduler.step(modelOutput: small, timestep: scheduler.timesteps[0], sample: small)
            XCTAssertThrowsError(try scheduler.step(modelOutput: large, timestep: scheduler.timesteps[1], sample: large)) { error in
                guard case .shapeMismatch(let message)? = error as? SchedulerError else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("reset()"), message)
            }
        }
    }

    func testBadCalls() throws {
        let sample = try Tensor([Float](repeating: 0.5, count: 16), shape: [1, 1, 4, 4])
        let other = try Tensor([Float](repeating: 0.5, count: 32), shape: [2, 1, 4, 4])
        var ddim = try SchedulerConfig(kind: .ddim).makeScheduler()
        XCTAssertThrowsError(try ddim.step(modelOutput: sample, timestep: .discrete(10), sample: sample)) { error in
            XCTAssertEqual(error as? SchedulerError, .timestepsNotSet(scheduler: "DDIMScheduler"))
        }
        try ddim.setTimesteps(10)
        XCTAssertThrowsError(try ddim.step(modelOutput: other, timestep: .discrete(901), sample: sample)) { error in
            guard case .shapeMismatch? = error as? SchedulerError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try ddim.step(modelOutput: sample, timestep: .discrete(1000), sample: sample)) { error in
            XCTAssertEqual(error as? SchedulerError, .timestepOutOfRange(.discrete(1000), numTrainTimesteps: 1000))
        }
        XCTAssertThrowsError(try ddim.addNoise(original: other, noise: other, timesteps: [.discrete(1), .discrete(2), .discrete(3)])) { error in
            guard case .shapeMismatch? = error as? SchedulerError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try ddim.addNoise(original: other, noise: sample, timestep: .discrete(1)))

        XCTAssertThrowsError(try ddim.imageToImageTimesteps(steps: 10, strength: 1.5)) { error in
            XCTAssertEqual(error as? SchedulerError, .invalidArgument("strength must be in [0, 1], got 1.5"))
        }
        XCTAssertEqual(try ddim.imageToImageTimesteps(steps: 10, strength: 0), [])
        XCTAssertEqual(try ddim.imageToImageTimesteps(steps: 10, strength: 1), ddim.timesteps)

        var euler = try SchedulerConfig(kind: .eulerDiscrete).makeScheduler()
        try euler.setTimesteps(4)
        XCTAssertThrowsError(try euler.scaleModelInput(sample, timestep: .continuous(500))) { error in
            XCTAssertEqual(error as? SchedulerError, .timestepNotInSchedule(.continuous(500), scheduler: "EulerDiscreteScheduler"))
        }
        var ancestral = try SchedulerConfig(kind: .eulerAncestralDiscrete).makeScheduler()
        try ancestral.setTimesteps(2)
        XCTAssertThrowsError(try ancestral.step(modelOutput: sample, timestep: ancestral.timesteps[0], sample: sample, noise: other))
        // Stepping past the end of the schedule is an error, not a trap.
        for t in ancestral.timesteps { _ = try ancestral.step(modelOutput: sample, timestep: t, sample: sample) }
        XCTAssertThrowsError(try ancestral.step(modelOutput: sample, timestep: ancestral.timesteps[0], sample: sample)) { error in
            guard case .invalidState? = error as? SchedulerError else { return XCTFail("\(error)") }
        }
    }
}
