import Foundation
import Models
import NN
import Offload
import Schedulers
import Tensor
import Tokenizers

/// Stable Diffusion 1.x/2.x text-to-image, loaded from a Diffusers pipeline folder
/// (`model_index.json` with `tokenizer`, `text_encoder`, `unet`, `vae`, `scheduler`).
public final class StableDiffusionPipeline: @unchecked Sendable {
    public let folder: String
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public var scheduler: any Scheduler
    /// The dtype the models compute in.
    public let dtype: DType
    /// Set by `enableModelCPUOffload`; every call ends with all components back home.
    var modelOffload: ModelCPUOffload?
    /// Where `applyDeviceMap(.balanced)` put each component (Diffusers' `hf_device_map`).
    public internal(set) var hfDeviceMap: DeviceMap?
    /// Pixels per latent along each side (8 for Stable Diffusion).
    public var vaeScaleFactor: Int { vae.config.downscaleFactor }

    /// Whether some weights are still in the checkpoint's dtype (`castWeightsOnLoad: false`).
    var castPending: Bool
    /// Seconds `inPhase` spent converting weights since the call began.
    var phaseCastSeconds = 0.0
    /// Set by `enableUNetCapture`.
    var unetCapture: UNetCaptureState?
    /// When a phase ends (prompt encoding, denoising, decoding), the pages of its model's
    /// weights still mapped from the checkpoint are let go, packed copies included, so that the
    /// process holds one phase's weights at a time; the next call reads them again from the
    /// page cache (and packs the convolution weights again). Weights that were converted or
    /// moved to an accelerator are not mapped and stay.
    public var releasesWeightPagesBetweenPhases = true

    /// Loads every component; weights convert to `dtype` (f32, bf16 or f16) as they load.
    ///
    /// - Parameter castWeightsOnLoad: false keeps the weights as the checkpoint stores them
    ///   (memory-mapped) until they are needed: an offload strategy then casts each group as it
    ///   comes to the execution device, so a bf16 run over an f32 checkpoint never holds every
    ///   bf16 copy at once (on the host's disk tier the resident set stays the groups in use);
    ///   a component left without offloading is converted for each phase of a call that uses
    ///   it and given back to the mapped checkpoint after (with `releasesWeightPagesBetweenPhases`,
    ///   else once, on first use); `to` and device maps convert at once. The numbers are the
    ///   same either way.
    public init(folder: String, dtype: DType = .f32, castWeightsOnLoad: Bool = true) throws {
        guard dtype == .f32 || dtype == .bf16 || dtype == .f16 else {
            throw PipelineError.invalidOption("--dtype must be f32, bf16 or f16, not \(dtype)")
        }
        self.folder = folder
        self.dtype = dtype
        let loadDType: DType? = castWeightsOnLoad ? dtype : nil
        castPending = !castWeightsOnLoad
        let index = try PipelineIndex(path: try Self.modelIndexPath(folder))
        func component(_ name: String, _ classes: [String]) throws -> String {
            guard let entry = index.components.first(where: { $0.name == name }) else {
                throw PipelineError.missingComponent(folder: folder, component: name)
            }
            guard classes.contains(entry.className) else {
                throw PipelineError.unknownComponentClass(component: name, className: entry.className)
            }
            let path = folder + "/" + name
            guard FileKind.of(path) == .folder else { throw PipelineError.missingComponent(folder: folder, component: name) }
            return path
        }
        tokenizer = try CLIPTokenizer(folder: component("tokenizer", ["CLIPTokenizer", "CLIPTokenizerFast"]))
        textEncoder = try loadComponent(component("text_encoder", ["CLIPTextModel"]), dtype: loadDType,
                                        config: CLIPTextConfig.init, implied: { $0.impliedParameters() }, build: CLIPTextModel.init)
        unet = try loadComponent(component("unet", ["UNet2DConditionModel"]), dtype: loadDType,
                                 config: UNet2DConditionConfig.init, implied: \.impliedParameters, build: UNet2DConditionModel.init)
        vae = try loadComponent(component("vae", ["AutoencoderKL"]), dtype: loadDType,
                                config: AutoencoderKLConfig.init, implied: \.impliedParameters, build: AutoencoderKL.init)
        let schedulerPath = try component("scheduler", SchedulerKind.allCases.map(\.rawValue))
        scheduler = try SchedulerConfig(contentsOf: schedulerPath + "/scheduler_config.json").makeScheduler()
        // Measured faster and leaner on the UNet and the VAE (BENCHMARKS.md, channels_last).
        setMemoryFormat(.channelsLast)
    }

