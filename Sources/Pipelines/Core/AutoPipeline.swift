import NN
import Offload
import Tensor

/// A text-to-image pipeline as `diffuse generate` runs it, whatever its family.
public protocol TextToImagePipeline: DiffusionPipeline {
    /// The pipeline's `__call__`.
    func generate(_ options: GenerationOptions, progress: ProgressHandler?) throws -> GenerationResult
    /// The same family's image-to-image pipeline over these components
    /// (`AutoPipelineForImage2Image.from_pipe`).
    func imageToImage() -> any ImageToImagePipeline
    /// The size when the options give none, in pixels.
    var defaultImageSize: Int { get }
    /// Pixels per latent along each side.
    var vaeScaleFactor: Int { get }
    /// Channels of the latents the denoiser works on.
    var latentChannels: Int { get }
    /// One image's initial noise for `options`, [C, h, w]: the shape Diffusers' `prepare_latents`
    /// draws per image (before FLUX packs it).
    func initialNoiseShape(_ options: GenerationOptions) -> [Int]
    /// Pixels the sides of an image-to-image input are resized to multiples of (Diffusers'
    /// image processor's `vae_scale_factor`).
    var imageSizeMultiple: Int { get }
    /// Diffusers' `num_inference_steps` and `guidance_scale` defaults for the family.
    var defaultSteps: Int { get }
    var defaultGuidanceScale: Float { get }
    /// Captures the denoiser's forward on the second step and replays it from the third
    /// (throws where the family's denoiser has no capture).
    func enableDenoiserCapture() throws
    /// The plan of the graph the last call captured (nil before one did).
    var lastDenoiserCapturePlan: CapturePlan? { get }
}

extension ImageToImagePipeline {
    public var defaultGuidanceScale: Float? { nil }
}

extension TextToImagePipeline {
    public var imageSizeMultiple: Int { vaeScaleFactor }
    public var defaultSteps: Int { 50 }
    public var defaultGuidanceScale: Float { 7.5 }
}

/// An image-to-image pipeline as `diffuse generate --image` runs it.
public protocol ImageToImagePipeline {
    /// Diffusers' default `strength` for the pipeline.
    var defaultStrength: Float { get }
    /// Diffusers' default `guidance_scale` where it differs from the text-to-image pipeline's
    /// (`FluxImg2ImgPipeline`: 7.0); nil where it is the same.
    var defaultGuidanceScale: Float? { get }
    /// - Parameters:
    ///   - image: [1 or N, 3, H, W] in [-1, 1].
    ///   - strength: in [0, 1]; 1 ignores the image's content, 0 returns it (re-encoded).
    func generate(_ options: GenerationOptions, image: Tensor, strength: Float, progress: ProgressHandler?) throws -> GenerationResult
}

/// Diffusers' `AutoPipelineForText2Image` / `AutoPipelineForImage2Image`: the family comes from
/// `model_index.json`'s `_class_name`, whether the folder was saved from its text-to-image or
/// its image-to-image pipeline.
public enum AutoPipeline {
    /// A family: the pipeline class names that select it, and how it loads.
    public struct Family: Sendable {
        public let classNames: [String]
        public let layout: PipelineLayout
        let load: @Sendable (LoadedComponents) throws -> any TextToImagePipeline
    }

    /// Every family this version runs; a new family adds its entry here.
    public static let families: [Family] = [
        Family(classNames: ["StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"], layout: StableDiffusionPipeline.layout,
               load: { try StableDiffusionPipeline($0) }),
        Family(classNames: ["StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"], layout: StableDiffusionXLPipeline.layout,
               load: { try StableDiffusionXLPipeline($0) }),
        Family(classNames: ["FluxPipeline", "FluxImg2ImgPipeline"], layout: FluxPipeline.layout, load: { try FluxPipeline($0) }),
    ]

    /// The text-to-image pipeline of the folder's family, loaded.
    public static func textToImage(folder: String, dtype: DType = .f32, castWeightsOnLoad: Bool = true) throws -> any TextToImagePipeline {
        let family = try family(of: folder)
        return try family.load(LoadedComponents(folder: folder, layout: family.layout, dtype: dtype, castWeightsOnLoad: castWeightsOnLoad))
    }

    /// The family `folder/model_index.json` names.
    public static func family(of folder: String) throws -> Family {
        let index = try PipelineIndex(path: try LoadedComponents.modelIndexPath(folder))
        guard let name = index.className, let family = families.first(where: { $0.classNames.contains(name) }) else {
            throw PipelineError.unknownPipelineClass(folder: folder, className: index.className, known: families.flatMap(\.classNames))
        }
        return family
    }
}
