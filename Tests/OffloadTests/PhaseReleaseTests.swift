import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// `releasesWeightPagesBetweenPhases`: a pipeline over a mapped checkpoint holds one phase's
/// weights at a time — when a phase ends, its model's mapped pages and the packed convolution
/// copies made from them go (the packed copies are on the host allocator, so it shows there).
final class PhaseReleaseTests: XCTestCase {
    func testPackedCopiesDoNotOutliveTheirPhase() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd")
        XCTAssertTrue(pipeline.unet.convIn.weight.value?.storage.isMapped == true, "f32 weights stay mapped")
        let host = Device.cpu.allocator
        let before = host.bytesInUse
        var result: GenerationResult? = try pipeline.generate(.tinyOneStep())
        let plain = try XCTUnwrap(result).images.floats()
        result = nil
        XCTAssertLessThan(host.bytesInUse - before, 64 << 10, "no packed weight outlives its phase")

        pipeline.releasesWeightPagesBetweenPhases = false
        result = try pipeline.generate(.tinyOneStep())
        XCTAssertEqual(try XCTUnwrap(result).images.floats(), plain, "the same image either way")
        result = nil
        XCTAssertGreaterThan(host.bytesInUse - before, 256 << 10, "kept, the packed convolution weights stay on the host")
        pipeline.releasesWeightPagesBetweenPhases = true
    }
}
