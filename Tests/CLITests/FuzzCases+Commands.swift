import Foundation

extension FuzzCases {
    static let unetFolder = "unet", unetWeights = "unet/diffusion_pytorch_model.safetensors"

    // MARK: inspect

    static func inspect(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ name: String, _ path: String, _ fragment: String, prepare: [(String, R)] = []) {
            cases.append(FuzzCase(name: "inspect \(name)", arguments: ["inspect", path], prepare: prepare, fragment: fragment))
        }
        let weights = Array(try Data(contentsOf: URL(fileURLWithPath: base + "/" + unetWeights)))
        add("FIFO", "{work}/p.safetensors", "{work}/p.safetensors", prepare: [("{work}/p.safetensors", .fifo)])
        add("/dev/zero", "/dev/zero", "/dev/zero")
        add("/dev/urandom", "/dev/urandom", "/dev/urandom")
        add("missing", "{work}/none.safetensors", "{work}/none.safetensors")
        add("empty file", "{work}/e.safetensors", "{work}/e.safetensors", prepare: [("{work}/e.safetensors", .bytes([]))])
        add("garbage", "{work}/g.safetensors", "{work}/g.safetensors", prepare: [("{work}/g.safetensors", .text("not a checkpoint at all"))])
        add("truncated", "{work}/t.safetensors", "{work}/t.safetensors", prepare: [("{work}/t.safetensors", .bytes(Array(weights.prefix(4096))))])
        add("folder without weights", "{work}/empty", "{work}/empty", prepare: [("{work}/empty", .folder)])
        add("folder with FIFO weights", "{work}/m", "{work}/m/diffusion_pytorch_model.safetensors",
            prepare: [("{work}/m/diffusion_pytorch_model.safetensors", .fifo)])
        add("index naming a missing shard", "{work}/i/diffusion_pytorch_model.safetensors.index.json", "00001-of-00002",
            prepare: [("{work}/i/diffusion_pytorch_model.safetensors.index.json",
                       .text("{\"metadata\": {\"total_size\": 10}, \"weight_map\": {\"a\": \"diffusion_pytorch_model-00001-of-00002.safetensors\"}}"))])
        add("index not JSON", "{work}/j/diffusion_pytorch_model.safetensors.index.json", "index.json",
            prepare: [("{work}/j/diffusion_pytorch_model.safetensors.index.json", .text("{{{"))])
        add("index shard escapes", "{work}/k/diffusion_pytorch_model.safetensors.index.json", "../",
            prepare: [("{work}/k/diffusion_pytorch_model.safetensors.index.json",
                       .text("{\"metadata\": {}, \"weight_map\": {\"a\": \"../x.safetensors\"}}"))])
        add("pipeline with FIFO index", "{work}/pp", "model_index.json", prepare: [("{work}/pp/model_index.json", .fifo)])
        return cases
    }

    // MARK: shard

    static func shard(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ name: String, _ arguments: [String], _ fragment: String, prepare: [(String, R)] = [], replacing: [String: R] = [:]) {
            cases.append(FuzzCase(name: "shard \(name)", arguments: ["shard"] + arguments, replacing: replacing, prepare: prepare, fragment: fragment))
        }
        let model = "{model}/" + unetFolder
        add("size zero", [model, "--max-shard-size", "0", "--out", "{out}/s"], "--max-shard-size")
        add("size negative", [model, "--max-shard-size", "-5MB", "--out", "{out}/s"], "-5MB")
        add("size garbage", [model, "--max-shard-size", "lots", "--out", "{out}/s"], "lots")
        add("model missing", ["{work}/none", "--out", "{out}/s"], "{work}/none")
        add("model a file", ["{work}/f", "--out", "{out}/s"], "{work}/f", prepare: [("{work}/f", .text("x"))])
        add("weights FIFO", [model, "--out", "{out}/s"], "diffusion_pytorch_model.safetensors", replacing: [unetWeights: .fifo])
        add("weights truncated", [model, "--out", "{out}/s"], "diffusion_pytorch_model.safetensors",
            replacing: [unetWeights: .bytes(Array("garbage".utf8))])
        add("config broken", [model, "--out", "{out}/s"], "config.json", replacing: ["unet/config.json": .text("{")])
        add("out is a file", [model, "--out", "{out}/file"], "{out}/file", prepare: [("{out}/file", .text("x"))])
        add("out under a file", [model, "--out", "{work}/file/s"], "{work}/file", prepare: [("{work}/file", .text("x"))])
        add("out missing option", [model], "--out")
        return cases
    }

    // MARK: cast

    static func cast(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ name: String, _ arguments: [String], _ fragment: String, prepare: [(String, R)] = [], replacing: [String: R] = [:]) {
            cases.append(FuzzCase(name: "cast \(name)", arguments: ["cast"] + arguments, replacing: replacing, prepare: prepare, fragment: fragment))
        }
        let model = "{model}/" + unetFolder
        add("bad storage dtype", [model, "--storage-dtype", "int4", "--out", "{out}/c"], "--storage-dtype")
        add("out is the model", [model, "--storage-dtype", "bf16", "--out", model], "--out")
        add("unknown class", [model, "--storage-dtype", "bf16", "--out", "{out}/c"], "unet/config.json",
            replacing: ["unet/config.json": .text("{\"_class_name\": \"BogusModel\"}")])
        add("model missing", ["{work}/none", "--storage-dtype", "bf16", "--out", "{out}/c"], "{work}/none")
        add("weights FIFO", [model, "--storage-dtype", "bf16", "--out", "{out}/c"], "diffusion_pytorch_model.safetensors",
            replacing: [unetWeights: .fifo])
        add("size garbage", [model, "--storage-dtype", "bf16", "--max-shard-size", "big", "--out", "{out}/c"], "big")
        add("config NaN eps", [model, "--storage-dtype", "bf16", "--out", "{out}/c"], "unet/config.json",
            replacing: ["unet/config.json": .text(try JSONMutation.setting("norm_eps", to: "NaN", in: text(base + "/unet/config.json")))])
        add("out is a file", [model, "--storage-dtype", "bf16", "--out", "{out}/file"], "{out}/file", prepare: [("{out}/file", .text("x"))])
        return cases
    }

    // MARK: Valid controls

    static func controls(base: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ name: String, _ arguments: [String], replacing: [String: R] = [:]) {
            cases.append(FuzzCase(name: "control \(name)", arguments: arguments, replacing: replacing, fragment: "", succeeds: true))
        }
        add("the demo pipeline", generate())
        add("random seed", generate(["--seed", "-1", "--report", "{out}/r.json"]))
        add("guidance off by a negative scale", generate(["--guidance", "-1"]))
        add("a batch with its tensor and report", generate(["--batch", "2", "--save-tensor", "{out}/t.safetensors", "--report", "{out}/r.json"]))
        add("a batch in chunks", generate(["--batch", "3", "--images-per-chunk", "2"]))
        add("karras sigmas", generate(["--scheduler", "euler", "--karras-sigmas", "--timestep-spacing", "trailing"]))
        add("scheduler alias", generate(["--scheduler", "EulerAncestralDiscreteScheduler"]))
        add("model_max_length of transformers' 'no limit'", generate(), replacing: [
            "tokenizer/tokenizer_config.json": .text(try JSONMutation.setting("model_max_length", to: "1000000000000000019884624838656",
                                                                              in: text(base + "/tokenizer/tokenizer_config.json")))])
        add("image to image", generate(["--image", "{root}/Tests/Fixtures/tiny-sd/init.png", "--strength", "0.5"]))
        add("inspect the pipeline", ["inspect", "{model}"])
        add("inspect weights", ["inspect", "{model}/" + unetWeights, "--json"])
        add("shard", ["shard", "{model}/" + unetFolder, "--max-shard-size", "5MB", "--out", "{out}/s"])
        add("cast", ["cast", "{model}/" + unetFolder, "--storage-dtype", "f8e4m3", "--out", "{out}/c"])
        return cases
    }
}
