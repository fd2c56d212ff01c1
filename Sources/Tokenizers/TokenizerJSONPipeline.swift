import JSON

/// The normaliser, pre-tokeniser and post-processor of a `tokenizer.json` as written, for
/// `T5Tokenizer.Compatibility.tokenizerJSON` (what transformers 4's `T5TokenizerFast` and the
/// tokenizers library's `Tokenizer.from_file` use). The components SentencePiece conversions
/// write are supported: normalisers `Precompiled`, `Strip`, `Replace` and `Sequence`;
/// pre-tokenisers `WhitespaceSplit`, `Metaspace` and a `Sequence` of them in that order;
/// `TemplateProcessing` (single-sequence template) or no post-processor.
struct TokenizerJSONPipeline: Sendable {
    enum NormalizerStep: Sendable {
        case precompiled(PrecompiledCharsmap)
        /// Removes White_Space characters at the start and/or end.
        case strip(left: Bool, right: Bool)
        case replaceString(pattern: String, content: String)
        /// Matched on Unicode scalars; the reference uses Oniguruma, whose syntax agrees with
        /// Swift's on patterns such as SentencePiece conversions' ` {2,}`. Kept as text (a
        /// `Regex` with untyped captures is not `Sendable`) and compiled where used.
        case replaceRegex(pattern: String, content: String)
    }

    var normalizers: [NormalizerStep] = []
    var preTokenizer = MetaspacePreTokenizer(splitsAtWhitespace: false, metaspace: nil)
    /// The special tokens the post-processor puts before and after the sequence, by id.
    var prefixIDs: [Int] = []
    var suffixIDs: [Int] = []

    init(root: JSONValue, path: String) throws(TokenizerError) {
        if let normalizer = root.lastMember("normalizer"), !normalizer.isNull {
            try appendNormalizer(normalizer, path: path)
        }
        if let preTokenizer = root.lastMember("pre_tokenizer"), !preTokenizer.isNull {
            self.preTokenizer = try Self.preTokenizer(preTokenizer, path: path)
        }
        if let processor = root.lastMember("post_processor"), !processor.isNull {
            (prefixIDs, suffixIDs) = try Self.template(processor, path: path)
        }
    }

