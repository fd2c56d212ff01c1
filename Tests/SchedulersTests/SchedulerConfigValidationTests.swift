import Foundation
import NN
import Schedulers
import TestSupport
import XCTest

/// Scheduler configs that used to succeed silently on garbage (issue 14): a noise schedule
/// that adds no noise, non-finite numbers, and errors that now name the file they came from.
final class SchedulerConfigValidationTests: XCTestCase {
    static let demo = packageRoot + "/models/demo/scheduler/scheduler_config.json"
    private var folder = ""

    override func setUpWithError() throws {
        folder = try ConfigEditing.temporaryFolder("scheduler-validation")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The demo scheduler config with `changes`, written to a file (returned).
    private func edited(_ changes: [String: String?]) throws -> String {
        let path = folder + "/scheduler_config.json"
        try ConfigEditing.write(from: Self.demo, to: path, changes)
        return path
    }

    /// Asserts that building `path` as `kind` throws `invalidValue` for `field`, naming the file.
    private func assertRefused(_ path: String, as kind: SchedulerKind? = nil, field: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SchedulerConfig(contentsOf: path, kind: kind).makeScheduler(), file: file, line: line) { error in
            guard case let .invalidValue(errorField, _, _, errorPath)? = error as? SchedulerError else {
                return XCTFail("expected invalidValue for \(field), got \(error)", file: file, line: line)
            }
            XCTAssertEqual(errorField, field, file: file, line: line)
            XCTAssertEqual(errorPath, path, file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix(path + ": ") && "\(error)".contains(field), "\(error)", file: file, line: line)
        }
    }

    func testZeroBetasAreRefusedByEveryScheduler() throws {
        for schedule in ["linear", "scaled_linear"] {
            let path = try edited(["beta_start": "0", "beta_end": "0", "beta_schedule": "\"\(schedule)\""])
            for kind in SchedulerKind.allCases where kind.hasNoiseSchedule { assertRefused(path, as: kind, field: "beta_end") }
        }
        // Betas below float32's resolution next to 1 leave every alpha at 1: no noise either.
        assertRefused(try edited(["beta_start": "1e-12", "beta_end": "1e-12"]), field: "beta_end")
        // Zero-SNR rescaling divides by the fall of alphas_cumprod: none, or one timestep, is refused, not NaN.
        assertRefused(try edited(["beta_start": "0", "beta_end": "0", "rescale_betas_zero_snr": "true"]), as: .ddim, field: "beta_end")
        assertRefused(try edited(["num_train_timesteps": "1", "rescale_betas_zero_snr": "true"]), as: .eulerDiscrete, field: "beta_end")
        assertRefused(try edited(["num_train_timesteps": "3", "trained_betas": "[0, 0, 0]"]), field: "trained_betas")
    }

    func testNonFiniteNumbersNameTheFileAndKey() throws {
        for (key, literal) in [("beta_start", "NaN"), ("beta_end", "Infinity"), ("flow_shift", "0"), ("flow_shift", "NaN"),
                               ("sigma_min", "-Infinity"), ("sigma_max", "NaN"), ("clip_sample_range", "Infinity"),
                               ("dynamic_thresholding_ratio", "NaN"), ("sample_max_value", "NaN"), ("lambda_min_clipped", "NaN"),
                               ("num_train_timesteps", "0"), ("steps_offset", "1000000000000000000000")] {
            assertRefused(try edited([key: literal]), field: key)
        }
        assertRefused(try edited(["num_train_timesteps": "2", "trained_betas": "[0.1, NaN]"]), field: "trained_betas")
        // Infinity where it means "none" is still accepted.
        XCTAssertEqual(try SchedulerConfig(contentsOf: edited(["sample_max_value": "Infinity"])).sampleMaxValue, .infinity)
        XCTAssertEqual(try SchedulerConfig(contentsOf: Self.demo).lambdaMinClipped, -.infinity)
    }

    /// Configs built in code skip the parser; the schedule is still checked when it is made.
    func testProgrammaticSchedulesAreCheckedToo() throws {
        var config = SchedulerConfig(kind: .eulerDiscrete)
        config.betaStart = 0
        config.betaEnd = 0
        XCTAssertThrowsError(try config.makeScheduler()) { error in
            guard case .invalidValue(field: "beta_end", _, _, path: nil)? = error as? SchedulerError else { return XCTFail("\(error)") }
        }
        config.betaEnd = .infinity
        XCTAssertThrowsError(try config.makeScheduler())
        config.betaEnd = 0.012
        config.trainedBetas = Array(repeating: .nan, count: 1000)
        XCTAssertThrowsError(try config.makeScheduler())
    }

    /// The converted config keeps its file, so errors found later still name it.
    func testConvertedConfigsKeepTheirSource() throws {
        let path = try edited(["beta_start": "0", "beta_end": "0"])
        let config = try SchedulerConfig(contentsOf: path)
        XCTAssertEqual(config.sourcePath, path)
        XCTAssertEqual(config.converted(to: .pndm).sourcePath, path)
        XCTAssertEqual(config, try SchedulerConfig(json: JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))),
                                                                         allowNonFinite: true), path: "elsewhere.json"),
                       "the source is not part of equality")
    }

    /// Valid control: the demo config builds every scheduler with finite, positive sigmas.
    func testTheDemoScheduleStaysValid() throws {
        for kind in SchedulerKind.allCases {
            var scheduler = try SchedulerConfig(contentsOf: Self.demo, kind: kind).makeScheduler()
            try scheduler.setTimesteps(25)
            XCTAssertTrue(scheduler.initNoiseSigma.isFinite && scheduler.initNoiseSigma > 0, "\(kind)")
            XCTAssertFalse(scheduler.timesteps.isEmpty, "\(kind)")
        }
    }
}
