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

/// A UNet and a forward with its inputs, for the tests every UNet configuration opts into.
struct UNetCase: Sendable {
    let name: String
    let make: @Sendable () throws -> UNet2DConditionModel
    let forward: @Sendable (UNet2DConditionModel) throws -> Tensor

    static let tinySD = UNetCase(name: "tiny SD UNet", make: TinyUNet.load) { unet in
        let (sample, t, context) = try TinyUNet.inputs()
        return try unet(sample, timestep: t, encoderHiddenStates: context)
    }

    /// The tiny SDXL base UNet (text_time addition embedding, transformer depths [1, 2]) on
    /// its fixture's inputs.
    static let tinySDXL = UNetCase(name: "tiny SDXL UNet", make: {
        let folder = OffloadStrategyTests.root + "/tiny-sdxl-models/unet-base"
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
        try unet.load(from: Checkpoint(folder: folder))
        return unet
    }) { unet in
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/tiny-sdxl-models/outputs/unet-base.safetensors")
        let added = UNet2DConditionModel.AddedConditions(textEmbeds: try f.tensor(named: "text_embeds"), timeIds: try f.tensor(named: "time_ids"))
        return try unet(f.tensor(named: "sample"), timestep: Tensor(int64: [981], shape: []),
                        encoderHiddenStates: f.tensor(named: "encoder_hidden_states"), addedConditions: added)
    }
}
