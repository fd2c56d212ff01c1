// The FLUX transformer's forward and one block of each kind at an image size, resident on the
// CPU (weights mapped from the folder's checkpoint, as `diffuse generate` holds them), for the
// "resident step scaled per block" of BENCHMARKS.md's headline: a reduced-depth transformer's
// forward plus the blocks it lacks, each timed on its own. Prints one JSON object.
//
//   swift run -c release FluxBenchmark DIR [--size 512] [--text 512] [--dtype bf16|f32] [--reps 2]
//       [--scale-to DUAL,SINGLE (default 19,38: FLUX.1's depth)]
//   swift run -c release FluxBenchmark DIR --text-encoder [--owned] [--text 512] [--dtype …] [--reps N]
// DIR is a pipeline folder (tools/reference/make_flux_random.py, e.g. --dual 4 --single 8).
import Foundation
import Models
import NN
import Tensor

func argument(_ name: String, _ fallback: String) -> String {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
    return args[i + 1]
}

/// The median seconds of `reps` runs of `body` after one warm-up run.
func timed(_ reps: Int, _ body: () throws -> Void) throws -> Double {
    try body()
    var seconds: [Double] = []
    for _ in 0..<reps {
        let start = Date()
        try body()
        seconds.append(Date().timeIntervalSince(start))
    }
    return seconds.sorted()[seconds.count / 2]
}

func run() throws {
    guard CommandLine.arguments.count > 1, !CommandLine.arguments[1].hasPrefix("--") else {
        throw TensorError.invalidArgument("usage: FluxBenchmark DIR [--size PX] [--text N] [--dtype bf16|f32] [--reps N] [--scale-to D,S]")
    }
    let folder = CommandLine.arguments[1] + "/transformer"
    guard let dtype = DType(name: argument("--dtype", "bf16")), dtype == .f32 || dtype == .bf16,
          let size = Int(argument("--size", "512")), size >= 16, size % 16 == 0,
          let text = Int(argument("--text", "512")), text > 0, let reps = Int(argument("--reps", "2")), reps > 0 else {
        throw TensorError.invalidArgument("--dtype takes f32 or bf16, --size a multiple of 16, --text and --reps positive integers")
    }
    if CommandLine.arguments.contains("--text-encoder") {
        return try runTextEncoder(CommandLine.arguments[1], dtype: dtype, text: text, reps: reps)
    }
    let target = argument("--scale-to", "19,38").split(separator: ",").compactMap { Int($0) }
    guard target.count == 2 else { throw TensorError.invalidArgument("--scale-to takes DUAL,SINGLE") }
    let model = FluxTransformer2DModel(try FluxTransformer2DConfig(ModelConfig(path: folder + "/config.json")))
    let checkpoint = try Checkpoint(folder: folder)
    // The folders hold bf16 weights: bf16 keeps them mapped (as the pipeline does on the CPU), f32 converts them.
    try model.load(from: checkpoint, dtype: dtype == .bf16 ? nil : dtype)
    let c = model.config, side = size / 16
    let tokens = side * side
    var generator = TorchGenerator(seed: 0)
    let x = try generator.randn([1, tokens, c.inChannels]).to(dtype)
    let context = try generator.randn([1, text, c.jointAttentionDim]).to(dtype)
    let pooled = try generator.randn([1, c.pooledProjectionDim]).to(dtype)
    let t = try Tensor([0.75], shape: [1]).to(dtype), g = try Tensor([3.5], shape: [1])
    var ids: [Float] = []
    for r in 0..<side { for col in 0..<side { ids += [0, Float(r), Float(col)] } }
    let imageIds = try Tensor(ids, shape: [tokens, 3]), textIds = try Tensor.zeros([text, 3])
    let whole = try timed(reps) {
        _ = try model(x, encoderHiddenStates: context, pooledProjections: pooled, timestep: t, imageIds: imageIds, textIds: textIds,
                      guidance: c.guidanceEmbeds ? g : nil)
    }
    // One block of each kind on inputs of the shapes they see.
    let d = c.innerDim
    let h = try generator.randn([1, tokens, d]).to(dtype), ctx = try generator.randn([1, text, d]).to(dtype)
    let temb = try generator.randn([1, d]).to(dtype)
    let rotary = try model.posEmbed(Tensor.concat([textIds, imageIds], axis: 0))
    let dual = try model.transformerBlocks.items.first.map { block in try timed(reps) { _ = try block(h, context: ctx, temb: temb, rotary: rotary) } } ?? 0
    let single = try model.singleTransformerBlocks.items.first.map { block in
        try timed(reps) { _ = try block(h, context: ctx, temb: temb, rotary: rotary) }
    } ?? 0
    let scaled = whole + Double(target[0] - c.numLayers) * dual + Double(target[1] - c.numSingleLayers) * single
    let result: [String: Any] = [
        "size": size, "text_tokens": text, "dtype": "\(dtype)", "threads": ProcessInfo.processInfo.activeProcessorCount,
        "dual": c.numLayers, "single": c.numSingleLayers, "forward_s": whole, "dual_block_s": dual, "single_block_s": single,
        "scaled_to": target, "scaled_forward_s": scaled, "process_peak_rss_bytes": ProcessMemory.peakResidentBytes ?? 0,
    ]
    let json = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: json, as: UTF8.self))
}

do { try run() } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}

/// `--text-encoder`: the folder's T5 (`text_encoder_2`) on `--text` tokens, each call timed —
/// the first call beside later ones, its weights mapped (as the pipeline holds them) or, with
/// `--owned`, copied into the process's memory first.
func runTextEncoder(_ root: String, dtype: DType, text: Int, reps: Int) throws {
    let folder = root + "/text_encoder_2"
    let model = T5EncoderModel(try T5Config(ModelConfig(path: folder + "/config.json")))
    try model.load(from: try Checkpoint(folder: folder), dtype: dtype == .bf16 ? nil : dtype)
    if CommandLine.arguments.contains("--owned") {
        for (_, slot) in model.namedParameters() where slot.value?.storage.isMapped == true { slot.value = try slot.value?.copied() }
    } else {
        model.populateMappedWeightPages()
    }
    let ids = try Tensor((0..<text).map { Float(($0 * 7919) % 32000) }, shape: [1, text]).to(.i64)
    let c = model.config
    // Linear FLOPs of one call: q, k, v, o (inner = heads × d_kv) and the gated feed-forward.
    let inner = c.numHeads * c.dKV
    let flops = 2.0 * Double(text) * Double(c.numLayers) * Double(4 * c.dModel * inner + 3 * c.dModel * c.dFF)
    var seconds: [Double] = [], linearSeconds: [Double] = []
    for _ in 0..<reps {
        let profile = OpProfile()
        let start = Date()
        _ = try profile.record {
            OpProfile.beginSection("t5")
            return try model(ids)
        }
        seconds.append(Date().timeIntervalSince(start))
        linearSeconds.append(profile.sections["t5"]?.operations["linear"] ?? 0)
    }
    let result: [String: Any] = ["text_tokens": text, "dtype": "\(dtype)", "owned": CommandLine.arguments.contains("--owned"),
                                 "call_s": seconds, "linear_s": linearSeconds, "linear_gflop": flops / 1e9,
                                 "linear_gflops": linearSeconds.map { flops / $0 / 1e9 }]
    let json = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: json, as: UTF8.self))
}
