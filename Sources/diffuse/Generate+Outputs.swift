import ArgumentParser
import Diffusers
import Foundation

/// The image files of a run: their format (from `--out`'s extension) and the generation
/// parameters written into each, as AUTOMATIC1111 writes them, so that the image says how it
/// was made.
extension Generate {
    /// Throws unless `--out` names a format that can be written.
    func checkImageFormat() throws {
        do { _ = try ImageFormat(path: out) } catch { throw ValidationError("--out \(error)") }
    }

    /// The bytes of `picture` (image `position` of a batch of `count`) in the format `path` names.
    func encodeImage(_ picture: Image, path: String, parameters: GenerationParameters, position: Int, count: Int) throws -> [UInt8] {
        var parameters = parameters
        if count > 1 { parameters.extra.insert(contentsOf: [("Batch size", "\(count)"), ("Batch pos", "\(position)")], at: 0) }
        return try ImageWriter().encode(picture, as: ImageFormat(path: path), metadata: ImageMetadata(parameters: parameters),
                                        destination: path)
    }

    /// How the images were made, in AUTOMATIC1111's `parameters` fields.
    func generationParameters(_ pipeline: any TextToImagePipeline, folder: String, seed: UInt64, images: Tensor) -> GenerationParameters {
        let schedulerClass = String(describing: type(of: pipeline.scheduler))
        var extra: [(key: String, value: String)] = []
        if karrasSigmas { extra.append(("Schedule type", "Karras")) }
        if image != nil || family.imageLatents != nil {
            extra.append(("Denoising strength", "\(resolvedStrength(pipeline.imageToImage()))"))
        }
        extra.append(("Version", "swift-diffusers \(DiffuseVersion.current)"))
        let modelName = URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
        return GenerationParameters(prompt: prompt ?? "", negativePrompt: negativePrompt ?? "", steps: steps,
                                    sampler: GenerationParameters.samplerName(forScheduler: schedulerClass) ?? schedulerClass,
                                    cfgScale: guidance, seed: seed, width: images.shape[3], height: images.shape[2],
                                    model: modelName, extra: extra)
    }
}
