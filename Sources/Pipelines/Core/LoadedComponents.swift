import NN
import Schedulers
import Tensor
import Tokenizers

/// What a family pipeline takes from a pipeline folder: Diffusers' pipeline class attributes.
public struct PipelineLayout: Sendable {
    /// The pipeline's Diffusers class name (`StableDiffusionPipeline`).
    public let className: String
    /// Every component the pipeline takes, by its `model_index.json` name.
    public let components: [String]
    /// `_optional_components`: these may be missing from `model_index.json` or `[null, null]`.
    public let optionalComponents: Set<String>
    /// `model_cpu_offload_seq`: the models in the order a call uses them. Models present but not
    /// named here come after, in the index's order.
    public let modelCPUOffloadSequence: [String]
    /// The model the denoising loop calls (`unet`, later `transformer`): layerwise casting,
    /// attention slicing and capture apply to it.
    public let denoiser: String

    public init(className: String, components: [String], optionalComponents: Set<String> = [],
                modelCPUOffloadSequence: String, denoiser: String) {
        self.className = className
        self.components = components
        self.optionalComponents = optionalComponents
        self.modelCPUOffloadSequence = modelCPUOffloadSequence.split(separator: "->").map(String.init)
        self.denoiser = denoiser
    }

    /// What a folder needs, said in errors.
    var neededFolders: String {
        let required = components.filter { !optionalComponents.contains($0) }
        return "one with model_index.json and the " + required.map { $0 + "/" }.joined(separator: ", ")
            + " folders, as Diffusers' save_pretrained writes it"
    }
}

/// The components of a pipeline folder, each loaded through the registry by its class name;
/// a family pipeline takes them by name and type, then hands them to `DiffusionPipeline`.
public struct LoadedComponents: @unchecked Sendable {
    public let folder: String
    public let layout: PipelineLayout
    public let index: PipelineIndex
    /// The compute dtype the pipeline runs in.
    public let dtype: DType
    /// Whether the weights were left in the checkpoint's dtype (`castWeightsOnLoad: false`).
    public let castPending: Bool
    private let loaded: [String: (className: String, component: PipelineComponent)]

    /// Loads every component `layout` takes. Throws when a required one is not in the index or
    /// its folder is missing, or when the index names a class the registry cannot load.
    public init(folder: String, layout: PipelineLayout, dtype: DType, castWeightsOnLoad: Bool,
                registry: ComponentRegistry = .standard) throws {
        guard dtype == .f32 || dtype == .bf16 || dtype == .f16 else {
            throw PipelineError.invalidOption("--dtype must be f32, bf16 or f16, not \(dtype)")
        }
        self.folder = folder
        self.layout = layout
        self.dtype = dtype
        castPending = !castWeightsOnLoad
        index = try PipelineIndex(path: try Self.modelIndexPath(folder, needed: layout.neededFolders))
        var loaded: [String: (String, PipelineComponent)] = [:]
        for name in layout.components {
            guard let entry = index.components.first(where: { $0.name == name }) else {
                if layout.optionalComponents.contains(name) { continue }
                throw PipelineError.componentNotInIndex(folder: folder, component: name, pipeline: layout.className)
            }
            guard let load = registry.loader(for: entry.className) else {
                throw PipelineError.unknownComponentClass(component: name, className: entry.className)
            }
            let path = folder + "/" + name
            guard FileKind.of(path) == .folder else { throw PipelineError.missingComponent(folder: folder, component: name) }
            loaded[name] = (entry.className, try load(path, castWeightsOnLoad ? dtype : nil))
        }
        self.loaded = loaded
        guard loaded[layout.denoiser] != nil else {
            throw PipelineError.componentNotInIndex(folder: folder, component: layout.denoiser, pipeline: layout.className)
        }
    }

    /// The model component `name` as `T`.
    public func model<T: Module>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let model = try optionalModel(name, as: type) else {
            throw PipelineError.componentNotInIndex(folder: folder, component: name, pipeline: layout.className)
        }
        return model
    }

    /// The model component `name` as `T`, nil when the folder has none (an optional component).
    public func optionalModel<T: Module>(_ name: String, as type: T.Type = T.self) throws -> T? {
        guard let (className, component) = loaded[name] else { return nil }
        guard case .model(let module) = component, let model = module as? T else {
            throw PipelineError.wrongComponentClass(component: name, className: className, pipeline: layout.className,
                                                    expected: String(describing: T.self))
        }
        return model
    }

    /// The tokenizer component `name` as `T` (a `CLIPTokenizer` unless said).
    public func tokenizer<T>(_ name: String, as type: T.Type = CLIPTokenizer.self) throws -> T {
        guard let tokenizer = try optionalTokenizer(name, as: type) else {
            throw PipelineError.componentNotInIndex(folder: folder, component: name, pipeline: layout.className)
        }
        return tokenizer
    }

    public func optionalTokenizer<T>(_ name: String, as type: T.Type = CLIPTokenizer.self) throws -> T? {
        guard let (className, component) = loaded[name] else { return nil }
        guard case .tokenizer(let loaded) = component, let tokenizer = loaded as? T else {
            throw PipelineError.wrongComponentClass(component: name, className: className, pipeline: layout.className,
                                                    expected: String(describing: T.self))
        }
        return tokenizer
    }

    public func schedulerConfig(_ name: String = "scheduler") throws -> SchedulerConfig {
        guard let (className, component) = loaded[name] else {
            throw PipelineError.componentNotInIndex(folder: folder, component: name, pipeline: layout.className)
        }
        guard case .scheduler(let config) = component else {
            throw PipelineError.wrongComponentClass(component: name, className: className, pipeline: layout.className, expected: "a scheduler")
        }
        return config
    }

    /// The model components, those of `model_cpu_offload_seq` first in its order, then the rest
    /// in the order the layout lists them.
    public var models: [(name: String, module: Module)] {
        let order = layout.modelCPUOffloadSequence + layout.components.filter { !layout.modelCPUOffloadSequence.contains($0) }
        return order.compactMap { name in
            guard case .model(let module)? = loaded[name]?.component else { return nil }
            return (name, module)
        }
    }

    /// `folder/model_index.json`, after checking that `folder` is a pipeline folder at all: a
    /// single checkpoint file or a folder without an index gets a sentence saying what is needed.
    static func modelIndexPath(_ folder: String,
                               needed: String = "one with model_index.json and its component folders, as Diffusers' save_pretrained writes it")
        throws -> String {
        switch FileKind.of(folder) {
        case nil: throw FileError.notFound(path: folder)
        case .folder?: break
        case .regularFile?:
            throw PipelineError.notAPipelineFolder(path: folder, reason: "it is a single file; this version loads only folders (\(needed))")
        case let kind?: throw PipelineError.notAPipelineFolder(path: folder, reason: "it is \(kind.phrase); give a folder (\(needed))")
        }
        let index = folder.hasSuffix("/") ? folder + "model_index.json" : folder + "/model_index.json"
        guard FileKind.of(index) != nil else {
            throw PipelineError.notAPipelineFolder(path: folder, reason: "it has no model_index.json; give \(needed)")
        }
        return index
    }
}