    /// Every component's attention computes with `backend` (the UNet, the VAE's mid-block and
    /// the text encoder). A slice size is checked against the UNet's heads, as Diffusers'
    /// `enable_attention_slicing` does; the other components slice at most all their heads.
    public func setAttentionBackend(_ backend: AttentionBackend) throws {
        try unet.setAttentionBackend(backend)
        for component in [textEncoder, vae] as [Module] {
            if case .sliced(let size) = backend {
                try component.enableAttentionSlicing(size, capped: true)
            } else {
                try component.setAttentionBackend(backend)
            }
        }
    }

    /// The UNet's and the VAE's convolutions compute in `format` (`Module.setMemoryFormat`),
    /// as `pipe.unet.to(memory_format=torch.channels_last)` and the same for the VAE.
    /// Pipelines start channels-last: it measured faster with lower peaks on both models.
    public func setMemoryFormat(_ format: MemoryFormat) {
        unet.setMemoryFormat(format)
        vae.setMemoryFormat(format)
    }

    /// Diffusers' `enable_attention_slicing`: the UNet's attention a slice of heads at a time.
    public func enableAttentionSlicing(_ size: AttentionSliceSize = .auto) throws { try unet.enableAttentionSlicing(size) }

    /// Replaces the scheduler by `kind` built from the pipeline's scheduler config, as
    /// `XScheduler.from_config(pipe.scheduler.config)` does.
    public func useScheduler(_ kind: SchedulerKind) throws {
        try configureScheduler(kind: kind)
    }

    /// Rebuilds the scheduler from the pipeline's scheduler config, as Diffusers'
    /// `OtherScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=..., timestep_spacing=...)`:
    /// `kind` nil keeps the pipeline's class; nil options keep the config's values.
    /// Throws `PipelineError.invalidOption` for Karras sigmas on a class that has none.
    public func configureScheduler(kind: SchedulerKind? = nil, karrasSigmas: Bool? = nil, timestepSpacing: TimestepSpacing? = nil) throws {
        var config = try SchedulerConfig(contentsOf: folder + "/scheduler/scheduler_config.json", kind: kind)
        if let karrasSigmas {
            guard !karrasSigmas || config.kind.supportsKarrasSigmas else {
                throw PipelineError.invalidOption(
                    "the \(config.kind.commandLineName) scheduler has no Karras sigmas (euler and dpm++ do); pick one with --scheduler")
            }
            config.useKarrasSigmas = karrasSigmas
        }
        if let timestepSpacing { config.timestepSpacing = timestepSpacing }
        scheduler = try config.makeScheduler()
    }

    /// Text states for `prompts` [N·imagesPerPrompt, 77, D] and, with guidance, for the
    /// negative prompts (empty strings when none), as Diffusers' `encode_prompt`.
    public func encodePrompt(_ prompts: [String], negativePrompts: [String]? = nil, imagesPerPrompt: Int = 1,
                             classifierFreeGuidance: Bool) throws -> (positive: Tensor, negative: Tensor?) {
        guard !prompts.isEmpty else { throw PipelineError.invalidOption("the prompt list is empty") }
        guard imagesPerPrompt >= 1 else { throw PipelineError.invalidOption("images per prompt must be at least 1, not \(imagesPerPrompt)") }
        let positive = try repeatRows(textStates(prompts), imagesPerPrompt)
        guard classifierFreeGuidance else { return (positive, nil) }
        let negatives = negativePrompts ?? Array(repeating: "", count: prompts.count)
        guard negatives.count == prompts.count || negatives.count == 1 else {
            throw PipelineError.invalidOption("\(negatives.count) negative prompts for \(prompts.count) prompts")
        }
        let expanded = negatives.count == 1 ? Array(repeating: negatives[0], count: prompts.count) : negatives
        return (positive, try repeatRows(textStates(expanded), imagesPerPrompt))
    }

