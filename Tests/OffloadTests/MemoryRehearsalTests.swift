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
}
