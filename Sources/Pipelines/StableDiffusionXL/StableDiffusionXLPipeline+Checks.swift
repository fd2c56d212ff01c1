import Tensor

/// What an SDXL call checks before it computes anything, beyond `UNetDiffusionPipeline.resolvedSize`.
extension StableDiffusionXLPipeline {
    /// The validated size (width, height) of a call; `supported` are the family arguments the
    /// calling pipeline (text or image to image) takes.
    func resolvedCall(_ options: GenerationOptions, supported: Set<FamilyOption>, pipeline: String) throws -> (Int, Int) {
        try options.refuseUnsupported(supported, pipeline: pipeline)
        let layers = textEncoder2.config.numHiddenLayers
        if let skip = options.clipSkip, skip < 0 || skip > layers - 1 {
            throw PipelineError.invalidOption("clip_skip must be from 0 to \(layers - 1) for this text encoder, not \(skip)")
        }
        let micro = options.microConditioning
        for (name, size) in [("original_size", micro.originalSize), ("target_size", micro.targetSize),
                             ("negative_original_size", micro.negativeOriginalSize), ("negative_target_size", micro.negativeTargetSize)] {
            guard let size else { continue }
            guard (1...Self.maximumImageSide).contains(size.width), (1...Self.maximumImageSide).contains(size.height) else {
                throw PipelineError.invalidOption("\(name) must be positive sizes up to \(Self.maximumImageSide), not \(size.width)x\(size.height)")
            }
        }
        for (name, score) in [("aesthetic_score", micro.aestheticScore), ("negative_aesthetic_score", micro.negativeAestheticScore)] {
            if let score, !score.isFinite { throw PipelineError.invalidOption("\(name) must be a finite number, not \(score)") }
        }
        return try resolvedSize(options, supported: supported, pipeline: pipeline)
    }
}
