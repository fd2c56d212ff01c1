import Foundation
import Models
import NN
import Offload
import Pipelines
import Tensor
import XCTest

/// `Module.capture` / `UNet2DConditionModel.capture(inputShapes:)` on the tiny UNet: replays
/// equal the eager forward bit for bit, activations live in the planned arena, hooks fire.
final class GraphCaptureTests: XCTestCase {
    func shapes(_ sample: Tensor, _ t: Tensor, _ context: Tensor) -> UNet2DConditionModel.InputShapes {
        .init(sample: sample, timestep: t, encoderHiddenStates: context)
    }

    func testReplayIsBitEqualAndActivationsStayInTheArena() throws {
        let device = Device.accel(30)
        let unet = try TinyUNet.load()
        try unet.moveParameters(to: device)
        let (sample, t, context) = try TinyUNet.inputs()
        _ = try unet(sample, timestep: t, encoderHiddenStates: context)
        let weights = device.allocator.bytesInUse
        let (eager, eagerPeak) = try device.allocator.measuringPeak { try unet(sample, timestep: t, encoderHiddenStates: context) }
        let base = device.allocator.bytesInUse   // weights and the eager output

        let captured = try unet.capture(inputShapes: shapes(sample, t, context))
        let plan = captured.plan
        // The plan is known before any replay; the arena is accounted to the device once.
        XCTAssertEqual(device.allocator.bytesInUse, base + plan.arenaBytes)
        XCTAssertEqual(plan.eagerPeakBytes, eagerPeak - weights, "the recording saw every activation the allocator did")
        XCTAssertLessThanOrEqual(plan.arenaBytes, plan.eagerPeakBytes, "planning never needs more than the eager peak here")
        XCTAssertGreaterThan(plan.inPlaceCount, 0, "element-wise operations on dying inputs reuse their bytes")
        XCTAssertEqual(plan.outputBytes, eager.byteCount)
        XCTAssertGreaterThan(plan.operationCount, 100)

        for _ in 0..<2 {
            let (replayed, replayPeak) = try device.allocator.measuringPeak { try captured(sample, timestep: t, encoderHiddenStates: context) }
            XCTAssertEqual(try replayed.bytes(), try eager.bytes(), "a replay equals the eager forward bit for bit")
            XCTAssertEqual(captured.forward.graph.lastReplayFallbacks, 0, "every activation found its planned slice")
            // Beyond the arena only the output and per-thread kernel workspace (attention
            // tiles, allocated inside parallel loops) are allocated.
            XCTAssertLessThan(replayPeak - base - plan.arenaBytes, plan.outputBytes + 1 << 20)
        }
    }

    /// Counts the forwards of the module it is registered on.
    final class CountingHook: ModuleHook, @unchecked Sendable {
        var calls = 0
        func preForward(_ module: Module) throws { calls += 1 }
    }

    func testHooksFireInReplayWithLayerwiseCastingAndGroupOffload() throws {
        let device = Device.accel(31)
        let unet = try TinyUNet.load()
        try unet.enableLayerwiseCasting(storage: .f8e4m3fn, compute: .f32)
        _ = try unet.applyGroupOffloading(device: device, options: GroupOffloadOptions(type: .leafLevel, useStream: true))
        let counter = CountingHook()
        try unet.convIn.registerHook(counter, name: "count")
        let (sample, t, context) = try TinyUNet.inputs()
        _ = try unet(sample, timestep: t, encoderHiddenStates: context)
        let eager = try unet(sample, timestep: t, encoderHiddenStates: context).to(.cpu)

        let captured = try unet.capture(inputShapes: shapes(sample, t, context))
        let before = counter.calls
        let weightsAtRest = device.allocator.bytesInUse
        for _ in 0..<2 {
            let replayed = try captured(sample, timestep: t, encoderHiddenStates: context).to(.cpu)
            XCTAssertEqual(try replayed.bytes(), try eager.bytes(), "cast and offloaded, a replay still equals the eager forward")
        }
        XCTAssertEqual(counter.calls, before + 2, "hooks fire in every replay")
        XCTAssertEqual(device.allocator.bytesInUse, weightsAtRest, "the offload hooks took their weights back after each replay")
        XCTAssertEqual(captured.forward.graph.lastReplayFallbacks, 0)
    }

