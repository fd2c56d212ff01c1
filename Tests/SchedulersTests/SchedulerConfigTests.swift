import Foundation
import NN
import Schedulers
import Tensor
import XCTest

/// Reading `scheduler_config.json`: Diffusers' defaults per class, `from_config` across
/// classes, aliases, and unknown keys.
final class SchedulerConfigTests: XCTestCase {
    private let hub = SchedulerFixtures.path("sd15_scheduler_config.json")

    private func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8), allowNonFinite: true)
    }

    func testStableDiffusionHubConfig() throws {
        let config = try SchedulerConfig(contentsOf: hub)
        XCTAssertEqual(config.kind, .pndm)
        XCTAssertEqual(config.betaSchedule, .scaledLinear)
        XCTAssertEqual(config.betaStart, 0.00085)
        XCTAssertEqual(config.betaEnd, 0.012)
        XCTAssertEqual(config.stepsOffset, 1)
        XCTAssertTrue(config.skipPRKSteps)
        XCTAssertFalse(config.setAlphaToOne)
        XCTAssertFalse(config.clipSample)
        XCTAssertNil(config.trainedBetas)
        // Absent from the file: PNDM's defaults.
        XCTAssertEqual(config.timestepSpacing, .leading)
        XCTAssertEqual(config.predictionType, .epsilon)
        XCTAssertTrue(try config.makeScheduler() is PNDMScheduler)
    }

    /// Building each class from SD 1.5's config equals the config Diffusers wrote for it.
    func testFromConfigAcrossClassesMatchesDiffusers() throws {
        let cases: [(String, SchedulerKind)] = [("pndm", .pndm), ("ddim", .ddim), ("euler", .eulerDiscrete),
                                               ("euler_ancestral", .eulerAncestralDiscrete),
                                               ("dpm_multistep", .dpmSolverMultistep)]
        let source = try SchedulerConfig(contentsOf: hub)
        for (variant, kind) in cases {
            let written = try SchedulerFixtures.config(variant)
            XCTAssertEqual(written.kind, kind)
            XCTAssertEqual(try SchedulerConfig(contentsOf: hub, kind: kind), written, variant)
            XCTAssertEqual(source.converted(to: kind), written, variant)
        }
        XCTAssertEqual(try SchedulerConfig(contentsOf: hub, kind: .eulerDiscrete).timestepSpacing, .linspace)
        XCTAssertEqual(try SchedulerConfig(contentsOf: hub, kind: .ddim).setAlphaToOne, false, "stated in the file")
        XCTAssertEqual(SchedulerConfig(kind: .ddim).setAlphaToOne, true, "DDIM's default")
    }

    func testDefaultsListedInUseDefaultValuesAreNotCarriedOver() throws {
        let value = try json("""
        {"_class_name": "PNDMScheduler", "timestep_spacing": "leading", "steps_offset": 1,
         "_use_default_values": ["timestep_spacing"]}
        """)
        XCTAssertEqual(try SchedulerConfig(json: value, kind: .eulerDiscrete).timestepSpacing, .linspace)
        XCTAssertEqual(try SchedulerConfig(json: value, kind: .eulerDiscrete).stepsOffset, 1)
    }

    func testUnknownKeysAreIgnoredAndAliasesRead() throws {
        let config = try SchedulerConfig(json: try json("""
        {"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "deis", "solver_type": "bh2",
         "lambda_min_clipped": -Infinity, "some_future_option": [1, 2], "variance_type": null, "sigma_min": null}
        """))
        XCTAssertEqual(config.algorithmType, .dpmsolverPlusPlus)
        XCTAssertEqual(config.solverType, .midpoint)
        XCTAssertEqual(config.lambdaMinClipped, -.infinity)
        XCTAssertNil(config.varianceType)
        XCTAssertNil(config.sigmaMin)
    }

    func testShortNames() {
        XCTAssertEqual(SchedulerKind(name: "euler-a"), .eulerAncestralDiscrete)
        XCTAssertEqual(SchedulerKind(name: "EULER_ANCESTRAL"), .eulerAncestralDiscrete)
        XCTAssertEqual(SchedulerKind(name: "dpm++"), .dpmSolverMultistep)
        XCTAssertEqual(SchedulerKind(name: "DDIMScheduler"), .ddim)
        XCTAssertEqual(SchedulerKind(name: "pndm"), .pndm)
        XCTAssertNil(SchedulerKind(name: "lms"))
    }

    func testModelFolderLookup() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sched-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("scheduler"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(atPath: hub, toPath: folder.appendingPathComponent("scheduler/scheduler_config.json").path)
        XCTAssertEqual(try SchedulerConfig(modelFolder: folder.path).kind, .pndm)
        XCTAssertEqual(try SchedulerConfig(modelFolder: folder.appendingPathComponent("scheduler").path).kind, .pndm)
    }

    func testTimestepTensor() throws {
        let discrete = try Timestep.tensor([.discrete(981), .discrete(1)])
        XCTAssertEqual(discrete.dtype, .i64)
        XCTAssertEqual(try discrete.int64s(), [981, 1])
        let continuous = try Timestep.tensor([.continuous(665.6667)])
        XCTAssertEqual(continuous.dtype, .f32)
        XCTAssertEqual(Timestep.continuous(501).integerValue, 501)
        XCTAssertNil(Timestep.continuous(665.5).integerValue)
    }
}
