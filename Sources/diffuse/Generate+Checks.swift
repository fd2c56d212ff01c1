import ArgumentParser
import Diffusers
import Foundation

/// What `diffuse generate` checks before it loads anything: each option's value, options that
/// would do nothing in their context (an error, never silently ignored), and every path.
extension Generate {
    func validate() throws {
        guard prompt != nil else { throw ValidationError("--prompt is required") }
        if let steps, !(1...10_000).contains(steps) { throw ValidationError("--steps must be from 1 to 10000, not \(steps)") }
        guard batch >= 1, batch <= DiffusionPipeline.maximumBatch else {
            throw ValidationError("--batch must be from 1 to \(DiffusionPipeline.maximumBatch), not \(batch)")
        }
        if let imagesPerChunk {
            guard imagesPerChunk >= 1 else { throw ValidationError("--images-per-chunk must be at least 1, not \(imagesPerChunk)") }
            guard imagesPerChunk < batch else {
                throw ValidationError("--images-per-chunk \(imagesPerChunk) splits a batch of more than \(imagesPerChunk) images; --batch is \(batch)")
            }
            guard image == nil && family.imageLatents == nil else {
                throw ValidationError("--images-per-chunk runs a text-to-image batch in chunks; image-to-image (--image, --image-latents) runs whole")
            }
        }
        if let guidance, !guidance.isFinite { throw ValidationError("--guidance must be a finite number, not \(guidance)") }
        for (name, value) in [("--width", width), ("--height", height)] {
            if let value, value <= 0 || value > DiffusionPipeline.maximumImageSide {
                throw ValidationError("\(name) must be a positive number of pixels up to \(DiffusionPipeline.maximumImageSide), not \(value)")
            }
        }
        _ = try resolvedSeed(drawing: false)
        if let strength {
            guard image != nil || family.imageLatents != nil else {
                throw ValidationError("--strength applies to image-to-image: add --image FILE, or leave --strength out")
            }
            guard strength.isFinite, (0...1).contains(strength) else {
                throw ValidationError("--strength must be between 0 and 1, not \(strength)")
            }
        }
        if latents != nil && (image != nil || family.imageLatents != nil) {
            throw ValidationError("--latents gives text-to-image's initial noise; image-to-image (--image) draws its noise from --seed")
        }
        if image != nil && family.imageLatents != nil {
            throw ValidationError("--image and --image-latents both give the image-to-image input: give one")
        }
        if family.denoisingStart != nil && image == nil && family.imageLatents == nil {
            throw ValidationError("--denoising-start applies to image-to-image: add --image-latents FILE (or --image FILE)")
        }
        guard DType(name: dtype).map({ [.f32, .bf16, .f16].contains($0) }) ?? false else {
            throw ValidationError("--dtype must be f32, bf16 or f16, not \(dtype)")
        }
        if let scheduler, SchedulerKind(name: scheduler) == nil {
            throw ValidationError("--scheduler must be one of \(SchedulerKind.commandLineNames), not \(scheduler)")
        }
        if let timestepSpacing, TimestepSpacing(rawValue: timestepSpacing) == nil {
            throw ValidationError("--timestep-spacing must be linspace, leading or trailing, not \(timestepSpacing)")
        }
        if let kind = scheduler.flatMap(SchedulerKind.init(name:)), karrasSigmas, !kind.supportsKarrasSigmas {
            throw ValidationError("--karras-sigmas applies to the euler and dpm++ schedulers, not \(kind.commandLineName)")
        }
        if allowLossy && memoryBudget == nil {
            throw ValidationError("--allow-lossy lets a --memory-budget plan store weights in a smaller dtype: add --memory-budget, or give --storage-dtype")
        }
        // A budget's own combinations first: it chooses what the memory options would fix.
        try validateMemoryBudget()
        try validateMemoryOptions()
        // `guard let`, not `!= nil`: that comparison on this optional came out false for
        // `.naive` in release builds of Swift 6.3.1 (an optimiser bug, seen in this file).
        guard let _ = AttentionBackend(name: attention) else {
            throw ValidationError("--attention must be auto, naive, flash, sliced or sliced:N (N at least 1), not \(attention)")
        }
        if let vaeTileSize {
            guard vaeTiling else { throw ValidationError("--vae-tile-size requires --vae-tiling") }
            guard vaeTileSize > 0 else { throw ValidationError("--vae-tile-size must be a positive number of pixels, not \(vaeTileSize)") }
        }
        if profile && report == nil { throw ValidationError("--profile writes into the report: add --report FILE.json") }
        try checkImageFormat()
    }

