/// A pipeline folder's `model_index.json`: the pipeline class and, per component
/// subfolder, the library and class that load it (`"unet": ["diffusers",
/// "UNet2DConditionModel"]`). Absent optional components (`[null, null]`) are skipped;
/// other non-`_` keys are pipeline options (`requires_safety_checker`).
public struct PipelineIndex: Sendable {
    public struct Component: Sendable, Equatable {
        /// Subfolder name (`unet`, `text_encoder`, ...).
        public let name: String
        public let library: String
        public let className: String
    }

    public let path: String
    public let className: String?
    public let diffusersVersion: String?
    /// Components in file order.
    public let components: [Component]
    /// Non-component, non-`_` entries.
    public let options: [(key: String, value: JSONValue)]

    public init(path: String) throws {
        let json = try JSONFile.read(path)
        guard let members = json.objectMembers else {
            throw CheckpointError.invalidModelIndex(path: path, reason: "the file is \(json.typeName), not a JSON object")
        }
        var className: String?, version: String?
        var components: [Component] = []
        var options: [(key: String, value: JSONValue)] = []
        for (key, value) in members {
            if key == "_class_name" || key == "_diffusers_version" {
                guard let s = value.stringValue else {
                    throw CheckpointError.invalidModelIndex(path: path, reason: "'\(key)' is \(value.typeName), not a string")
                }
                if key == "_class_name" { className = s } else { version = s }
                continue
            }
            if key.hasPrefix("_") { continue }
            guard let pair = value.arrayValue, pair.count == 2 else { options.append((key, value)); continue }
            if pair[0].isNull && pair[1].isNull { continue }
            guard let library = pair[0].stringValue, let cls = pair[1].stringValue else {
                throw CheckpointError.invalidModelIndex(
                    path: path, reason: "component '\(key)' must be [library, class] strings or [null, null]")
            }
            guard ShardIndex.isBareFileName(key) else {
                throw CheckpointError.invalidModelIndex(path: path, reason: "component name '\(key)' is not a plain folder name")
            }
            components.append(Component(name: key, library: library, className: cls))
        }
        self.path = path
        self.className = className
        self.diffusersVersion = version
        self.components = components
        self.options = options
    }
}