    /// `text` through the normalisers in order.
    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text = text
        for step in normalizers {
            switch step {
            case .precompiled(let charsmap):
                text = charsmap.normalize(text)
            case .strip(let left, let right):
                var slice = text[...]
                if right { while let last = slice.last, last.properties.isWhitespace { slice = slice.dropLast() } }
                if left { slice = slice.drop(while: { $0.properties.isWhitespace }) }
                text = Array(slice)
            case .replaceString(let pattern, let content):
                text = Array(Self.string(text).replacing(pattern, with: content).unicodeScalars)
            case .replaceRegex(let pattern, let content):
                // Compiled once when loading: it cannot fail here.
                guard let regex = try? Regex(pattern) else { continue }
                text = Array(Self.string(text).replacing(regex.matchingSemantics(.unicodeScalar), with: content).unicodeScalars)
            }
        }
        return text
    }

    private static func string(_ scalars: [Unicode.Scalar]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    private static func unsupported(_ path: String, _ key: String, _ value: JSONValue) -> TokenizerError {
        let type = value.lastMember("type")?.stringValue.map { "of type \($0)" } ?? "without a type"
        return .invalidConfiguration(path: path, key: key, reason: "has a component \(type), which this tokenizer does not support")
    }

    private mutating func appendNormalizer(_ value: JSONValue, path: String) throws(TokenizerError) {
        let key = "normalizer"
        func flag(_ name: String) throws(TokenizerError) -> Bool {
            switch value.lastMember(name) {
            case .bool(let flag)?: return flag
            default: throw .invalidConfiguration(path: path, key: key, reason: "has a Strip without a boolean \"\(name)\"")
            }
        }
        switch value.lastMember("type")?.stringValue {
        case "Sequence":
            guard let members = value.lastMember("normalizers")?.arrayValue else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a Sequence without a \"normalizers\" array")
            }
            for member in members { try appendNormalizer(member, path: path) }
        case "Precompiled":
            normalizers.append(.precompiled(try UnigramTokenizerFile.charsmap(of: value, path: path)))
        case "Strip":
            normalizers.append(.strip(left: try flag("strip_left"), right: try flag("strip_right")))
        case "Replace":
            guard let content = value.lastMember("content")?.stringValue else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a Replace without a string \"content\"")
            }
            let pattern = value.lastMember("pattern")
            if let literal = pattern?.lastMember("String")?.stringValue {
                normalizers.append(.replaceString(pattern: literal, content: content))
            } else if let expression = pattern?.lastMember("Regex")?.stringValue {
                guard (try? Regex(expression)) != nil else {
                    throw .invalidConfiguration(path: path, key: key, reason: "has a Replace pattern /\(expression)/ that is not a supported regular expression")
                }
                normalizers.append(.replaceRegex(pattern: expression, content: content))
            } else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a Replace without a \"String\" or \"Regex\" pattern")
            }
        default:
            throw Self.unsupported(path, key, value)
        }
    }

    private static func preTokenizer(_ value: JSONValue, path: String) throws(TokenizerError) -> MetaspacePreTokenizer {
        let key = "pre_tokenizer"
        var steps = [value]
        if value.lastMember("type")?.stringValue == "Sequence" {
            guard let members = value.lastMember("pretokenizers")?.arrayValue else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a Sequence without a \"pretokenizers\" array")
            }
            steps = members
        }
        var result = MetaspacePreTokenizer(splitsAtWhitespace: false, metaspace: nil)
        for step in steps {
            switch step.lastMember("type")?.stringValue {
            // Only WhitespaceSplit before Metaspace: after it, spaces are gone already.
            case "WhitespaceSplit" where result.metaspace == nil && !result.splitsAtWhitespace:
                result.splitsAtWhitespace = true
            case "Metaspace" where result.metaspace == nil:
                result.metaspace = try metaspace(step, path: path)
            default:
                throw unsupported(path, key, step)
            }
        }
        return result
    }

    /// tokenizers' Metaspace deserialisation: `prepend_scheme` (default "always"), or the old
    /// `add_prefix_space` (false means "never"); `split` true unless said otherwise.
    private static func metaspace(_ value: JSONValue, path: String) throws(TokenizerError) -> MetaspacePreTokenizer.Metaspace {
        let key = "pre_tokenizer"
        var metaspace = MetaspacePreTokenizer.Metaspace()
        guard let text = value.lastMember("replacement")?.stringValue, text.unicodeScalars.count == 1,
              let replacement = text.unicodeScalars.first else {
            throw .invalidConfiguration(path: path, key: key, reason: "has a Metaspace whose \"replacement\" is not one character")
        }
        metaspace.replacement = replacement
        if let scheme = value.lastMember("prepend_scheme") {
            guard let name = scheme.stringValue, let parsed = MetaspacePreTokenizer.PrependScheme(rawValue: name) else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a Metaspace \"prepend_scheme\" other than \"always\", \"first\" or \"never\"")
            }
            metaspace.prependScheme = parsed
        }
        switch value.lastMember("add_prefix_space") {
        case nil, .null?, .bool(true)?: break
        case .bool(false)?:
            guard value.lastMember("prepend_scheme") == nil || metaspace.prependScheme == .never else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a Metaspace whose \"add_prefix_space\" contradicts its \"prepend_scheme\"")
            }
            metaspace.prependScheme = .never
        default:
            throw .invalidConfiguration(path: path, key: key, reason: "has a Metaspace with a non-boolean \"add_prefix_space\"")
        }
        switch value.lastMember("split") {
        case nil, .null?: break
        case .bool(let split)?: metaspace.split = split
        default: throw .invalidConfiguration(path: path, key: key, reason: "has a Metaspace with a non-boolean \"split\"")
        }
        return metaspace
    }

    /// The ids before and after `$A` in a TemplateProcessing's `single` template.
    private static func template(_ value: JSONValue, path: String) throws(TokenizerError) -> ([Int], [Int]) {
        let key = "post_processor"
        guard value.lastMember("type")?.stringValue == "TemplateProcessing" else { throw unsupported(path, key, value) }
        guard let items = value.lastMember("single")?.arrayValue else {
            throw .invalidConfiguration(path: path, key: key, reason: "has no \"single\" template")
        }
        var prefix: [Int] = []
        var suffix: [Int] = []
        var seenSequence = false
        for item in items {
            if item.lastMember("Sequence") != nil, !seenSequence {
                seenSequence = true
            } else if let name = item.lastMember("SpecialToken")?.lastMember("id")?.stringValue {
                let entries = value.lastMember("special_tokens")?.lastMember(name)?.lastMember("ids")?.arrayValue
                var resolved: [Int] = []
                for entry in entries ?? [.null] {
                    guard let id = entry.intValue, id >= 0 else {
                        throw .invalidConfiguration(path: path, key: key, reason: "names a special token \"\(name)\" without integer ids")
                    }
                    resolved.append(id)
                }
                if seenSequence { suffix += resolved } else { prefix += resolved }
            } else {
                throw .invalidConfiguration(path: path, key: key, reason: "has a single template other than $A with special tokens")
            }
        }
        guard seenSequence else { throw .invalidConfiguration(path: path, key: key, reason: "has a single template without $A") }
        return (prefix, suffix)
    }
}
