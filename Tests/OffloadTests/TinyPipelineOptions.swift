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

/// A denoiser and a forward with its inputs, for the tests every denoiser (the SD and SDXL
/// UNets, the FLUX transformer) opts into.
struct ModelCase: Sendable {
    let name: String
    let make: @Sendable () throws -> Module
    let forward: @Sendable (Module) throws -> Tensor

    init<M: Module>(name: String, make: @escaping @Sendable () throws -> M, forward: @escaping @Sendable (M) throws -> Tensor) {
        self.name = name
        self.make = make
        self.forward = { module in
            guard let model = module as? M else { throw ModuleError.invalidInput("\(name) runs a \(M.self), not a \(type(of: module))") }
            return try forward(model)
        }
    }

    static let tinySD = ModelCase(name: "tiny SD UNet", make: TinyUNet.load) { unet in
        let (sample, t, context) = try TinyUNet.inputs()
        return try unet(sample, timestep: t, encoderHiddenStates: context)
    }

    /// The tiny SDXL base UNet (text_time addition embedding, transformer depths [1, 2]) on
    /// its fixture's inputs.
    static let tinySDXL = ModelCase(name: "tiny SDXL UNet", make: {
        let folder = OffloadStrategyTests.root + "/tiny-sdxl-models/unet-base"
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: folder + "/config.json")))
        try unet.load(from: Checkpoint(folder: folder))
        return unet
    }) { (unet: UNet2DConditionModel) in
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/tiny-sdxl-models/outputs/unet-base.safetensors")
        let added = UNet2DConditionModel.AddedConditions(textEmbeds: try f.tensor(named: "text_embeds"), timeIds: try f.tensor(named: "time_ids"))
        return try unet(f.tensor(named: "sample"), timestep: Tensor(int64: [981], shape: []),
                        encoderHiddenStates: f.tensor(named: "encoder_hidden_states"), addedConditions: added)
    }

    /// The tiny FLUX.1-dev transformer (2 dual-stream, 2 single-stream blocks) on its fixture's inputs.
    static let tinyFluxDev = ModelCase(name: "tiny FLUX transformer", make: {
        let folder = OffloadStrategyTests.root + "/tiny-flux-models/transformer-dev"
        let model = FluxTransformer2DModel(try FluxTransformer2DConfig(ModelConfig(path: folder + "/config.json")))
        try model.load(from: Checkpoint(folder: folder))
        return model
    }) { (model: FluxTransformer2DModel) in
        let f = try SafeTensorsFile(path: OffloadStrategyTests.root + "/tiny-flux-models/outputs.safetensors")
        return try model(f.tensor(named: "dev.hidden_states"), encoderHiddenStates: f.tensor(named: "dev.encoder_hidden_states"),
                         pooledProjections: f.tensor(named: "dev.pooled_projections"), timestep: f.tensor(named: "dev.timestep"),
                         imageIds: f.tensor(named: "dev.img_ids"), textIds: f.tensor(named: "dev.txt_ids"), guidance: f.tensor(named: "dev.guidance"))
    }
}
