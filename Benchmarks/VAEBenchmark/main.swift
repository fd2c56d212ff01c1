// VAE decode of an SD 1.5-size AutoencoderKL (a pipeline folder's vae/, e.g. from
// tools/reference/make_sd15_random.py) on the accel:0 stand-in: plain, tiled or sliced, timed,
// with accel:0's allocator peak (weights excluded) and the process peak RSS.
//
//   swift run -c release VAEBenchmark DIR [--size 1024] [--batch 1] [--dtype f32|bf16] [--mode plain|tiled|sliced]
//       [--tile-size PX (tiled; default the VAE's sample_size)] [--memory-format contiguous|channels_last]
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
    guard CommandLine.arguments.count > 1, !CommandLine.arguments[1].hasPrefix("--") else {
        throw TensorError.invalidArgument("usage: VAEBenchmark DIR [--size PX] [--batch N] [--dtype f32|bf16] [--mode plain|tiled|sliced]")
    }
    let folder = CommandLine.arguments[1] + "/vae"
    guard let dtype = DType(name: argument("--dtype", "f32")), dtype == .f32 || dtype == .bf16 else {
        throw TensorError.invalidArgument("--dtype takes f32 or bf16")
    }
    guard let size = Int(argument("--size", "1024")), size > 0, size % 8 == 0, let batch = Int(argument("--batch", "1")), batch > 0 else {
        throw TensorError.invalidArgument("--size takes a positive multiple of 8, --batch a positive integer")
    }
    let mode = argument("--mode", "plain")
    guard let format = MemoryFormat(rawValue: argument("--memory-format", "contiguous")) else {
        throw TensorError.invalidArgument("--memory-format takes contiguous or channels_last")
    }
    let vae = AutoencoderKL(try AutoencoderKLConfig(ModelConfig(path: folder + "/config.json")))
    try vae.load(from: Checkpoint(folder: folder), dtype: dtype)
    let device = Device.accel(0)
    try vae.moveParameters(to: device)
    vae.setMemoryFormat(format)
    switch mode {
    case "plain": break
    case "tiled": try vae.enableTiling(sampleMinSize: Int(argument("--tile-size", "")))
    case "sliced": vae.enableSlicing()
    default: throw TensorError.invalidArgument("--mode takes plain, tiled or sliced")
    }
    let side = size / vae.config.downscaleFactor
    let latents = try Tensor((0..<(batch * vae.config.latentChannels * side * side)).map { Float(($0 * 7919) % 2001) / 1000 - 1 },
                             shape: [batch, vae.config.latentChannels, side, side], dtype: dtype).to(device)
    let weights = device.allocator.bytesInUse
    ProcessMemory.resetPeak()
    device.allocator.resetPeak()
    let start = Date()
    let out = try vae.decode(latents)
    let seconds = Date().timeIntervalSince(start)
    let peak = device.allocator.peakBytes - weights
    print(String(format: "vae decode %d² batch %d %@ %@ %@: %.2f s, accel peak %@ (beyond the weights), process peak RSS %@",
                 size, batch, "\(dtype)", mode, format.rawValue, seconds, formatBytes(peak), formatBytes(ProcessMemory.peakResidentBytes ?? 0)),
          out.shape)
}

do { try run() } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
