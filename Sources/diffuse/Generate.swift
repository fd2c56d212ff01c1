import ArgumentParser
import Diffusers
import Foundation

/// `diffuse generate [--model DIR] --prompt TEXT ...` (DESIGN.md's command-line contract; the
/// memory options arrive with the memory toolkit).
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images with a Stable Diffusion pipeline folder (Diffusers format).")

    @Option(help: "Pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/; a single .safetensors file is not enough); default: the small demo pipeline shipped with swift-diffusers (models/demo, or $DIFFUSE_DEMO_MODEL).")
    var model: String?

    @Option(help: "The prompt.")
    var prompt: String?

    @Option(help: "What to steer away from (classifier-free guidance).")
    var negativePrompt: String?

    @Option(parsing: .unconditional, help: "Denoising steps (default: the family's, 50 for Stable Diffusion, 28 for FLUX).")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Guidance scale (finite): classifier-free guidance for Stable Diffusion (default 7.5; 1 or less turns it off), the distilled guidance FLUX.1-dev embeds (default 3.5; schnell ignores it).")
    var guidance: Float?

    @Option(parsing: .unconditional, help: "Image width in pixels: a multiple of 8 (and of the VAE's scale factor, where that is larger); default: the UNet's native size (512 for SD 1.5, 64 for the demo pipeline).")
    var width: Int?

    @Option(parsing: .unconditional, help: "Image height in pixels (the same rule as --width).")
    var height: Int?

    @Option(parsing: .unconditional, help: "Seed of the PyTorch-compatible generator (same seed, same initial noise as Diffusers), 0 to 18446744073709551615; -1 or none: a random seed, which the report and the image's parameters record.")
    var seed: String?

    @Option(parsing: .unconditional, help: "Images per prompt (at most 4096).")
    var batch = 1

    @Option(parsing: .unconditional, help: "Run the batch this many images at a time (text to image, one prompt, a scheduler whose steps draw no noise): each image gets the noise it gets in the whole batch, so the images are the whole batch's, while a chunk holds only a chunk's activations and decode.")
    var imagesPerChunk: Int?

    @Option(help: "Scheduler to use instead of the pipeline's: \(SchedulerKind.commandLineNames) (Diffusers' class names and euler-ancestral, dpm-solver are accepted too).")
    var scheduler: String?

    @Flag(help: "Karras sigmas (use_karras_sigmas) for the euler and dpm++ schedulers.")
    var karrasSigmas = false

    @Option(help: "Timestep spacing instead of the scheduler config's: linspace, leading or trailing.")
    var timestepSpacing: String?

    @Option(help: "Init image (PNG) for image-to-image.")
    var image: String?

    @Option(parsing: .unconditional, help: "With --image: how much of the init image to replace, in [0, 1] (default 0.8).")
    var strength: Float?

    @Option(help: "Initial noise (text-to-image): a safetensors file with a tensor \"latents\" [B, C, H/f, W/f] f32, as Diffusers draws it.")
    var latents: String?

    @Option(help: "Where to write the image, in the format its extension names (.png, .jpg/.jpeg or .webp; a batch writes NAME-0.png, NAME-1.png, ...); the generation parameters go into it as AUTOMATIC1111 writes them.")
    var out = "out.png"

    @Option(help: "Also write the decoded images as f32 tensor \"image\" [B, 3, H, W] in [0, 1] (safetensors).")
    var saveTensor: String?

    @Option(help: "Write a JSON report of options, timings and memory.")
    var report: String?

    @Flag(help: "Print nothing but errors (no progress, no \"wrote\" lines).")
    var quiet = false

    @Option(help: "Compute dtype: f32, bf16 or f16.")
    var dtype = "f32"

    @Option(help: "Where to compute: cpu, or accel:N — a simulated accelerator (host memory with its own capacity and copy bandwidth, for exercising offloading; not a GPU).")
    var device = "cpu"

    @Option(help: "Capacity of the simulated accel:N devices, e.g. 0=2GB,1=512MiB (Accelerate's size strings).")
    var accelCapacity: String?

    @Option(help: "Copy bandwidth of the simulated accel:N devices in bytes per second, e.g. 8GB.")
    var accelBandwidth: String?

    @Option(help: "Placement across devices: balanced (whole components spread over the accel devices by size), accel, cpu; auto, balanced_low_0 or sequential (each component split by Accelerate's planner); or a JSON file of module paths to devices ({\"unet.mid_block\": \"cpu\", \"vae\": \"disk\"}).")
    var deviceMap: String?

    @Option(help: "Budgets for a computed --device-map, e.g. 0=1GB,1=2GB,cpu=8GB (Accelerate's size strings).")
    var maxMemory: String?

    @Option(help: "Offloading: none, model, sequential, group-block or group-leaf.")
    var offload = "none"

    @Option(parsing: .unconditional, help: "Blocks per group for --offload group-block.")
    var blocksPerGroup: Int?

    @Flag(help: "Prefetch the next group on a background transfer queue (group offload).")
    var stream = false

    @Flag(help: "Accepted for parity with Diffusers (needs --stream).")
    var recordStream = false

    @Flag(help: "Accepted for parity with Diffusers (group offload): host copies are never staged here.")
    var lowCPUMem = false

    @Option(help: "With --stream: bytes of following groups to copy ahead (e.g. 512MB); default one group, as Diffusers. With group offload on the cpu: bytes of following groups whose pages are read from disk ahead.")
    var prefetchBytes: String?

    @Option(help: "Folder for weight files of group offload or a device map's disk tier (weights not mapped from their checkpoint).")
    var offloadDir: String?

    @Option(help: "Layerwise casting of the UNet: store its Linear/Conv weights as f8e4m3, f8e5m2, bf16 or f16 and upcast each layer to --dtype for its forward.")
    var storageDtype: String?

    @Option(help: "Attention kernel: auto, naive, flash, sliced (half the heads at a time) or sliced:N.")
    var attention = "auto"

    @Flag(help: "Decode (and encode) a batch one image at a time.")
    var vaeSlicing = false

    @Flag(help: "Decode (and encode) large images in overlapping tiles, blended as Diffusers does.")
    var vaeTiling = false

    @Option(parsing: .unconditional, help: "Tile size in pixels for --vae-tiling (default: the VAE's sample_size).")
    var vaeTileSize: Int?

    @Flag(inversion: .prefixedNo, help: "Run the UNet's and the VAE's convolutions on NHWC (channels-last) activations (the default; --no-channels-last for NCHW).")
    var channelsLast = true

    @Flag(help: "Capture the UNet's forward on the second step and replay it from the third, activations in one planned arena.")
    var capture = false

    @OptionGroup(title: "Family options (SDXL, FLUX)")
    var family: FamilyFlags

    @Option(parsing: .unconditional, help: "Host memory budget, e.g. 6GB or 512MiB: the fastest lossless plan (resident, or group offload by blocks or by leaf modules; the VAE whole or tiled; the batch whole or in chunks) whose rehearsed peak fits is chosen, and the memory left for computing is enforced — a run that would need more stops with an out-of-memory error instead of being killed; one that no plan fits is refused before it loads. With an accel --device, --max-memory N=SIZE is that device's budget and model and sequential offloading are weighed too. Not with --offload or --device-map.")
    var memoryBudget: String?

    @Flag(help: "With --memory-budget: where no lossless plan fits, weigh plans that store the denoiser's Linear/Conv weights in f8e4m3 too (layerwise casting, as Diffusers' enable_layerwise_casting: the images differ a little from the plain run's).")
    var allowLossy = false

    @Flag(help: "Time each phase's operations by class (convolution, matmul, attention, normalization, elementwise, copy) into the --report.")
    var profile = false

    func run() throws {
        let started = Date()
        ProcessMemory.resetPeak()
        // Every path is checked, and every output claimed, before anything is loaded.
        let outputs = OutputFiles()
        let imagePaths = try checkPaths(outputs)
        let seedValue = try resolvedSeed()
        let devices = try makeDevices()
        let target = try devices.device(named: device)
        // With a budget the plan is rehearsed and chosen (or the run refused) before any weight is read.
        let budgetPlan = try planMemoryBudget(devices: devices, target: target, seed: seedValue)
        let setup = budgetPlan?.setup ?? requestedSetup
        // Before the run's own pipeline loads: a rehearsal beside weights converted at load
        // would count both.
        if budgetPlan == nil { try refuseWhatCannotFit(devices: devices, target: target, seed: seedValue) }
        let (pipeline, folder) = try loadPipeline(target: target, setup: setup)
        var statistics = try place(pipeline, on: target, setup: setup)
        // An accelerator's budget is its capacity for the run (its peak was rehearsed exactly).
        let targetCapacity = target.allocator.capacity
        if let budgetPlan, let deviceBudget = budgetPlan.plan.deviceBudgets[target.description] {
            target.allocator.limitCapacity(to: min(deviceBudget, targetCapacity ?? .max))
        }
        defer { if budgetPlan != nil && !target.isCPU { target.allocator.limitCapacity(to: targetCapacity) } }
        if let budgetPlan {
            Device.cpu.allocator.limitCapacity(to: budgetPlan.plan.allocatorLimitBytes)
            pipeline.degradesOnOutOfMemory = true
            // A step retried a plan down holds fewer weights: the allocator gets their room.
            let plan = budgetPlan.plan, chosen = budgetPlan.chosen
            pipeline.onPlanDown = { technique in
                guard let limit = plan.allocatorLimitBytes,
                      let lower = plan.candidates.first(where: { $0.technique == technique && $0.lossyStorage == chosen.lossyStorage }) else { return }
                Device.cpu.allocator.limitCapacity(to: limit + max(0, chosen.weightBytesAtOnce - lower.weightBytesAtOnce))
            }
        }
        defer { if budgetPlan != nil { Device.cpu.allocator.limitCapacity(to: nil) } }
        if let deviceMap {
            statistics += try applyDeviceMap(deviceMap, to: pipeline, devices: devices)
        }
        let loadSeconds = Date().timeIntervalSince(started)

        let options = try generationOptions(pipeline, seed: seedValue)
        let bar = quiet ? nil : ProgressBar(total: 0)
        let opProfile = OpProfile()
        let result: GenerationResult = try withBudgetMessage(budgetPlan) { try (profile ? opProfile.record : { try $0() }) {
            try call(pipeline, options, imagesPerChunk: setup.imagesPerChunk) { bar?.update($0); return true }
        } }
        bar?.finish()
        // What the call took and ignored, as Diffusers ignores it (also in the report).
        if !quiet { for note in result.notes + pipeline.retriedPhases { FileHandle.standardError.write(Data("warning: \(note)\n".utf8)) } }

        // Every output is staged, then all are committed together: none or all of them land.
        let pictures = try VaeImageProcessor(normalize: false).postprocess(result.images)
        let parameters = generationParameters(pipeline, folder: folder, seed: seedValue, images: result.images)
        for (position, (picture, path)) in zip(pictures, imagePaths).enumerated() {
            try outputs.stage(path, bytes: try encodeImage(picture, path: path, parameters: parameters, position: position, count: pictures.count))
        }
        if let saveTensor {
            try outputs.stage(saveTensor) { try SafeTensorsWriter.write(["image": result.images], into: $0) }
        }
        if let saveLatents = family.saveLatents {
            try outputs.stage(saveLatents) { try SafeTensorsWriter.write(["latents": result.latents.to(.f32)], into: $0) }
        }
        if let report {
            var document = RunReport(options: resolvedOptions(pipeline, folder: folder, seed: seedValue), startedAt: started,
                                     loadSeconds: loadSeconds, result: result,
                                     totalSeconds: Date().timeIntervalSince(started), outputs: outputs.paths.filter { $0 != report },
                                     devices: devices.allDevices, components: pipeline.namedComponents.map(\.name),
                                     placement: target.description, transfers: statistics,
                                     deviceMap: pipeline.hfDeviceMap)
            if let plan = pipeline.lastDenoiserCapturePlan {
                document.capture = .init(arena_bytes: plan.arenaBytes, eager_peak_bytes: plan.eagerPeakBytes, output_bytes: plan.outputBytes,
                                         operations: plan.operationCount, activations: plan.allocationCount, in_place: plan.inPlaceCount)
            }
            if profile { document.profile = RunReport.profileSections(opProfile) }
            document.plan = budgetPlan.map { RunReport.Plan($0.plan, retried: pipeline.retriedPhases) }
            try outputs.stage(report, bytes: try document.bytes())
        }
        let written = try outputs.commit()
        if !quiet { for path in written { print("wrote \(path)") } }
    }

    /// The placement and decode choices the command line asks for (a budget's plan makes its own).
    var requestedSetup: RunSetup {
        var setup = RunSetup(offload: offload, blocksPerGroup: blocksPerGroup, decode: VAEDecode(slicing: vaeSlicing, tiling: vaeTiling, tileSize: vaeTileSize),
                             imagesPerChunk: imagesPerChunk, storageDtype: storageDtype)
        setup.stream = stream
        setup.prefetchBytes = prefetchBytes.flatMap { try? MemorySize.parse($0) } ?? 0   // validated: a size
        return setup
    }

    /// The pipeline as the options configure it, before placement: loaded (weights mapped, or
    /// converted at load towards an accelerator), scheduler, attention, VAE slicing/tiling,
    /// capture, memory format, layerwise casting.
    func loadPipeline(target: Device, setup: RunSetup) throws -> (pipeline: any TextToImagePipeline, folder: String) {
        let computeType = DType(name: dtype) ?? .f32
        // Computing on the host, the weights stay the mapped checkpoint and each phase of the
        // call (or each offload group, on the disk tier) converts what it uses: nothing converted
        // is held longer than needed. Towards an accelerator they are converted at load, as
        // Diffusers' torch_dtype does, so that offloading moves the compute dtype. With
        // --storage-dtype in f32 the UNet's weights go straight to the storage dtype (a
        // checkpoint already saved in it stays mapped); in bf16/f16 they are converted at load
        // first, as Diffusers casts a model loaded in torch_dtype: storage(compute(w)).
        let storageDtype = setup.storageDtype
        let castOnUse = storageDtype == nil ? target.isCPU && deviceMap == nil : computeType == .f32
        let folder = try model ?? DemoModel.locate()
        // The family comes from model_index.json's _class_name (AutoPipelineForText2Image).
        let pipeline = try AutoPipeline.textToImage(folder: folder, dtype: computeType, castWeightsOnLoad: !castOnUse)
        if scheduler != nil || karrasSigmas || timestepSpacing != nil {
            try pipeline.configureScheduler(kind: scheduler.flatMap(SchedulerKind.init(name:)), karrasSigmas: karrasSigmas ? true : nil,
                                            timestepSpacing: timestepSpacing.flatMap(TimestepSpacing.init(rawValue:)))
        }
        if let backend = setup.memoryEfficientAttention ? .flash : AttentionBackend(name: attention), backend != .auto {
            try pipeline.setAttentionBackend(backend)
        }
        if setup.decode.slicing { try pipeline.enableVAESlicing() }
        if setup.decode.tiling { try pipeline.enableVAETiling(sampleMinSize: setup.decode.tileSize) }
        if capture { try pipeline.enableDenoiserCapture() }
        pipeline.setMemoryFormat(channelsLast ? .channelsLast : .contiguous)
        if let storage = storageDtype.flatMap(DType.init(name:)) {
            // Before any offloading: the offload hooks then move the stored dtype.
            try pipeline.denoiser.enableLayerwiseCasting(storage: storage, compute: computeType)
        }
        return (pipeline, folder)
    }

    /// The call's options: prompt, steps, guidance, size, seed, batch, family options, noise.
    func generationOptions(_ pipeline: any TextToImagePipeline, seed: UInt64) throws -> GenerationOptions {
        var options = GenerationOptions(prompt: prompt ?? "", negativePrompt: negativePrompt)
        options.steps = steps ?? pipeline.defaultSteps
        options.guidanceScale = guidance ?? pipeline.defaultGuidanceScale
        options.width = width
        options.height = height
        options.seed = seed
        options.imagesPerPrompt = batch
        try family.apply(to: &options)
        if let latents {
            let noise = try SafeTensorsFile(path: latents).tensor(named: "latents")
            guard noise.dtype.isFloatingPoint else {
                throw ValidationError("--latents \(latents): tensor \"latents\" is \(noise.dtype); initial noise is floating point (f32, as Diffusers draws it)")
            }
            options.latents = noise
        }
        return options
    }

    /// The pipeline's call: text to image (the batch in chunks of `imagesPerChunk`), or image to
    /// image with --image / --image-latents.
    func call(_ pipeline: any TextToImagePipeline, _ options: GenerationOptions, imagesPerChunk: Int?,
              progress: ProgressHandler?) throws -> GenerationResult {
        if let input = try imageToImageInput(pipeline) {
            let imageToImage = pipeline.imageToImage()
            var imageOptions = options
            imageOptions.guidanceScale = resolvedGuidance(pipeline)
            return try imageToImage.generate(imageOptions, image: input, strength: resolvedStrength(imageToImage), progress: progress)
        }
        if let imagesPerChunk { return try pipeline.generate(options, imagesPerChunk: imagesPerChunk, progress: progress) }
        return try pipeline.generate(options, progress: progress)
    }

    /// The image-to-image input: --image preprocessed to [1, 3, H, W] in [-1, 1], or
    /// --image-latents' tensor "latents" [B, C, h, w] with the UNet's channels; nil for text to image.
    private func imageToImageInput(_ pipeline: any TextToImagePipeline) throws -> Tensor? {
        if let image {
            let picture = try Image(contentsOfFile: image)
            return try VaeImageProcessor(vaeScaleFactor: pipeline.imageSizeMultiple).preprocess(picture, width: width, height: height)
        }
        guard let path = family.imageLatents else { return nil }
        let latents = try SafeTensorsFile(path: path).tensor(named: "latents")
        guard latents.dtype.isFloatingPoint, latents.rank == 4, latents.shape[1] == pipeline.latentChannels else {
            throw ValidationError("--image-latents \(path): tensor \"latents\" is \(latents.dtype) \(latents.shape); this pipeline takes "
                                  + "floating-point latents [B, \(pipeline.latentChannels), h, w]")
        }
        return latents
    }

    /// Accelerator stand-ins with the capacities and bandwidth asked for.
    func makeDevices() throws -> DeviceSet {
        var capacities: [Int: Int] = [:]
        for entry in (accelCapacity ?? "").split(separator: ",") where !entry.isEmpty {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let index = Int(parts[0]), index >= 0 else {
                throw OffloadError.invalidOption("--accel-capacity entries look like 0=2GB, not '\(entry)'")
            }
            capacities[index] = try Self.size(parts[1])
        }
        let bandwidth = try accelBandwidth.map { Double(try Self.size($0)) }
        return DeviceSet(accelCapacities: capacities, copyBandwidth: bandwidth)
    }

    /// A size on the command line: an integer (bytes, as `--max-memory` takes them) or an
    /// Accelerate size string.
    private static func size(_ text: String) throws -> Int {
        if let bytes = Int(text), bytes >= 0 { return bytes }
        return try MemorySize.parse(text)
    }

    /// `--max-memory 0=1GB,cpu=8GB` as Accelerate's max_memory dictionary.
    private func budgets() throws -> [String: MemoryBudget]? {
        guard let maxMemory else { return nil }
        var result: [String: MemoryBudget] = [:]
        for entry in maxMemory.split(separator: ",") where !entry.isEmpty {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw OffloadError.invalidOption("--max-memory entries look like 0=1GB or cpu=8GB, not '\(entry)'") }
            result[parts[0]] = Int(parts[1]).map { .bytes($0) } ?? .text(parts[1])
        }
        return result
    }

    /// `--device-map`: a pipeline-level value (Diffusers' balanced/accel/cpu), a strategy that
    /// splits each component, or a JSON file of module paths.
    private func applyDeviceMap(_ value: String, to pipeline: DiffusionPipeline, devices: DeviceSet) throws -> [HookTransfers] {
        if PipelineDeviceMapRequest.supportedValues.contains(value) {
            try pipeline.applyDeviceMap(PipelineDeviceMapRequest(parsing: value), devices: devices, maxMemory: try budgets())
            return []
        }
        func named(_ statistics: [String: TransferStatistics]) -> [HookTransfers] {
            statistics.keys.sorted().compactMap { name in statistics[name].map { HookTransfers(name, OffloadHookName.deviceMap, $0) } }
        }
        if let strategy = DeviceMapStrategy(rawValue: value) {
            return named(try pipeline.applyDeviceMap(strategy: strategy, devices: devices, maxMemory: try budgets(), offloadFolder: offloadDir))
        }
        guard value.hasSuffix(".json") || FileManager.default.fileExists(atPath: value) else {
            throw OffloadError.invalidOption("--device-map must be balanced, accel, cpu, auto, balanced_low_0, sequential or a JSON file, not '\(value)'")
        }
        if maxMemory != nil { throw OffloadError.invalidOption("--max-memory applies to computed device maps, not to the map in \(value)") }
        return named(try pipeline.applyDeviceMap(DeviceMap(contentsOfFile: value), devices: devices, offloadFolder: offloadDir))
    }

    /// Puts the pipeline on `target` as `setup` says (--offload, --stream, …); returns what the strategy will move.
    /// A rehearsal (`rehearsing`) places as the run will but reads its groups in place: the
    /// disk tier's files would be written from weights it never reads (their pages come and go
    /// as in-place groups' do).
    func place(_ pipeline: DiffusionPipeline, on target: Device, setup: RunSetup, rehearsing: Bool = false) throws -> [HookTransfers] {
        let names = pipeline.namedComponents.map(\.name)
        switch setup.offload {
        case "model":
            try pipeline.enableModelCPUOffload(device: target)
            return pipeline.modelOffloadStatistics.map { [HookTransfers("pipeline", OffloadHookName.model, $0)] } ?? []
        case "sequential":
            return zip(names, try pipeline.enableSequentialCPUOffload(device: target)).map { HookTransfers($0, OffloadHookName.sequential, $1) }
        case "group-block", "group-leaf":
            let type: GroupOffloadType = setup.offload == "group-leaf" ? .leafLevel : .blockLevel(blocksPerGroup: setup.blocksPerGroup ?? 1)
            var options = GroupOffloadOptions(type: type, useStream: setup.stream, recordStream: recordStream, lowCPUMemUsage: lowCPUMem,
                                              offloadToDiskPath: rehearsing ? nil : offloadDir)
            options.prefetchBytes = setup.prefetchBytes
            return zip(names, try pipeline.enableGroupOffload(device: target, options: options)).map {
                HookTransfers($0, OffloadHookName.group, $1.statistics)
            }
        default:
            // With --device-map the map places the weights.
            if !target.isCPU && deviceMap == nil { try pipeline.to(target) }
            return []
        }
    }

    /// `--guidance`, else the default of the pipeline the run uses (image to image's where it has its own).
    private func resolvedGuidance(_ pipeline: any TextToImagePipeline) -> Float {
        if let guidance { return guidance }
        let imageToImage = image != nil || family.imageLatents != nil
        return (imageToImage ? pipeline.imageToImage().defaultGuidanceScale : nil) ?? pipeline.defaultGuidanceScale
    }

    private func resolvedOptions(_ pipeline: any TextToImagePipeline, folder: String, seed: UInt64) -> [String: String] {
        var options: [String: String] = [
            "model": folder, "prompt": prompt ?? "", "steps": "\(steps ?? pipeline.defaultSteps)", "guidance": "\(resolvedGuidance(pipeline))", "seed": "\(seed)",
            "batch": "\(batch)", "dtype": dtype, "scheduler": "\(type(of: pipeline.scheduler))", "device": device,
            "offload": offload, "attention": attention, "storage_dtype": storageDtype ?? "none", "vae_slicing": "\(vaeSlicing)", "capture": "\(capture)", "channels_last": "\(channelsLast)",
            "vae_tiling": vaeTiling ? "\((try? pipeline.autoencoder())?.tiling?.sampleMinSize ?? 0) px tiles" : "off",
            "width": "\(width ?? pipeline.defaultImageSize)",
            "height": "\(height ?? pipeline.defaultImageSize)",
        ]
        if let negativePrompt { options["negative_prompt"] = negativePrompt }
        if let image { options["image"] = image }
        if let path = family.imageLatents { options["image_latents"] = path }
        if image != nil || family.imageLatents != nil { options["strength"] = "\(resolvedStrength(pipeline.imageToImage()))" }
        if karrasSigmas { options["karras_sigmas"] = "true" }
        if let timestepSpacing { options["timestep_spacing"] = timestepSpacing }
        if let imagesPerChunk { options["images_per_chunk"] = "\(imagesPerChunk)" }
        if let latents { options["latents"] = latents }
        return options
    }
}
