import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// The tiny pipeline with each technique gives the plain run's image bit for bit, and switching
/// technique leaves no hooks behind.
final class PipelineOffloadTests: XCTestCase {
    /// SD and SDXL alike: the core applies every technique to whatever components a pipeline has.
    func testEveryTechniqueGivesThePlainImage() throws {
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
        options.steps = 2
        options.width = 64
        options.height = 64
        options.seed = 11
        try checkTechniques(AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sd"), options)
        (options.width, options.height, options.guidanceScale) = (32, 32, 5)
        options.prompts2 = ["a blue square"]
        try checkTechniques(AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-sdxl"), options)
        var flux = GenerationOptions(prompt: "a red fox in the snow")
        (flux.steps, flux.guidanceScale, flux.width, flux.height, flux.seed) = (2, 3.5, 32, 24, 11)
        flux.maxSequenceLength = 64
        try checkTechniques(AutoPipeline.textToImage(folder: OffloadStrategyTests.root + "/tiny-flux-dev"), flux)
    }

    func checkTechniques(_ pipeline: any TextToImagePipeline, _ options: GenerationOptions) throws {
        let family = pipeline.layout.className
        let plain = try pipeline.generate(options, progress: nil).images.floats()
        let device = Device.accel(7)
        let techniques: [(String, () throws -> Void)] = [
            ("model offload", { try pipeline.enableModelCPUOffload(device: device) }),
            ("sequential offload", { try pipeline.enableSequentialCPUOffload(device: device) }),
            ("group offload, block level", { try pipeline.enableGroupOffload(device: device, options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1))) }),
            ("group offload, leaf level, prefetch", { try pipeline.enableGroupOffload(device: device, options: GroupOffloadOptions(type: .leafLevel, useStream: true)) }),
            ("model offload + group offload of the denoiser", {
                try pipeline.denoiser.applyGroupOffloading(device: device, options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1), useStream: true))
                try pipeline.enableModelCPUOffload(device: device)
            }),
            // The guide's group offloading: the denoiser at leaf level with a stream, each text
            // encoder two blocks per group, the VAE at leaf level.
            ("the guide's group offload (text encoders two blocks per group)", {
                for (name, component) in pipeline.namedComponents {
                    let type: GroupOffloadType = name.hasPrefix("text_encoder") ? .blockLevel(blocksPerGroup: 2) : .leafLevel
                    try component.applyGroupOffloading(device: device, options: GroupOffloadOptions(type: type, useStream: name == pipeline.layout.denoiser))
                }
            }),
        ]
        for (name, enable) in techniques {
            try enable()
            XCTAssertFalse(pipeline.hooks.isEmpty, "\(family), \(name)")
            XCTAssertEqual(try pipeline.generate(options, progress: nil).images.floats(), plain, "\(family), \(name): image must equal the plain run's")
            XCTAssertEqual(device.allocator.bytesInUse, 0, "\(family), \(name): everything back on the host after the call")
            try pipeline.removeAllHooks()
            XCTAssertTrue(pipeline.hooks.isEmpty, "\(family), \(name): hooks left behind")
        }
        guard !(pipeline is FluxPipeline) else {
            XCTAssertThrowsError(try pipeline.enableDenoiserCapture(), "FLUX has no graph capture")
            return
        }
        // Capture replays the denoiser's graph from the third step: the same image.
        var longer = options
        longer.steps = 3
        let eager = try pipeline.generate(longer, progress: nil).images.floats()
        try pipeline.enableDenoiserCapture()
        XCTAssertEqual(try pipeline.generate(longer, progress: nil).images.floats(), eager, "\(family), capture: bit for bit")
        XCTAssertNotNil(pipeline.lastDenoiserCapturePlan, "\(family): captured")
        XCTAssertEqual(try pipeline.generate(options, progress: nil).images.floats(), plain, "\(family): plain again after switching")
    }

    func testModelOffloadMovesWholeComponentsInTurn() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd")
        let device = Device.accel(8)
        try pipeline.enableModelCPUOffload(device: device)
        var options = GenerationOptions(prompt: "a red circle")
        options.steps = 2
        options.width = 64
        options.height = 64
        func devices(_ module: Module) -> Set<String> { Set(module.namedParameters().compactMap { $0.parameter.value?.device.description }) }
        var seen: [Set<String>] = []
        _ = try pipeline.generate(options) { _ in
            // During denoising: the UNet entirely on the device, the text encoder gone home, the VAE not yet there.
            seen = [devices(pipeline.textEncoder), devices(pipeline.unet), devices(pipeline.vae)]
            return true
        }
        XCTAssertEqual(seen, [["cpu"], ["accel:8"], ["cpu"]])
        XCTAssertEqual(device.allocator.bytesInUse, 0, "every component back home after the call")
        XCTAssertEqual(Set(pipeline.components.flatMap { devices($0) }), ["cpu"])
    }

    /// Group offload on the UNet, model offload on the rest: during denoising only UNet groups
    /// are on the device (the text encoder left when the UNet started), and all leave after.
    func testModelOffloadAroundAGroupOffloadedUNet() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd")
        let device = Device.accel(9)
        try pipeline.unet.applyGroupOffloading(device: device, options: GroupOffloadOptions(type: .leafLevel))
        try pipeline.enableModelCPUOffload(device: device)
        XCTAssertThrowsError(try pipeline.unet.applyGroupOffloading(device: device, options: GroupOffloadOptions(type: .leafLevel)))
        var options = GenerationOptions(prompt: "a red circle")
        options.steps = 2
        options.width = 64
        options.height = 64
        func onDevice(_ module: Module) -> Int {
            module.namedParameters().filter { $0.parameter.value?.device == device }.count
        }
        var seen: [Int] = []
        _ = try pipeline.generate(options) { _ in
            seen = [onDevice(pipeline.textEncoder), onDevice(pipeline.unet), onDevice(pipeline.vae)]
            return true
        }
        XCTAssertEqual(seen, [0, 0, 0], "between steps: text encoder gone, UNet groups offloaded, VAE not yet there")
        XCTAssertEqual(device.allocator.bytesInUse, 0)
        XCTAssertGreaterThan(pipeline.modelOffloadStatistics?.transfers ?? 0, 1)
    }
}
