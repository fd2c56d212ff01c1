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

    /// Runs `check` before the module it is registered on computes.
    final class Probe: ModuleHook, @unchecked Sendable {
        let check: () -> Void
        init(_ check: @escaping () -> Void) { self.check = check }
        func preForward(_ module: Module) throws { check() }
    }

    /// bf16 over the f32 checkpoint (`castWeightsOnLoad: false`): each phase converts its own
    /// component and frees the copies when it ends — while one component computes in bf16 the
    /// others are the mapped f32 checkpoint — and nothing converted stays after the call.
    func testEachPhaseConvertsOnlyItsComponent() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd", dtype: .bf16, castWeightsOnLoad: false)
        // With oneDNN's bf16 kernels convolution weights stay mapped in bf16 phases too: the
        // convolution converts them straight into its packed copy. Where bf16 products run as
        // f32 ones the packing is per call, so the phase converts them like the rest.
        let convolutionsStayMapped = BF16ProductKernels.current == .native
        func state(_ module: Module) -> String {
            let convolutions = module.namedParameters().filter { $0.parameter.shape.count == 4 }.compactMap(\.parameter.value)
            let values = module.namedParameters().filter { $0.parameter.shape.count != 4 || !convolutionsStayMapped }.compactMap(\.parameter.value)
            if convolutionsStayMapped {
                guard convolutions.allSatisfy({ $0.dtype == .f32 && $0.storage.isMapped }) else { return "converted convolutions" }
            }
            if values.allSatisfy({ $0.dtype == .f32 && $0.storage.isMapped }) { return "mapped" }
            if values.allSatisfy({ $0.dtype == .bf16 }) { return "bf16" }
            return "mixed"
        }
        var seen: [String] = []
        try pipeline.unet.convIn.registerHook(Probe {
            seen.append("unet: unet \(state(pipeline.unet)), text \(state(pipeline.textEncoder)), vae \(state(pipeline.vae))")
        }, name: "probe")
        try pipeline.textEncoder.registerHook(Probe {
            seen.append("text: unet \(state(pipeline.unet)), text \(state(pipeline.textEncoder)), vae \(state(pipeline.vae))")
        }, name: "probe")
        try pipeline.vae.registerHook(Probe {
            seen.append("vae: unet \(state(pipeline.unet)), text \(state(pipeline.textEncoder)), vae \(state(pipeline.vae))")
        }, name: "probe")
        let host = Device.cpu.allocator
        let before = host.bytesInUse
        var result: GenerationResult? = try pipeline.generate(.tinyOneStep())
        result = nil
        _ = result
        XCTAssertEqual(Set(seen), ["text: unet mapped, text bf16, vae mapped", "unet: unet bf16, text mapped, vae mapped",
                                   "vae: unet mapped, text mapped, vae bf16"])
        XCTAssertLessThan(host.bytesInUse - before, 64 << 10, "no converted weight outlives the call")
        XCTAssertEqual(state(pipeline.unet), "mapped")
    }
}