    /// Offloading, placement and device options: values, and combinations that do nothing.
    private func validateMemoryOptions() throws {
        let groupOffload = offload == "group-block" || offload == "group-leaf"
        guard ["none", "model", "sequential", "group-block", "group-leaf"].contains(offload) else {
            throw ValidationError("--offload must be none, model, sequential, group-block or group-leaf, not \(offload)")
        }
        if offload == "group-block" && blocksPerGroup == nil {
            throw ValidationError("--offload group-block needs --blocks-per-group N")
        }
        if let blocksPerGroup {
            guard offload == "group-block" else { throw ValidationError("--blocks-per-group applies to --offload group-block") }
            guard blocksPerGroup >= 1 else { throw ValidationError("--blocks-per-group must be at least 1, not \(blocksPerGroup)") }
        }
        if stream && !groupOffload { throw ValidationError("--stream applies to group offload: add --offload group-block or group-leaf") }
        if recordStream && !stream { throw ValidationError("--record-stream requires --stream") }
        // On the CPU, group offload reads mapped weights in place and reads the next groups' pages ahead.
        if prefetchBytes != nil && !stream && !(device == "cpu" && groupOffload) {
            throw ValidationError("--prefetch-bytes requires --stream (or group offload on the cpu, where it bounds the pages read ahead)")
        }
        if let prefetchBytes, (try? MemorySize.parse(prefetchBytes)) == nil {
            throw ValidationError("--prefetch-bytes takes a size such as 512MB or 64MiB, not '\(prefetchBytes)'")
        }
        if lowCPUMem && !groupOffload { throw ValidationError("--low-cpu-mem applies to group offload: add --offload group-block or group-leaf") }
        if offloadDir != nil && !groupOffload && deviceMap == nil {
            throw ValidationError("--offload-dir applies to group offload or a --device-map with a disk tier")
        }
        if maxMemory != nil && deviceMap == nil && memoryBudget == nil {
            throw ValidationError("--max-memory is a budget for --device-map, or with --memory-budget for the accel device: add --device-map auto (or balanced, ...) or --memory-budget")
        }
        if (accelCapacity != nil || accelBandwidth != nil) && !device.hasPrefix("accel") && deviceMap == nil {
            throw ValidationError("--accel-capacity and --accel-bandwidth describe the simulated accel:N devices: add --device accel:0 or a --device-map")
        }
        if let storageDtype {
            guard let storage = DType(name: storageDtype), [.f8e4m3fn, .f8e5m2, .bf16, .f16].contains(storage) else {
                throw ValidationError("--storage-dtype must be f8e4m3, f8e5m2, bf16 or f16, not \(storageDtype)")
            }
        }
        if offload == "model" && device == "cpu" {
            throw ValidationError("--offload model needs an execution device: add --device accel:N")
        }
        if deviceMap != nil && offload != "none" {
            throw ValidationError("--device-map and --offload \(offload) cannot be combined: a device-mapped pipeline refuses offloading, as in Diffusers")
        }
    }

    /// `--strength`, or the image-to-image pipeline's default (Diffusers': 0.8 for SD, 0.3 for SDXL).
    func resolvedStrength(_ pipeline: any ImageToImagePipeline) -> Float { strength ?? pipeline.defaultStrength }

    /// `--seed`: nil or -1 draws one (as AUTOMATIC1111 and stable-diffusion.cpp do), recorded
    /// in the report and the image; with `drawing` false only the value is checked.
    func resolvedSeed(drawing: Bool = true) throws -> UInt64 {
        guard let seed, seed != "-1" else { return drawing ? UInt64.random(in: 0..<(1 << 32)) : 0 }
        guard let value = UInt64(seed) else {
            throw ValidationError("--seed must be a whole number from 0 to \(UInt64.max), or -1 for a random seed, not \(seed)")
        }
        return value
    }

    /// The paths of this run: inputs checked (regular, readable files) and noted so that no
    /// output overwrites them, outputs claimed (folder writable, no collisions). Returns the
    /// image paths (one per image of the batch).
    func checkPaths(_ outputs: OutputFiles) throws -> [String] {
        for (option, path) in [("--image", image), ("--latents", latents), ("--image-latents", family.imageLatents)] {
            guard let path else { continue }
            try InputFile.check(path)
            outputs.noteInput(path, role: option)
        }
        if let deviceMap, FileKind.of(deviceMap) != nil || deviceMap.hasSuffix(".json") {
            try InputFile.check(deviceMap)
            outputs.noteInput(deviceMap, role: "--device-map")
        }
        let images = Image.batchPaths(for: out, count: batch)
        for path in images { try outputs.claim(path, role: "--out") }
        if let saveTensor { try outputs.claim(saveTensor, role: "--save-tensor") }
        if let saveLatents = family.saveLatents { try outputs.claim(saveLatents, role: "--save-latents") }
        if let report { try outputs.claim(report, role: "--report") }
        return images
    }
}
