import Foundation
import NN
import Tensor

/// The fuzz suite's cases: malformed configs, weights, tokenizers, scheduler configs, model
/// indexes, images, latents, options, output paths and special files, derived from the demo
/// pipeline, for `generate`, `inspect`, `shard` and `cast`; plus the valid controls.
enum FuzzCases {
    typealias R = FuzzCase.Replacement

    /// A quick generate of the (mutated) pipeline in `{model}` writing into `{out}`.
    static func generate(_ extra: [String] = []) -> [String] {
        ["generate", "--model", "{model}", "--prompt", "a red circle on a blue background", "--steps", "2",
         "--width", "32", "--height", "32", "--out", "{out}/image.png"] + extra
    }

    static func all(base: String) throws -> [FuzzCase] {
        try configs(base: base) + weights(base: base) + tokenizers(base: base) + schedulers(base: base)
            + indexes(base: base) + options() + paths() + inspect(base: base) + shard(base: base) + cast(base: base)
            + controls(base: base)
    }

    static func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    // MARK: Model configs

    static func configs(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func mutate(_ file: String, _ key: String, _ values: [String?]) throws {
            let original = try text(base + "/" + file)
            for value in values {
                let label = value ?? "removed"
                cases.append(FuzzCase(name: "\(file) \(key)=\(label)", arguments: generate(),
                                      replacing: [file: .text(try JSONMutation.setting(key, to: value, in: original))],
                                      fragment: file))
            }
        }
        let unet = "unet/config.json", vae = "vae/config.json", clip = "text_encoder/config.json"
        try mutate(unet, "attention_head_dim", ["0", "-8", "\"eight\"", "7"])
        try mutate(unet, "norm_num_groups", ["0", "-32", "7", "1e30"])
        try mutate(unet, "layers_per_block", ["1000000", "0", "-1"])
        try mutate(unet, "block_out_channels", ["[]", "[0, 96, 96]", "[64, -96, 96]", "\"64\""])
        try mutate(unet, "norm_eps", ["NaN", "Infinity", "0", "-1e-5"])
        try mutate(unet, "cross_attention_dim", ["0", "77", "-128"])
        try mutate(unet, "in_channels", ["0", "3", "-4"])
        try mutate(unet, "down_block_types", ["[\"DownBlock2D\"]", "[\"Bogus\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"]"])
        try mutate(unet, "transformer_layers_per_block", ["0", "100000"])
        try mutate(vae, "norm_num_groups", ["0", "5"])
        try mutate(vae, "scaling_factor", ["NaN", "Infinity", "0", "-Infinity"])
        try mutate(vae, "shift_factor", ["NaN", "Infinity"])
        try mutate(vae, "latent_channels", ["0", "3"])
        try mutate(vae, "layers_per_block", ["1000000", "0"])
        try mutate(vae, "block_out_channels", ["[]", "[32, 0, 64]"])
        try mutate(clip, "layer_norm_eps", ["NaN", "Infinity", "0"])
        try mutate(clip, "num_attention_heads", ["0", "3"])
        try mutate(clip, "hidden_size", ["0", "-128", "127"])
        try mutate(clip, "num_hidden_layers", ["1000000", "-1"])
        try mutate(clip, "max_position_embeddings", ["0", "10"])
        try mutate(clip, "vocab_size", ["0", "10"])
        for file in [unet, vae, clip] {
            cases.append(FuzzCase(name: "\(file) not JSON", arguments: generate(), replacing: [file: .text("{\"a\": ")], fragment: file))
            cases.append(FuzzCase(name: "\(file) an array", arguments: generate(), replacing: [file: .text("[1, 2]")], fragment: file))
            cases.append(FuzzCase(name: "\(file) a FIFO", arguments: generate(), replacing: [file: .fifo], fragment: file))
            cases.append(FuzzCase(name: "\(file) a folder", arguments: generate(), replacing: [file: .folder], fragment: file))
        }
        return cases
    }

    // MARK: Weights

    static func weights(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        let files = ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                     "text_encoder/model.safetensors"]
        for file in files {
            let path = base + "/" + file
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let add = { (name: String, replacement: R, fragment: String) in
                cases.append(FuzzCase(name: "\(file) \(name)", arguments: generate(), replacing: [file: replacement], fragment: fragment))
            }
            add("a FIFO", .fifo, file)
            add("a folder", .folder, file)
            add("linked to /dev/zero", .link("/dev/zero"), file)
            add("linked to /dev/urandom", .link("/dev/urandom"), file)
            add("empty", .bytes([]), file)
            add("truncated header", .bytes(Array(bytes.prefix(100))), file)
            add("truncated data", .bytes(Array(bytes.prefix(bytes.count / 2))), file)
            add("header length huge", .bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + bytes.dropFirst(8)), file)
            add("header not JSON", .bytes([8, 0, 0, 0, 0, 0, 0, 0] + Array("not json".utf8)), file)
            add("all NaN", .bytes(try SafeTensorsMutation.filled(path, with: .nan)), "NaN")
            add("all infinite", .bytes(try SafeTensorsMutation.filled(path, with: .infinity)), "NaN")
        }
        let unet = base + "/" + files[0], clip = base + "/" + files[2]
        cases.append(FuzzCase(name: "unet BOOL weight", arguments: generate(),
                              replacing: [files[0]: .bytes(try SafeTensorsMutation.retyped(unet, tensor: "conv_in.weight", to: .bool))],
                              fragment: "conv_in.weight"))
        cases.append(FuzzCase(name: "unet I64 bias", arguments: generate(),
                              replacing: [files[0]: .bytes(try SafeTensorsMutation.retyped(unet, tensor: "conv_in.bias", to: .i64))],
                              fragment: "conv_in.bias"))
        cases.append(FuzzCase(name: "unet missing tensor", arguments: generate(),
                              replacing: [files[0]: .bytes(try SafeTensorsMutation.dropping(unet, tensor: "conv_out.weight"))],
                              fragment: "conv_out.weight"))
        cases.append(FuzzCase(name: "unet renamed tensor", arguments: generate(),
                              replacing: [files[0]: .bytes(try SafeTensorsMutation.dropping(unet, tensor: "conv_in.bias", renamed: "conv_in.biass"))],
                              fragment: "conv_in"))
        cases.append(FuzzCase(name: "unet wrong shape", arguments: generate(),
                              replacing: [files[0]: .bytes(try SafeTensorsMutation.reshaped(unet, tensor: "conv_in.weight"))],
                              fragment: "conv_in.weight"))
        cases.append(FuzzCase(name: "clip BOOL embedding", arguments: generate(),
                              replacing: [files[2]: .bytes(try SafeTensorsMutation.retyped(clip, tensor: "text_model.embeddings.token_embedding.weight", to: .bool))],
                              fragment: "token_embedding"))
        cases.append(FuzzCase(name: "unet weights missing", arguments: generate(), replacing: [files[0]: .folder], fragment: "unet"))
        return cases
    }

    // MARK: Tokenizers

    static func tokenizers(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        for file in ["tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json"] {
            let add = { (name: String, replacement: R) in
                cases.append(FuzzCase(name: "\(file) \(name)", arguments: generate(), replacing: [file: replacement], fragment: file))
            }
            add("a FIFO", .fifo)
            add("a folder", .folder)
            add("linked to /dev/urandom", .link("/dev/urandom"))
            add("not UTF-8", .bytes([0xFF, 0xFE, 0x00, 0x41]))
        }
        cases.append(FuzzCase(name: "vocab.json truncated", arguments: generate(), replacing: ["tokenizer/vocab.json": .text("{\"a\": 1,")],
                              fragment: "vocab.json"))
        cases.append(FuzzCase(name: "vocab.json an array", arguments: generate(), replacing: ["tokenizer/vocab.json": .text("[1]")],
                              fragment: "vocab.json"))
        let config = try text(base + "/tokenizer/tokenizer_config.json")
        for value in ["0", "-1", "\"long\"", "NaN"] {
            cases.append(FuzzCase(name: "model_max_length=\(value)", arguments: generate(),
                                  replacing: ["tokenizer/tokenizer_config.json": .text(try JSONMutation.setting("model_max_length", to: value, in: config))],
                                  fragment: "tokenizer_config.json"))
        }
        return cases
    }

    // MARK: Scheduler configs

    static func schedulers(base: String) throws -> [FuzzCase] {
        let file = "scheduler/scheduler_config.json"
        let original = try text(base + "/" + file)
        var cases: [FuzzCase] = []
        func mutate(_ changes: [(String, String?)], _ label: String) throws {
            var text = original
            for (key, value) in changes { text = try JSONMutation.setting(key, to: value, in: text) }
            cases.append(FuzzCase(name: "scheduler \(label)", arguments: generate(), replacing: [file: .text(text)], fragment: file))
        }
        try mutate([("beta_start", "0"), ("beta_end", "0")], "zero betas")
        try mutate([("beta_start", "NaN")], "NaN beta_start")
        try mutate([("beta_end", "Infinity")], "infinite beta_end")
        try mutate([("beta_start", "0.5"), ("beta_end", "2")], "betas above 1")
        try mutate([("num_train_timesteps", "0")], "no training timesteps")
        try mutate([("num_train_timesteps", "-1000")], "negative training timesteps")
        try mutate([("beta_schedule", "\"bogus\"")], "unknown beta schedule")
        try mutate([("prediction_type", "\"bogus\"")], "unknown prediction type")
        try mutate([("timestep_spacing", "\"bogus\"")], "unknown timestep spacing")
        try mutate([("solver_order", "0")], "solver order 0")
        try mutate([("_class_name", "\"BogusScheduler\"")], "unknown class")
        cases.append(FuzzCase(name: "scheduler a FIFO", arguments: generate(), replacing: [file: .fifo], fragment: file))
        cases.append(FuzzCase(name: "scheduler not JSON", arguments: generate(), replacing: [file: .text("{")], fragment: file))
        return cases
    }

    // MARK: model_index.json

    static func indexes(base: String) throws -> [FuzzCase] {
        let file = "model_index.json"
        let original = try text(base + "/" + file)
        var cases: [FuzzCase] = []
        func add(_ name: String, _ replacement: R, fragment: String = "model_index.json") {
            cases.append(FuzzCase(name: "index \(name)", arguments: generate(), replacing: [file: replacement], fragment: fragment))
        }
        add("not JSON", .text("{\"unet\": "))
        add("an array", .text("[]"))
        add("a FIFO", .fifo)
        add("a folder", .folder)
        add("no unet", .text(try JSONMutation.setting("unet", to: nil, in: original)), fragment: "unet")
        add("unknown unet class", .text(try JSONMutation.setting("unet", to: "[\"diffusers\", \"BogusUNet\"]", in: original)), fragment: "BogusUNet")
        add("unet path escapes", .text(try JSONMutation.setting("../unet", to: "[\"diffusers\", \"UNet2DConditionModel\"]", in: original)),
            fragment: "../unet")
        add("component not a pair", .text(try JSONMutation.setting("vae", to: "[\"diffusers\"]", in: original)), fragment: "vae")
        add("unknown pipeline class", .text(try JSONMutation.setting("_class_name", to: "\"KandinskyPipeline\"", in: original)),
            fragment: "KandinskyPipeline")
        cases.append(FuzzCase(name: "index missing", arguments: generate(), replacing: [file: .folder], fragment: "model_index.json"))
        return cases
    }

    // MARK: Options

    static func options() -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ extra: [String], _ fragment: String) {
            cases.append(FuzzCase(name: "option \(extra.joined(separator: " "))", arguments: generate(extra), fragment: fragment))
        }
        for value in ["nan", "inf", "-inf", "1e39", "abc"] { add(["--guidance", value], "--guidance") }
        for value in ["0", "-1", "abc", "100000"] { add(["--steps", value], "--steps") }
        for value in ["0", "-1", "4611686018427387904", "9223372036854775807", "x"] { add(["--batch", value], "--batch") }
        for value in ["-5", "abc", "1e5", "18446744073709551616"] { add(["--seed", value], "--seed") }
        for value in ["0", "-3", "9223372036854775808", "x", "1"] { add(["--images-per-chunk", value], "--images-per-chunk") }
        for value in ["50", "0", "-64", "20000", "33"] { add(["--width", value], "width") }
        add(["--height", "12"], "height")   // not a multiple of 8 (8 itself runs, as in Diffusers)
        add(["--scheduler", "bogus"], "--scheduler")
        add(["--timestep-spacing", "bogus"], "--timestep-spacing")
        add(["--scheduler", "pndm", "--karras-sigmas"], "--karras-sigmas")
        add(["--scheduler", "ddim", "--karras-sigmas"], "--karras-sigmas")
        add(["--scheduler", "flow-match"], "flow-matching velocity")  // a noise-predicting UNet
        add(["--strength", "0.5"], "--strength")
        add(["--stream"], "--stream")
        add(["--record-stream"], "--record-stream")
        add(["--prefetch-bytes", "1GB"], "--prefetch-bytes")
        add(["--low-cpu-mem"], "--low-cpu-mem")
        add(["--max-memory", "cpu=1GB"], "--max-memory")
        add(["--blocks-per-group", "2"], "--blocks-per-group")
        add(["--offload-dir", "{work}"], "--offload-dir")
        add(["--accel-capacity", "0=1GB"], "--accel-capacity")
        add(["--offload", "bogus"], "--offload")
        add(["--offload", "group-block", "--blocks-per-group", "0"], "--blocks-per-group")
        add(["--offload", "group-block"], "--blocks-per-group")
        add(["--offload", "model"], "--offload model")
        add(["--dtype", "f64"], "--dtype")
        add(["--storage-dtype", "int4"], "--storage-dtype")
        add(["--attention", "bogus"], "--attention")
        add(["--attention", "sliced:0"], "sliced")
        add(["--vae-tile-size", "64"], "--vae-tile-size")
        add(["--vae-tiling", "--vae-tile-size", "-8"], "--vae-tile-size")
        add(["--profile"], "--profile")
        add(["--device", "cuda:0"], "cuda:0")
        add(["--device", "accel:x"], "accel:x")
        add(["--device-map", "bogus"], "bogus")
        add(["--device-map", "auto", "--offload", "sequential", "--device", "accel:0"], "--device-map")
        add(["--accel-capacity", "0=lots", "--device", "accel:0"], "lots")
        add(["--no-such-option"], "--no-such-option")
        return cases
    }

    // MARK: Input and output paths

    static func paths() -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ name: String, _ extra: [String], _ fragment: String, prepare: [(String, R)] = [], out: String? = nil) {
            var arguments = generate()
            if let out, let index = arguments.firstIndex(of: "{out}/image.png") { arguments[index] = out }
            // A second --model replaces the case's pipeline instead of repeating the option.
            var rest = extra
            if rest.first == "--model", rest.count >= 2, let index = arguments.firstIndex(of: "{model}") {
                arguments[index] = rest[1]
                rest.removeFirst(2)
            }
            arguments += rest
            cases.append(FuzzCase(name: "path \(name)", arguments: arguments, prepare: prepare.map { ($0.0, $0.1) }, fragment: fragment))
        }
        add("out folder missing", [], "{out}/missing", out: "{out}/missing/image.png")
        add("out is a folder", [], "{out}/taken.png", prepare: [("{out}/taken.png", .folder)], out: "{out}/taken.png")
        add("out is a FIFO", [], "{out}/pipe.png", prepare: [("{out}/pipe.png", .fifo)], out: "{out}/pipe.png")
        add("out ends in a slash", [], "{out}/", out: "{out}/")
        add("out under a file", [], "{work}/plain", prepare: [("{work}/plain", .text("x"))], out: "{work}/plain/image.png")
        add("out jpeg-named gif", [], ".gif", out: "{out}/image.gif")
        add("out without extension", [], "{out}/image", out: "{out}/image")
        add("report is out", ["--report", "{out}/image.png"], "--report")
        add("save-tensor is report", ["--save-tensor", "{out}/r.json", "--report", "{out}/r.json"], "--save-tensor")
        add("report spelled apart", ["--report", "{out}/./image.png"], "--report")
        add("report in missing folder", ["--report", "{out}/no/r.json"], "{out}/no")
        add("save-tensor is a folder", ["--save-tensor", "{out}/t"], "{out}/t", prepare: [("{out}/t", .folder)])
        add("out overwrites the image", ["--image", "{work}/in.png"], "--image", prepare: [("{work}/in.png", .link("{root}/Tests/Fixtures/tiny-sd/init.png"))],
            out: "{work}/in.png")
        add("image FIFO", ["--image", "{work}/in.png"], "{work}/in.png", prepare: [("{work}/in.png", .fifo)])
        add("image /dev/zero", ["--image", "/dev/zero"], "/dev/zero")
        add("image folder", ["--image", "{work}"], "{work}")
        add("image missing", ["--image", "{work}/none.png"], "{work}/none.png")
        add("image not PNG", ["--image", "{work}/text.png"], "{work}/text.png", prepare: [("{work}/text.png", .text("hello"))])
        add("image truncated", ["--image", "{work}/cut.png"], "{work}/cut.png",
            prepare: [("{work}/cut.png", .bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]))])
        add("latents FIFO", ["--latents", "{work}/l.safetensors"], "{work}/l.safetensors", prepare: [("{work}/l.safetensors", .fifo)])
        add("latents /dev/urandom", ["--latents", "/dev/urandom"], "/dev/urandom")
        add("latents missing", ["--latents", "{work}/none.safetensors"], "{work}/none.safetensors")
        add("latents garbage", ["--latents", "{work}/g.safetensors"], "{work}/g.safetensors", prepare: [("{work}/g.safetensors", .text("garbage!"))])
        func latents(_ name: String, _ shape: [Int], _ value: Float, dtype: DType = .f32) -> R {
            let tensor = try? Tensor([Float](repeating: value, count: shape.reduce(1, *)), shape: shape, dtype: dtype)
            return .bytes((try? SafeTensorsWriter.serialize(tensor.map { [name: $0] } ?? [:])) ?? [])
        }
        add("latents all NaN", ["--latents", "{work}/l.safetensors"], "initial latents",
            prepare: [("{work}/l.safetensors", latents("latents", [1, 4, 8, 8], .nan))])
        add("latents infinite", ["--latents", "{work}/l.safetensors"], "initial latents",
            prepare: [("{work}/l.safetensors", latents("latents", [1, 4, 8, 8], -.infinity))])
        add("latents wrong shape", ["--latents", "{work}/l.safetensors"], "[1, 4, 8, 8]",
            prepare: [("{work}/l.safetensors", latents("latents", [1, 4, 16, 16], 0))])
        add("latents misnamed", ["--latents", "{work}/l.safetensors"], "latents",
            prepare: [("{work}/l.safetensors", latents("noise", [1, 4, 8, 8], 0))])
        add("latents boolean", ["--latents", "{work}/l.safetensors"], "{work}/l.safetensors",
            prepare: [("{work}/l.safetensors", latents("latents", [1, 4, 8, 8], 1, dtype: .bool))])
        add("model missing", ["--model", "{work}/nowhere"], "{work}/nowhere")
        add("model a file", ["--model", "{work}/m.safetensors"], "single file", prepare: [("{work}/m.safetensors", .text("x"))])
        add("model a FIFO", ["--model", "{work}/fifo"], "{work}/fifo", prepare: [("{work}/fifo", .fifo)])
        add("model an empty folder", ["--model", "{work}/empty"], "model_index.json", prepare: [("{work}/empty", .folder)])
        add("device map FIFO", ["--device-map", "{work}/map.json"], "{work}/map.json", prepare: [("{work}/map.json", .fifo)])
        add("device map garbage", ["--device-map", "{work}/map.json"], "{work}/map.json", prepare: [("{work}/map.json", .text("{\"unet\": [5]}"))])
        return cases
    }
}
