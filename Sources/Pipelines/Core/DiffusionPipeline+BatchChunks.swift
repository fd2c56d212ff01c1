import Foundation
import Schedulers
import Tensor

/// A batch run a few images at a time, each image with the noise it gets in the whole batch.
extension TextToImagePipeline {
    /// The call of `options` run `imagesPerChunk` images at a time, for a batch whose
    /// activations or decode do not fit at once. Each chunk's initial noise is the whole
    /// batch's draws for its images (the same seed, the same generator stream), so the images
    /// are the whole batch's, up to the last bits where a kernel's blocking depends on the batch
    /// size. A chunk holds a chunk's activations; the whole batch's images and latents are
    /// gathered as the chunks finish.
    ///
    /// Text to image with one prompt (or one row of prompt embeddings) and a scheduler that
    /// draws no noise in its steps (their draws are the whole batch's at every step).
    /// A rehearsal (`MemoryRehearsal`) runs the first two chunks: the later ones repeat the
    /// second's allocations beside the gathered images.
    public func generate(_ options: GenerationOptions, imagesPerChunk: Int, progress: ProgressHandler?) throws -> GenerationResult {
        let batch = options.imagesPerPrompt
        guard imagesPerChunk >= 1 else {
            throw PipelineError.invalidOption("images per chunk must be at least 1, not \(imagesPerChunk)")
        }
        guard imagesPerChunk < batch else { return try generate(options, progress: progress) }
        try refuseChunking(options)
        let perImage = initialNoiseShape(options)   // [C, h, w]
        var noise = try BatchNoise(options, batch: batch, perImage: perImage)
        let chunks = (batch + imagesPerChunk - 1) / imagesPerChunk
        var gathered: (images: Tensor, latents: Tensor)?
        var timings = GenerationResult.Timings()
        var notes: [String] = [], retried: [String] = []
        defer { retriedPhases = retried }   // each chunk's call starts its own list
        var ranAgain = false
        var starts = Array(stride(from: 0, to: batch, by: imagesPerChunk).enumerated())[...]
        while let (index, start) = starts.popFirst() {
            if index == 2, MemoryRehearsal.current != nil { break }
            let rows = min(imagesPerChunk, batch - start)
            var chunk = options
            chunk.imagesPerPrompt = rows
            chunk.latents = try noise.next(rows)
            let heldScores = attentionHoldsScoreMatrices
            let result = try generate(chunk, progress: progress.map { report in { event in
                report(StepEvent(step: index * event.totalSteps + event.step, totalSteps: chunks * event.totalSteps,
                                 timestep: event.timestep, seconds: event.seconds))
            } })
            retried += retriedPhases
            // A later chunk took the memory-efficient attention kernel (degrading): the chunks
            // before it computed with the other one, so every chunk runs again with it.
            if index > 0, heldScores, !attentionHoldsScoreMatrices, !ranAgain {
                (ranAgain, gathered, timings, notes) = (true, nil, GenerationResult.Timings(), [])
                noise = try BatchNoise(options, batch: batch, perImage: perImage)
                starts = Array(stride(from: 0, to: batch, by: imagesPerChunk).enumerated())[...]
                continue
            }
            // The whole batch's outputs, allocated once the first chunk says their shapes.
            let whole = try gathered ?? (Tensor.empty([batch] + result.images.shape.dropFirst(), dtype: result.images.dtype, device: result.images.device),
                                         Tensor.empty([batch] + result.latents.shape.dropFirst(), dtype: result.latents.dtype, device: result.latents.device))
            try whole.images.narrowed(axis: 0, start: start, length: rows).assign(result.images)
            try whole.latents.narrowed(axis: 0, start: start, length: rows).assign(result.latents)
            gathered = whole
            timings.add(result.timings)
            notes += result.notes.filter { !notes.contains($0) }
        }
        guard let gathered else { throw PipelineError.invalidOption("a batch of \(batch) images has no chunk to run") }
        var result = GenerationResult(images: gathered.images, latents: gathered.latents, timings: timings)
        result.notes = notes
        return result
    }

    /// What a batch run in chunks cannot take: several prompts (a chunk is one prompt's
    /// images), and a scheduler whose steps draw noise.
    public func refuseChunking(_ options: GenerationOptions) throws {
        guard options.promptCount == 1 else {
            throw PipelineError.invalidOption("a batch runs in chunks with one prompt, not \(options.promptCount): give the prompts one call each")
        }
        guard !scheduler.drawsNoiseEachStep else {
            throw PipelineError.invalidOption("\(type(of: scheduler)) draws noise at every step for the whole batch, so its batch cannot run "
                                              + "in chunks with the whole batch's images: give a scheduler whose steps draw none, or the whole batch")
        }
    }
}

/// The initial noise of a batch handed out a chunk at a time: the given latents' rows, or the
/// generator's draws — drawn chunk by chunk where an image's noise is a whole number of
/// PyTorch's 16-value Box–Muller blocks (the stream is then the whole batch's), else drawn for
/// the whole batch at once and sliced.
public struct BatchNoise {
    private var generator: TorchGenerator
    private var whole: Tensor?
    private let perImage: [Int]
    private var start = 0

    /// The noise of `batch` images of `perImage` ([C, h, w]): `options.latents`, else drawn
    /// from `options.seed`.
    public init(_ options: GenerationOptions, batch: Int, perImage: [Int]) throws {
        generator = TorchGenerator(seed: options.seed)
        self.perImage = perImage
        if let given = options.latents {
            whole = try checkedInitialLatents(given, shape: [batch] + perImage)
        } else if perImage.reduce(1, *) % 16 != 0 {
            whole = try generator.randn([batch] + perImage)
        }
    }

    /// The next `rows` images' noise [rows, C, h, w].
    public mutating func next(_ rows: Int) throws -> Tensor {
        defer { start += rows }
        guard let whole else { return try generator.randn([rows] + perImage) }
        return try whole.narrowed(axis: 0, start: start, length: rows).contiguous()
    }
}

extension GenerationResult.Timings {
    /// Adds a chunk's timings: phase seconds summed, each step's seconds summed over chunks
    /// (a step's time for the whole batch), the first chunk's start kept.
    mutating func add(_ chunk: Self) {
        textEncoderSeconds += chunk.textEncoderSeconds
        denoiseSeconds += chunk.denoiseSeconds
        vaeEncodeSeconds += chunk.vaeEncodeSeconds
        vaeDecodeSeconds += chunk.vaeDecodeSeconds
        weightCastSeconds += chunk.weightCastSeconds
        for (index, seconds) in chunk.stepSeconds.enumerated() {
            if index < stepSeconds.count { stepSeconds[index] += seconds } else { stepSeconds.append(seconds) }
        }
        denoiseStartedAt = denoiseStartedAt ?? chunk.denoiseStartedAt
    }
}
