import Pipelines

extension GenerationOptions {
    /// The tiny pipeline's quick run the offload tests compare: one step at 64×64, a red circle.
    static func tinyOneStep() -> GenerationOptions {
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
        options.steps = 1
        options.width = 64
        options.height = 64
        return options
    }
}