    func testInputsOtherThanTheCapturedOnesAreAnError() throws {
        let unet = try TinyUNet.load()
        let (sample, t, context) = try TinyUNet.inputs()
        let captured = try unet.capture(inputShapes: shapes(sample, t, context))
        let wider = try Tensor.zeros([sample.shape[0], sample.shape[1], sample.shape[2], sample.shape[3] * 2])
        XCTAssertThrowsError(try captured(wider, timestep: t, encoderHiddenStates: context)) { error in
            guard case CaptureError.inputMismatch(let message)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("input 0"), message)
        }
        XCTAssertThrowsError(try captured(sample.to(.bf16), timestep: t, encoderHiddenStates: context))
        // Still usable after a refused call.
        XCTAssertNoThrow(try captured(sample, timestep: t, encoderHiddenStates: context))
    }

    func testADynamicDimensionCannotBeCaptured() throws {
        let unet = try TinyUNet.load()
        let (sample, t, context) = try TinyUNet.inputs()
        var specs = shapes(sample, t, context)
        specs.sample.shape[0] = -1
        XCTAssertThrowsError(try unet.capture(inputShapes: specs)) { error in
            guard case CaptureError.dynamicShape(let message)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("input 0"), message)
        }
    }

    /// A forward that takes another path than the recorded one fails instead of computing
    /// into bytes that are still in use.
    func testAReplayThatLeavesTheRecordedPathIsAnError() throws {
        let module = Module()
        final class Switch: @unchecked Sendable { var relu = false }
        let path = Switch()
        let captured = try module.capture(inputs: [TensorSpec([4, 64])]) { inputs -> Tensor in
            let h = try inputs[0] + 1
            return try path.relu ? h.relu() : h.silu()
        }
        let x = try Tensor((0..<256).map { Float($0) / 64 - 2 }, shape: [4, 64])
        XCTAssertEqual(try captured([x]).floats(), try (x + 1).silu().floats())
        path.relu = true
        XCTAssertThrowsError(try captured([x])) { error in
            guard case CaptureError.diverged(let message)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("unary.relu") && message.contains("unary.silu"), message)
        }
        path.relu = false
        XCTAssertEqual(try captured([x]).floats(), try (x + 1).silu().floats(), "a failed replay leaves the graph usable")
    }

    /// An input read by a copy outside the backend after an element-wise operation is not
    /// overwritten by that operation's output; one nothing reads again is.
    func testInPlaceNeverOverwritesAnInputReadAfterwards() throws {
        let module = Module()
        let captured = try module.capture(inputs: [TensorSpec([4, 64])]) { inputs -> Tensor in
            let h = try inputs[0] + 1
            let s = try h.silu()              // h is still read below: not in place
            let copy = try h.to(.bf16)        // a copy outside the backend
            let t = try (s * 2).exp()         // s * 2 dies at once: exp may write over it
            return try t + copy.to(.f32)
        }
        let x = try Tensor((0..<256).map { Float($0) / 128 - 1 }, shape: [4, 64])
        let h = try x + 1
        let expected = try ((h.silu() * 2).exp() + h.to(.bf16).to(.f32)).floats()
        XCTAssertEqual(try captured([x]).floats(), expected)
        XCTAssertEqual(try captured([x]).floats(), expected)
        XCTAssertGreaterThan(captured.plan.inPlaceCount, 0)
    }

    func testCapturingInsideACaptureIsAnError() throws {
        let module = Module()
        let inner = try module.capture(inputs: [TensorSpec([8])]) { try $0[0] * 2 }
        let outer = try module.capture(inputs: [TensorSpec([8])]) { try $0[0] + 1 }
        XCTAssertThrowsError(try GraphCapture.record(on: .cpu) { try outer([Tensor.zeros([8])]) }) { error in
            guard case CaptureError.nested? = error as? CaptureError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try inner([Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [8])]).floats(), [2, 4, 6, 8, 10, 12, 14, 16])
    }

    /// `enableUNetCapture`: the pipeline's images are the eager ones bit for bit, alone and
    /// with model offload, and the arena does not outlive the call.
    func testPipelineCaptureGivesThePlainImage() throws {
        let pipeline = try StableDiffusionPipeline(folder: OffloadStrategyTests.root + "/tiny-sd")
        var options = GenerationOptions.tinyOneStep()
        options.steps = 4
        let plain = try pipeline.generate(options).images.floats()
        pipeline.enableUNetCapture()
        XCTAssertEqual(try pipeline.generate(options).images.floats(), plain, "captured: the plain image")
        let plan = try XCTUnwrap(pipeline.lastUNetCapturePlan)
        XCTAssertLessThanOrEqual(plan.arenaBytes, plan.eagerPeakBytes)

        let device = Device.accel(32)
        try pipeline.enableModelCPUOffload(device: device)
        XCTAssertEqual(try pipeline.generate(options).images.floats(), plain, "captured with model offload: the plain image")
        XCTAssertEqual(device.allocator.bytesInUse, 0, "the arena went with the call")
        try pipeline.removeAllHooks()
        pipeline.disableUNetCapture()
        XCTAssertNil(pipeline.lastUNetCapturePlan)
    }
}
