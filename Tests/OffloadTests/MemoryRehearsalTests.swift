import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// A rehearsal allocates what the real run allocates, computing nothing: its peaks are the
/// real call's, byte for byte, on the host and on an accelerator, whatever the placement.
final class MemoryRehearsalTests: XCTestCase {
    enum Placement: CaseIterable {
        case resident, hostGroupBlocks, accelModel, accelSequential, accelGroupLeafStream

        func apply(_ pipeline: DiffusionPipeline, _ accel: Device) throws {
            switch self {
            case .resident: break
            case .hostGroupBlocks: _ = try pipeline.enableGroupOffload(device: .cpu, options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1)))
            case .accelModel: try pipeline.enableModelCPUOffload(device: accel)
            case .accelSequential: _ = try pipeline.enableSequentialCPUOffload(device: accel)
            case .accelGroupLeafStream: _ = try pipeline.enableGroupOffload(device: accel, options: GroupOffloadOptions(type: .leafLevel, useStream: true))
            }
        }
    }

    func testRehearsalPeaksAreTheRealCallsPeaks() throws {
        for folder in ["tiny-sd", "tiny-sdxl", "tiny-flux-dev"] {
            for dtype in [DType.f32, .bf16] {
                for placement in Placement.allCases {
                    let accel = Device.accel(0)
                    let devices = [Device.cpu, accel]
                    let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/" + folder, dtype: dtype,
                                                                castWeightsOnLoad: placement != .resident && placement != .hostGroupBlocks)
                    try placement.apply(pipeline, accel)
                    var options = GenerationOptions.tinyOneStep()
                    options.steps = 2
                    options.guidanceScale = pipeline.defaultGuidanceScale
                    for device in devices { device.allocator.emptyCache() }
                    let times = OperationTimes()
                    let rehearsal = MemoryRehearsal(watching: devices.map(\.allocator), times: times)
                    _ = try rehearsal.run { try pipeline.generate(options, progress: nil) }
                    let label = "\(folder) \(dtype) \(placement)"
                    XCTAssertGreaterThan(times.measuredCount, 0, label)
                    XCTAssertGreaterThanOrEqual(rehearsal.figures.sectionEntries["unet_step"] ?? 0, 1, label)   // PNDM steps once more
                    XCTAssertNotNil(rehearsal.figures.operations["unet_step"]?.keys.first { $0.hasPrefix("linear(") || $0.hasPrefix("conv2d(") }, label)

                    let before = devices.map(\.allocator.bytesInUse)
                    for device in devices { device.allocator.resetPeak() }
                    _ = try pipeline.generate(options, progress: nil)
                    for (device, start) in zip(devices, before) {
                        let rehearsed = rehearsal.figures.devicePeakBytes[device.description] ?? 0, real = device.allocator.peakBytes - start
                        // A prefetch queue's copies interleave with the computation as threads run: within 1 %.
                        let slack = placement == .accelGroupLeafStream ? real / 100 : 0
                        XCTAssertLessThanOrEqual(abs(rehearsed - real), slack, "\(label) on \(device): rehearsed \(rehearsed), real \(real)")
                    }
                    XCTAssertGreaterThanOrEqual(rehearsal.figures.processPeakBytes, rehearsal.figures.devicePeakBytes.values.max() ?? 0, label)
                }
            }
        }
    }

    /// No weight is read and no result computed: the rehearsal's images are not the real call's.
    func testARehearsalReadsNoWeightAndLeavesNothingBehind() throws {
        let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd", dtype: .f32, castWeightsOnLoad: false)
        let plain = try pipeline.generate(.tinyOneStep(), progress: nil).images
        let rehearsal = MemoryRehearsal(watching: [Device.cpu.allocator])
        _ = try rehearsal.run { try pipeline.generate(.tinyOneStep(), progress: nil) }
        XCTAssertGreaterThan(rehearsal.figures.mappedPeakBytes, 0)
        XCTAssertTrue(MemoryRehearsal.current == nil)
        // The call after it is the plain one, bit for bit (no garbage packed weight left).
        XCTAssertEqual(try pipeline.generate(.tinyOneStep(), progress: nil).images.floats(), try plain.floats())
    }

    /// A large block the system maps anew is booked as fresh pages to the section allocating
    /// it, a cached block handed out again and a small one are not; the first one in a timed
    /// section measures what a byte of them costs, and a step's prediction adds them.
    func testARehearsalBooksBlocksInFreshPages() throws {
        let accel = Device.accel(5)
        let times = OperationTimes()
        let rehearsal = MemoryRehearsal(watching: [accel.allocator], times: times, timedSectionPrefix: "unet")
        try rehearsal.run {
            OpProfile.beginSection("unet_step")
            _ = try Tensor.empty([1 << 20], device: accel)   // 4 MiB in fresh pages, then cached
            _ = try Tensor.empty([1 << 20], device: accel)   // the cached block again
            _ = try Tensor.empty([1 << 10], device: accel)   // 4 KiB: malloc's own
            OpProfile.beginSection(nil)
        }
        XCTAssertEqual(rehearsal.figures.freshPageBytes, ["unet_step": 4 << 20])
        let perByte = try XCTUnwrap(times.seconds(OperationTimes.freshPageSignature))
        XCTAssertGreaterThan(perByte, 0)
        XCTAssertLessThan(perByte, 1e-7)

        var figures = MemoryRehearsal.Figures()
        figures.sectionEntries["unet_step"] = 2
        figures.freshPageBytes["unet_step"] = 8 << 20
        let prediction = RunPrediction(rehearsal: figures, baseResidentBytes: 0, outputBytes: 0,
                                       times: OperationTimes([OperationTimes.freshPageSignature: 1e-9]))
        XCTAssertEqual(prediction.stepSecondsByClass["fresh_pages"] ?? 0, Double(4 << 20) * 1e-9, accuracy: 1e-12)
        XCTAssertEqual(prediction.stepSeconds ?? 0, Double(4 << 20) * 1e-9, accuracy: 1e-12)
    }

    /// Blocks of a huge page or more start on one (the kernel may then back them with huge pages).
    func testLargeBlocksStartOnAHugePage() throws {
        let accel = Device.accel(6)
        for elements in [1 << 19, 3 << 19, 5 << 20] {
            let tensor = try Tensor.empty([elements], device: accel)
            XCTAssertEqual(Int(bitPattern: tensor.storage.pointer) % (2 << 20), 0, "\(elements * 4) bytes")
        }
        XCTAssertEqual(Int(bitPattern: try Tensor.empty([1000], device: accel).storage.pointer) % 64, 0)
    }
}
