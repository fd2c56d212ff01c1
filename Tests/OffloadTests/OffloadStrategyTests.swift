import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// Each offloading strategy on the tiny UNet: outputs bit-equal to the plain run (offloading
/// moves bytes, it does not change them) and the device's peak, read from its allocator, within
/// what the strategy promises.
final class OffloadStrategyTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    func makeUNet() throws -> UNet2DConditionModel { try TinyUNet.load() }

    func inputs() throws -> (Tensor, Tensor, Tensor) { try TinyUNet.inputs() }

    /// Runs the UNet twice (the second run uses the traced prefetch order) and returns the
    /// output and the device's peak during the second run.
    func run(_ unet: Module, _ model: ModelCase, on device: Device) throws -> (output: [Float], peak: Int) {
        _ = try model.forward(unet)
        device.allocator.resetPeak()
        let out = try model.forward(unet).to(.cpu)
        return (try out.floats(), device.allocator.peakBytes)
    }

    /// The SD UNet, the SDXL one (added conditions, per-block depths) and the FLUX transformer alike.
    func testEveryStrategyIsBitEqualAndWithinItsMemoryBound() throws {
        for model in [ModelCase.tinySD, .tinySDXL, .tinyFluxDev] { try checkStrategies(model) }
    }

    func checkStrategies(_ model: ModelCase) throws {
        let expected = try model.forward(model.make()).floats()

        // Plain: the whole model on the device.
        let plainDevice = Device.accel(0)
        let plain = try model.make()
        try plain.moveParameters(to: plainDevice)
        let (plainOut, plainPeak) = try run(plain, model, on: plainDevice)
        XCTAssertEqual(plainOut, expected, model.name)
        // What stays on the device between forwards is the weights and their oneDNN-packed copies;
        // the rest of the peak is what the forward itself needs.
        let held = plainDevice.allocator.bytesInUse
        let activations = plainPeak - held
        try plain.moveParameters(to: .cpu)

        func check(_ technique: String, bound: Int, _ apply: (Module, Device) throws -> Void) throws {
            let name = model.name + ", " + technique
            let device = Device.accel(1)
            let unet = try model.make()
            try apply(unet, device)
            XCTAssertEqual(device.allocator.bytesInUse, 0, "\(name): nothing on the device before the first forward")
            let (out, peak) = try run(unet, model, on: device)
            XCTAssertEqual(out, expected, "\(name): output must be bit-equal to the plain run")
            let resident = peak - activations
            XCTAssertLessThanOrEqual(resident, bound, "\(name): \(formatBytes(resident)) of weights resident at peak, bound \(formatBytes(bound)) (plain run: \(formatBytes(held)))")
            print("\(name): weights resident at peak \(formatBytes(resident)) of the plain run's \(formatBytes(held)) (\(String(format: "%.1f", 100 * Double(resident) / Double(held))) %)")
            XCTAssertEqual(device.allocator.bytesInUse, 0, "\(name): everything back home after the forward")
            try unet.removeAllHooks()
            XCTAssertTrue(unet.allHooks().isEmpty)
            XCTAssertEqual(try model.forward(unet).floats(), expected, "\(name): after removing hooks")
        }

        let fifteenPercent = held * 15 / 100
        try check("sequential", bound: fifteenPercent) { try $0.enableSequentialCPUOffload(device: $1) }
        try check("leaf level", bound: fifteenPercent) {
            try $0.applyGroupOffloading(device: $1, options: GroupOffloadOptions(type: .leafLevel))
        }
        try check("leaf level, prefetch", bound: fifteenPercent) {
            try $0.applyGroupOffloading(device: $1, options: GroupOffloadOptions(type: .leafLevel, useStream: true))
        }
        // Block level: at most two block groups (current + prefetched next) and the unmatched group.
        let probe = try model.make()
        let state = try probe.applyGroupOffloading(device: .accel(9), options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1)))
        let unmatched = state.groups.filter { $0.id.hasSuffix("_unmatched_group") }.reduce(0) { $0 + $1.byteCount }
        let largestBlocks = state.groups.filter { !$0.id.hasSuffix("_unmatched_group") }.map(\.byteCount).sorted().suffix(2).reduce(0, +)
        // Groups count twice: their weights and the packed copies made while they are resident.
        try check("block level", bound: 2 * (unmatched + largestBlocks)) {
            try $0.applyGroupOffloading(device: $1, options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1)))
        }
        try check("block level, prefetch", bound: 2 * (unmatched + largestBlocks)) {
            try $0.applyGroupOffloading(device: $1, options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1), useStream: true))
        }
    }

    func testBlockLevelGroupsAndTracedOrder() throws {
        let unet = try makeUNet()
        let state = try unet.applyGroupOffloading(device: .accel(2),
                                                  options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1), useStream: true))
        XCTAssertEqual(Set(state.groups.map(\.id)),
                       ["down_blocks_0_0", "down_blocks_1_1", "up_blocks_0_0", "up_blocks_1_1", "UNet2DConditionModel_unmatched_group"])
        let (sample, t, context) = try inputs()
        _ = try unet(sample, timestep: t, encoderHiddenStates: context)
        XCTAssertEqual(state.executionOrder, ["down_blocks_0_0", "down_blocks_1_1", "up_blocks_0_0", "up_blocks_1_1"])
        // The VAE declares its encoder and decoder as block modules, so their blocks are grouped too.
        let folder = Self.root + "/tiny-sd/vae"
        let vae = AutoencoderKL(try AutoencoderKLConfig(ModelConfig(path: folder + "/config.json")))
        try vae.load(from: Checkpoint(folder: folder))
        let vaeState = try vae.applyGroupOffloading(device: .accel(3), options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1)))
        XCTAssertTrue(vaeState.groups.contains { $0.id == "encoder.down_blocks_0_0" }, "\(vaeState.groups.map(\.id))")
        XCTAssertTrue(vaeState.groups.contains { $0.id == "decoder.up_blocks_1_1" }, "\(vaeState.groups.map(\.id))")
    }

    /// Prefetching starts copies on the transfer queue ahead of need (counted, not timed: the
    /// wait figures are printed for the record; BENCHMARKS.md has measured ones).
    func testPrefetchCopiesAheadOfNeed() throws {
        // A copy engine slow enough that moving all weights costs about as much as the forward.
        let unet = try makeUNet()
        let (sample, t, context) = try inputs()
        _ = try unet(sample, timestep: t, encoderHiddenStates: context)             // creates the primitives
        let start = Date()
        _ = try unet(sample, timestep: t, encoderHiddenStates: context)
        let compute = Date().timeIntervalSince(start)
        let weights = unet.namedParameters().reduce(0) { $0 + ($1.parameter.value?.byteCount ?? 0) }
        let bandwidth = Double(weights) / max(compute, 0.01)
        func measure(_ useStream: Bool, ahead: Int = 0) throws -> (wait: Double, prefetches: Int, peak: Int, output: [Float]) {
            let model = try makeUNet()
            let device = Device.accel(5, copyBandwidth: bandwidth)
            var options = GroupOffloadOptions(type: .leafLevel, useStream: useStream)
            options.prefetchBytes = ahead
            let state = try model.applyGroupOffloading(device: device, options: options)
            _ = try model(sample, timestep: t, encoderHiddenStates: context)      // traces the order
            if ahead > 0 {
                // With a budget, the end of a forward starts the next one's first groups…
                XCTAssertGreaterThan(state.statistics.prefetchCount, 0, "copies for the next forward")
                // The copies run on the transfer queue: give them a moment to land on the device.
                let deadline = Date().addingTimeInterval(5)
                while device.allocator.bytesInUse == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
                XCTAssertGreaterThan(device.allocator.bytesInUse, 0, "the next forward's first groups arrive ahead of it")
                // …and endCall drops them when no forward follows.
                try model.endCall()
                XCTAssertEqual(device.allocator.bytesInUse, 0, "nothing kept after endCall")
            } else {
                XCTAssertEqual(state.statistics.prefetchCount, 0, "the tracing forward copies on demand")
            }
            state.statistics.reset()
            device.allocator.resetPeak()
            let out = try model(sample, timestep: t, encoderHiddenStates: context).to(.cpu).floats()
            try model.endCall()
            return (state.statistics.waitSeconds, state.statistics.prefetchCount, device.allocator.peakBytes, out)
        }
        let blocking = try measure(false), prefetched = try measure(true), deep = try measure(true, ahead: weights / 4)
        print("transfer wait per forward: blocking \(String(format: "%.3f", blocking.wait)) s, one group ahead \(String(format: "%.3f", prefetched.wait)) s, a quarter of the weights ahead \(String(format: "%.3f", deep.wait)) s")
        XCTAssertEqual(blocking.prefetches, 0)
        XCTAssertGreaterThan(prefetched.prefetches, 10, "every traced group after the first is prefetched")
        XCTAssertGreaterThan(deep.prefetches, prefetched.prefetches, "each group ahead of need, and the next forward's first groups")
        XCTAssertEqual(prefetched.output, blocking.output)
        XCTAssertEqual(deep.output, blocking.output)
        XCTAssertGreaterThanOrEqual(deep.peak, prefetched.peak, "looking further ahead holds more on the device")
    }

    func testBadOptionsAreClearErrors() throws {
        let unet = try makeUNet()
        XCTAssertThrowsError(try unet.applyGroupOffloading(device: .accel(0), options: GroupOffloadOptions(type: .leafLevel, recordStream: true))) {
            XCTAssertTrue("\($0)".contains("recordStream requires useStream"), "\($0)")
        }
        XCTAssertThrowsError(try unet.applyGroupOffloading(device: .accel(0), options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 0))))
        XCTAssertThrowsError(try unet.applyGroupOffloading(device: .cpu, options: GroupOffloadOptions(type: .leafLevel, useStream: true)))
        XCTAssertTrue(unet.allHooks().isEmpty, "a refused strategy leaves nothing behind")
        try unet.enableSequentialCPUOffload(device: .accel(0))
        XCTAssertThrowsError(try unet.applyGroupOffloading(device: .accel(0), options: GroupOffloadOptions(type: .leafLevel))) {
            XCTAssertTrue("\($0)".contains("removeAllHooks"), "\($0)")
        }
        XCTAssertThrowsError(try unet.convIn.registerHook(ResidencyProbe(), name: OffloadHookName.sequential))
    }
}

private final class ResidencyProbe: ModuleHook, @unchecked Sendable {}
