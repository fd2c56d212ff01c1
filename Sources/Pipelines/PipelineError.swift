/// Errors of loading and running pipelines; each names the folder, component or option at fault.
public enum PipelineError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingComponent(folder: String, component: String)
    case unknownComponentClass(component: String, className: String)
    case invalidOption(String)
    case cancelled

    public var description: String {
        switch self {
        case let .missingComponent(folder, component):
            return "the pipeline in \(folder) has no \(component) folder, which model_index.json names"
        case let .unknownComponentClass(component, className):
            return "component \(component) has class \(className), which this version cannot load"
        case .invalidOption(let message): return message
        case .cancelled: return "generation was cancelled"
        }
    }
}
