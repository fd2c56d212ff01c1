import Pipelines
import Models
import NN
import Tensor

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

/// The tiny pipeline's UNet and the inputs its fixtures were made with.
enum TinyUNet {
    static func load() throws -> UNet2DConditionModel {
        let folder = OffloadStrategyTests.root + "/tiny-sd/unet"
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
        try unet.load(from: Checkpoint(folder: folder))
        return unet
    }

    /// sample, timestep 981, encoder hidden states.
    static func inputs() throws -> (Tensor, Tensor, Tensor) {
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/tiny-sd/outputs/unet.safetensors")
        return (try f.tensor(named: "sample"), try Tensor(int64: [981], shape: []), try f.tensor(named: "encoder_hidden_states"))
    }
}
