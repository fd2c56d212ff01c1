import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// A rehearsal allocates what the real run allocates, computing nothing.
final class MemoryRehearsalTests: XCTestCase {
    func testRehearsalPeaksAreTheRealRunsPeaks() throws {
        for folder in (ProcessInfo.processInfo.environment["ONLY"].map { [$0] } ?? ["tiny-sd", "tiny-sdxl", "tiny-flux-dev"]) {
            for dtype in (ProcessInfo.processInfo.environment["ONLY"] != nil ? [DType.bf16] : [DType.f32, .bf16]) {
                let pipeline = try AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/" + folder, dtype: dtype, castWeightsOnLoad: false)
                var options = GenerationOptions.tinyOneStep()
                options.guidanceScale = pipeline.defaultGuidanceScale
                let host = Device.cpu.allocator
                let rehearsal = MemoryRehearsal(watching: [host], times: ProcessInfo.processInfo.environment["NOTIMES"] == nil ? OperationTimes() : nil)
                host.emptyCache()
                let b0 = host.bytesInUse
                let (_, peak0) = try host.measuringPeak { try pipeline.generate(options, progress: nil) }
                print("FIRST \(peak0 - b0)")
                host.emptyCache()
                let start = Date()
                _ = try rehearsal.run { try pipeline.generate(options, progress: nil) }
                let rehearsalSeconds = Date().timeIntervalSince(start)
                host.emptyCache()
                let before = host.bytesInUse
                let t0 = Date()
                let (_, peak) = try host.measuringPeak { try pipeline.generate(options, progress: nil) }
                let realSeconds = Date().timeIntervalSince(t0)
                print("REHEARSAL \(folder) \(dtype): rehearsed cpu peak \(rehearsal.figures.devicePeakBytes["cpu"] ?? -1) process \(rehearsal.figures.processPeakBytes) mapped \(rehearsal.figures.mappedPeakBytes); real peak \(peak - before); \(rehearsalSeconds) s vs \(realSeconds) s; sections \(rehearsal.figures.operations.mapValues { $0.values.reduce(0, +) })")
            }
        }
    }
}
