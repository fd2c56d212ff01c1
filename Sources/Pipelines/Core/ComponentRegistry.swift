import Models
import NN
import Schedulers
import Tensor
import Tokenizers

/// One component of a pipeline folder, loaded.
public enum PipelineComponent: @unchecked Sendable {
    case model(Module)
    /// A `CLIPTokenizer` or a `T5Tokenizer`.
    case tokenizer(any Sendable)
    case scheduler(SchedulerConfig)
}

/// Loads pipeline components by the class name `model_index.json` gives them, as Diffusers'
/// `load_sub_model` looks classes up in their library. Every class this project loads is
/// registered in `standard`, once: a new model family adds its loaders there and nowhere else.
public struct ComponentRegistry: @unchecked Sendable {
    /// Loads a component from its folder; `dtype` nil keeps the checkpoint's dtype (mapped).
    public typealias Loader = (_ folder: String, _ dtype: DType?) throws -> PipelineComponent
    private var loaders: [String: Loader] = [:]
    /// Model classes also build without weights (for their parameter order).
    private var builders: [String: (_ folder: String) throws -> Module] = [:]

    public init() {}

    public mutating func register(_ classNames: [String], _ loader: @escaping Loader) {
        for name in classNames { loaders[name] = loader }
    }

    /// Registers a model class: its config reader, the weights the config implies, and its
    /// constructor; it then loads as a component and builds without weights.
    public mutating func registerModel<Config, Model: Module>(_ classNames: [String], config read: @escaping (ModelConfig) throws -> Config,
                                                              implied: @escaping (Config) -> ParameterTally,
                                                              build: @escaping (Config) -> Model,
                                                              load: ((Model, Checkpoint, DType?) throws -> Void)? = nil) {
        let checkedBuild = { folder in try checkedModel(folder, config: read, implied: implied, build: build) }
        let loadWeights = load ?? { model, checkpoint, dtype in try model.load(from: checkpoint, dtype: dtype) }
        register(classNames) { folder, dtype in .model(try loadModel(checkedBuild(folder), from: folder, dtype: dtype, load: loadWeights)) }
        for name in classNames { builders[name] = { try checkedBuild($0).model } }
    }

    public func loader(for className: String) -> Loader? { loaders[className] }

    /// The model of class `className` built from `folder/config.json` without loading weights
    /// (its `namedParameters()` order is Diffusers' `state_dict()` order); nil for a class that
    /// is not a registered model.
    public func unloadedModel(className: String, folder: String) throws -> Module? {
        try builders[className].map { try $0(folder) }
    }

    /// The class names this registry can load, sorted.
    public var classNames: [String] { loaders.keys.sorted() }

    /// Every component class of the families this version implements.
    public static let standard: ComponentRegistry = {
        var registry = ComponentRegistry()
        registry.register(["CLIPTokenizer", "CLIPTokenizerFast"]) { folder, _ in .tokenizer(try CLIPTokenizer(folder: folder)) }
        registry.register(["T5Tokenizer", "T5TokenizerFast"]) { folder, _ in .tokenizer(try T5Tokenizer(folder: folder)) }
        registry.registerModel(["CLIPTextModel"], config: CLIPTextConfig.init, implied: { $0.impliedParameters() }, build: CLIPTextModel.init)
        registry.registerModel(["CLIPTextModelWithProjection"], config: CLIPTextConfig.init, implied: { $0.impliedParameters(withProjection: true) },
                               build: CLIPTextModelWithProjection.init)
        registry.registerModel(["UNet2DConditionModel"], config: UNet2DConditionConfig.init, implied: \.impliedParameters,
                               build: UNet2DConditionModel.init)
        registry.registerModel(["AutoencoderKL"], config: AutoencoderKLConfig.init, implied: \.impliedParameters, build: AutoencoderKL.init)
        // transformers keeps the feed-forward output projections in f32 in an f16 load.
        registry.registerModel(["T5EncoderModel", "UMT5EncoderModel"], config: T5Config.init, implied: \.impliedParameters,
                               build: T5EncoderModel.init, load: { try $0.loadKeepingFP32Modules(from: $1, dtype: $2) })
        registry.registerModel(["FluxTransformer2DModel"], config: FluxTransformer2DConfig.init, implied: \.impliedParameters,
                               build: FluxTransformer2DModel.init)
        registry.register(SchedulerKind.allCases.map(\.rawValue)) { folder, _ in
            .scheduler(try SchedulerConfig(contentsOf: folder + "/scheduler_config.json"))
        }
        return registry
    }()
}

/// One model component's module: its config read and checked, the checkpoint's headers
/// compared with the weights the config implies (a config asking for far more tensors than the
/// checkpoint holds is refused before the module tree is built: building costs in proportion to
/// the config, which the file controls), then the model built, without weights.
private func checkedModel<Config, Model: Module>(_ path: String, config read: (ModelConfig) throws -> Config,
                                                 implied: (Config) -> ParameterTally,
                                                 build: (Config) -> Model) throws -> (model: Model, checkpoint: Checkpoint) {
    let configPath = path + "/config.json"
    let config = try read(ModelConfig(path: configPath))
    let checkpoint = try Checkpoint(folder: path)
    try checkpoint.checkHolds(implied(config), config: configPath)
    return (build(config), checkpoint)
}

/// The checked model loaded key by key from its checkpoint.
private func loadModel<Model: Module>(_ checked: (model: Model, checkpoint: Checkpoint), from path: String, dtype: DType?,
                                      load: (Model, Checkpoint, DType?) throws -> Void) throws -> Module {
    do {
        try load(checked.model, checked.checkpoint, dtype)
    } catch let error as ModuleError {
        // The key check lists tensors; say which folder's weights and config disagree.
        guard case .checkpointMismatch = error else { throw error }
        throw PipelineError.componentMismatch(config: path + "/config.json", weights: path, detail: "\(error)")
    }
    return checked.model
}
