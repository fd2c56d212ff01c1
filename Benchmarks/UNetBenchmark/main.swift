// One UNet2DConditionModel call at Stable Diffusion 1.5's size (859.5 M parameters, random
// weights, latents 2×4×64×64 = 512×512 with guidance), timed, with the process peak RSS.
//
//   swift run -c release UNetBenchmark [--dtype f32|bf16] [--calls N] [--size 64] [--capture] [--memory-format contiguous|channels_last]
//
// With --capture the eager calls are followed by a capture (UNet2DConditionModel.capture)
// and as many replays: time and the cpu allocator's activation peak of each, side by side.
import Foundation
import Models
import NN
import Tensor

func argument(_ name: String, _ fallback: String) -> String {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
    return args[i + 1]
}

func run() throws {
    guard let dtype = DType(name: argument("--dtype", "f32")), dtype == .f32 || dtype == .bf16 else {
        throw TensorError.invalidArgument("--dtype takes f32 or bf16")
    }
    guard let calls = Int(argument("--calls", "2")), calls > 0, let size = Int(argument("--size", "64")), size > 0, size % 8 == 0 else {
        throw TensorError.invalidArgument("--calls and --size take positive integers (size a multiple of 8)")
    }
    var config = UNet2DConditionConfig()   // SD 1.5: 320/640/1280/1280, 8 heads, cross-attention 768
    config.crossAttentionDim = 768
    let unet = UNet2DConditionModel(config)
    var state: UInt64 = 42
    for (_, parameter) in unet.namedParameters() {
        let count = parameter.shape.reduce(1, *)
        let fanIn = parameter.shape.count > 1 ? parameter.shape.dropFirst().reduce(1, *) : 1
        let scale = 1 / Float(fanIn).squareRoot()
        let values = (0..<count).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 23) - 1) * scale
        }
        parameter.value = try Tensor(values, shape: parameter.shape, dtype: dtype)
    }
    guard let format = MemoryFormat(rawValue: argument("--memory-format", "contiguous")) else {
        throw TensorError.invalidArgument("--memory-format takes contiguous or channels_last")
    }
    unet.setMemoryFormat(format)
    print("parameters: \(unet.parameterCount), memory format \(format.rawValue)")
    let sample = try Tensor((0..<(2 * 4 * size * size)).map { Float(($0 * 7919) % 2001) / 1000 - 1 }, shape: [2, 4, size, size], dtype: dtype)
    let context = try Tensor((0..<(2 * 77 * 768)).map { Float(($0 * 104729) % 2001) / 1000 - 1 }, shape: [2, 77, 768], dtype: dtype)
    let timestep = try Tensor([981], shape: [1])
    ProcessMemory.resetPeak()
    let allocator = Device.cpu.allocator
    func timed(_ label: String, _ body: () throws -> Tensor) throws -> Tensor {
        let before = allocator.bytesInUse
        let start = Date()
        let (out, peak) = try allocator.measuringPeak(body)
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "%@: %.2f s", label, seconds), out.shape, "activation peak \(formatBytes(peak - before))",
              "peak RSS \(formatBytes(ProcessMemory.peakResidentBytes ?? 0))")
        return out
    }
    var eager: Tensor?
    for call in 1...calls {
        eager = try timed("call \(call)") { try unet(sample, timestep: timestep, encoderHiddenStates: context) }
    }
    guard CommandLine.arguments.contains("--capture") else { return }
    let start = Date()
    let captured = try unet.capture(inputShapes: .init(sample: sample, timestep: timestep, encoderHiddenStates: context))
    let plan = captured.plan
    print(String(format: "capture: %.2f s,", Date().timeIntervalSince(start)),
          "\(plan.operationCount) operations, \(plan.allocationCount) activations, \(plan.inPlaceCount) in place;",
          "arena \(formatBytes(plan.arenaBytes)) (eager peak \(formatBytes(plan.eagerPeakBytes)))")
    for call in 1...calls {
        let out = try timed("replay \(call) (arena held)") { try captured(sample, timestep: timestep, encoderHiddenStates: context) }
        print("  bit-equal to eager:", try out.bytes() == eager?.bytes())
    }
}

do { try run() } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
