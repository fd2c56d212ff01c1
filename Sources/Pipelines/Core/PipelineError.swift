/// Errors of loading and running pipelines; each names the folder, component or option at fault.
public enum PipelineError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingComponent(folder: String, component: String)
    case unknownComponentClass(component: String, className: String)
    /// `model_index.json` has no entry for a component the pipeline needs.
    case componentNotInIndex(folder: String, component: String, pipeline: String)
    /// A component of a class the registry loads, but not one this pipeline can use there.
    case wrongComponentClass(component: String, className: String, pipeline: String, expected: String)
    /// `model_index.json`'s `_class_name` names no pipeline this version implements.
    case unknownPipelineClass(folder: String, className: String?, known: [String])
    case invalidOption(String)
    /// `--model` (or a folder argument) that is not a Diffusers pipeline folder.
    case notAPipelineFolder(path: String, reason: String)
    /// A component's weights do not fit the model its config describes (`detail` lists the tensors).
    case componentMismatch(config: String, weights: String, detail: String)
    case cancelled
    /// NaN or infinity appeared at `stage` (weights, options or overflow): `count` of `total` values.
    case nonFinite(stage: String, count: Int, total: Int)

    public var description: String {
        switch self {
        case let .missingComponent(folder, component):
            return "the pipeline in \(folder) has no \(component) folder, which model_index.json names"
        case let .unknownComponentClass(component, className):
            return "component \(component) has class \(className), which this version cannot load"
        case let .componentNotInIndex(folder, component, pipeline):
            return "\(folder)/model_index.json names no \(component), which \(pipeline) needs"
        case let .wrongComponentClass(component, className, pipeline, expected):
            return "component \(component) has class \(className); \(pipeline) needs \(expected) there"
        case let .unknownPipelineClass(folder, className, known):
            let named = className.map { "names the pipeline class \($0)" } ?? "names no pipeline class (_class_name)"
            return "\(folder)/model_index.json \(named); this version runs " + known.joined(separator: ", ")
        case .invalidOption(let message): return message
        case let .componentMismatch(config, weights, detail):
            return "the weights in \(weights) do not fit the model \(config) describes: " + detail.replacingOccurrences(of: "the checkpoint does not fit the model: ", with: "")
        case let .notAPipelineFolder(path, reason):
            return "\(path) is not a Diffusers pipeline folder: \(reason)"
        case .cancelled: return "generation was cancelled"
        case let .nonFinite(stage, count, total):
            return "\(stage) holds NaN or infinite values (\(count) of \(total)); the weights, the inputs or the options give numbers no image can come from"
        }
    }
}