    /// The text encoder's last hidden state for each prompt, padded/truncated to the
    /// tokenizer's model_max_length — bounded by the text encoder's positions, which is also
    /// the length when the tokenizer knows no limit (transformers' int(1e30)): more tokens
    /// than positions could never be encoded, and the padding must not be sized by the file.
    func textStates(_ prompts: [String]) throws -> Tensor {
        let positions = textEncoder.config.maxPositionEmbeddings
        let length = min(tokenizer.modelMaxLength ?? positions, positions)
        var ids: [Int64] = []
        for prompt in prompts {
            ids += tokenizer.encode(prompt, padding: .maxLength, truncation: true, maxLength: length).ids.map { Int64($0) }
        }
        let tokens = try Tensor(int64: ids, shape: [prompts.count, length])
        return try textEncoder(tokens).lastHiddenState
    }
}

/// One model component: its config read and checked, the checkpoint's headers compared with
/// the weights the config implies (a config asking for far more tensors than the checkpoint holds
/// is refused before the module tree is built: building costs in proportion to the config,
/// which the file controls), then the model built and loaded key by key.
private func loadComponent<Config, Model: Module>(_ path: String, dtype: DType?, config read: (ModelConfig) throws -> Config,
                                                  implied: (Config) -> ParameterTally, build: (Config) -> Model) throws -> Model {
    let configPath = path + "/config.json"
    let config = try read(ModelConfig(path: configPath))
    let checkpoint = try Checkpoint(folder: path)
    try checkpoint.checkHolds(implied(config), config: configPath)
    let model = build(config)
    do {
        try model.load(from: checkpoint, dtype: dtype)
    } catch let error as ModuleError {
        // The key check lists tensors; say which folder's weights and config disagree.
        guard case .checkpointMismatch = error else { throw error }
        throw PipelineError.componentMismatch(config: configPath, weights: path, detail: "\(error)")
    }
    return model
}

/// Repeats each row of [N, ...] `times` times in place: [N·times, ...] (`repeat_interleave`-like,
/// the order `num_images_per_prompt` gives).
func repeatRows(_ x: Tensor, _ times: Int) throws -> Tensor {
    guard times > 1 else { return x }
    let rows = try (0..<x.shape[0]).flatMap { i in
        Array(repeating: try x.narrowed(axis: 0, start: i, length: 1), count: times)
    }
    return try Tensor.concat(rows, axis: 0)
}

extension StableDiffusionPipeline {
    /// `folder/model_index.json`, after checking that `folder` is a pipeline folder at all: a
    /// single checkpoint file or a folder without an index gets a sentence saying what is needed.
    static func modelIndexPath(_ folder: String) throws -> String {
        let needed = "one with model_index.json and the unet/, vae/, text_encoder/, tokenizer/ and scheduler/ folders, as Diffusers' save_pretrained writes it"
        switch FileKind.of(folder) {
        case nil: throw FileError.notFound(path: folder)
        case .folder?: break
        case .regularFile?:
            throw PipelineError.notAPipelineFolder(path: folder, reason: "it is a single file; this version loads only folders (\(needed))")
        case let kind?: throw PipelineError.notAPipelineFolder(path: folder, reason: "it is \(kind.phrase); give a folder (\(needed))")
        }
        let index = folder.hasSuffix("/") ? folder + "model_index.json" : folder + "/model_index.json"
        guard FileKind.of(index) != nil else {
            throw PipelineError.notAPipelineFolder(path: folder, reason: "it has no model_index.json; give \(needed)")
        }
        return index
    }
}
