import NN
import Tensor

/// What device-map planning needs of a model, independent of weights: every module in
/// registration order with its Diffusers class name and its own tensors (shape × dtype).
///
/// Accelerate walks `named_parameters(recurse=False)`, `named_children()` and
/// `named_buffers()` of a model built on the meta device; this is that view of a `Module`
/// (or of a description, e.g. one dumped from PyTorch for tests).
public struct ModuleTree: Sendable {
    /// One tensor a module owns directly.
    public struct TensorInfo: Sendable, Equatable {
        /// The name inside its module (`weight`).
        public var name: String
        public var elementCount: Int
        /// The tensor's own dtype (the loaded one; `f32` for an unloaded slot, as PyTorch builds models).
        public var dtype: DType

        public init(name: String, elementCount: Int, dtype: DType) {
            self.name = name
            self.elementCount = elementCount
            self.dtype = dtype
        }
    }

    /// A module to describe: its class, its own parameters and buffers, its children in
    /// registration order.
    public struct Spec: Sendable {
        public var className: String
        public var parameters: [TensorInfo]
        public var buffers: [TensorInfo]
        public var children: [Child]
        /// No-split classes this module declares when it is a model (Diffusers' `_no_split_modules`).
        public var noSplitModuleClasses: [String]

        public struct Child: Sendable {
            public var name: String
            public var spec: Spec
            public init(name: String, spec: Spec) {
                self.name = name
                self.spec = spec
            }
        }

        public init(className: String, parameters: [TensorInfo] = [], buffers: [TensorInfo] = [],
                    children: [Child] = [], noSplitModuleClasses: [String] = []) {
            self.className = className
            self.parameters = parameters
            self.buffers = buffers
            self.children = children
            self.noSplitModuleClasses = noSplitModuleClasses
        }
    }

    /// A module of the tree; `children` index `nodes`.
    public struct Node: Sendable {
        /// Dotted path from the root ("" for the root).
        public let path: String
        public let className: String
        public let parameters: [TensorInfo]
        public let buffers: [TensorInfo]
        public let children: [(name: String, node: Int)]
        public let noSplitModuleClasses: [String]

        /// The dotted path of `name` inside this module.
        public func path(of name: String) -> String { path.isEmpty ? name : path + "." + name }
    }

    /// Every module, depth first; `nodes[0]` is the root.
    public private(set) var nodes: [Node] = []
    private var indexByPath: [String: Int] = [:]
    private var tensorPaths: Set<String> = []

    /// The tree of `spec`.
    public init(_ spec: Spec) {
        add(spec, path: "")
        tensorPaths = Set(parameterPaths + bufferPaths)
    }

    /// The tree of a `Module`: its children, class names, parameter shapes and dtypes.
    public init(_ module: Module) {
        self.init(Self.spec(of: module))
    }

    /// The description of `module`: its parameters, and as buffers those it computes
    /// (`computedBuffers`; modules here store no buffers).
    public static func spec(of module: Module) -> Spec {
        Spec(className: module.className,
             parameters: module.parameters.map { entry in
                 TensorInfo(name: entry.name, elementCount: entry.parameter.shape.reduce(1, *),
                            dtype: entry.parameter.value?.dtype ?? .f32)
             },
             buffers: module.computedBuffers.map { TensorInfo(name: $0.name, elementCount: $0.elementCount, dtype: $0.dtype) },
             children: module.children.map { Spec.Child(name: $0.name, spec: spec(of: $0.module)) },
             noSplitModuleClasses: module.noSplitModuleClasses)
    }

    @discardableResult
    private mutating func add(_ spec: Spec, path: String) -> Int {
        let index = nodes.count
        indexByPath[path] = index
        // Reserve the slot so that children are numbered after their parent (depth first).
        nodes.append(Node(path: path, className: spec.className, parameters: [], buffers: [], children: [],
                          noSplitModuleClasses: []))
        var children: [(name: String, node: Int)] = []
        for child in spec.children {
            children.append((child.name, add(child.spec, path: path.isEmpty ? child.name : path + "." + child.name)))
        }
        nodes[index] = Node(path: path, className: spec.className, parameters: spec.parameters, buffers: spec.buffers,
                            children: children, noSplitModuleClasses: spec.noSplitModuleClasses)
        return index
    }

    /// The root module.
    public var root: Node { nodes[0] }

    /// The module at `path`, or nil.
    public func node(at path: String) -> Node? { indexByPath[path].map { nodes[$0] } }

    func nodeIndex(at path: String) -> Int? { indexByPath[path] }

    /// Every parameter path, in `named_parameters()` order (each module's own, then its children's).
    public var parameterPaths: [String] { nodes.flatMap { node in node.parameters.map { node.path(of: $0.name) } } }

    /// Every buffer path, in `named_buffers()` order.
    public var bufferPaths: [String] { nodes.flatMap { node in node.buffers.map { node.path(of: $0.name) } } }

    /// A position for every module, parameter and buffer path in model order (a module,
    /// its parameters, its children, its buffers), to sort device-map keys by.
    func modelOrder() -> [String: Int] {
        var order: [String: Int] = [:]
        func visit(_ index: Int) {
            let node = nodes[index]
            order[node.path] = order.count
            for tensor in node.parameters { order[node.path(of: tensor.name)] = order.count }
            for child in node.children { visit(child.node) }
            for tensor in node.buffers where order[node.path(of: tensor.name)] == nil {
                order[node.path(of: tensor.name)] = order.count
            }
        }
        visit(0)
        return order
    }

    /// Whether `key` names a module, or a parameter or buffer, of this tree, or is a dotted
    /// prefix of one (`""` always is).
    public func contains(path key: String) -> Bool {
        key.isEmpty || indexByPath[key] != nil || tensorPaths.contains(key)
    }
}

/// Bytes per module and tensor path, as Accelerate's `compute_module_sizes` computes them:
/// every key is a dotted path ("" is the whole model), each tensor counted in all its
/// prefixes, keys in first-seen order (parameters first, then buffers).
public struct ModuleSizes: Sendable, Equatable {
    /// The paths in the order Accelerate's dictionary holds them.
    public private(set) var order: [String] = []
    private var sizes: [String: Int] = [:]

    init() {}

    /// The size of `path`, 0 for a path without tensors (Python's `defaultdict(int)`).
    public subscript(path: String) -> Int { sizes[path] ?? 0 }

    /// The whole model's size.
    public var total: Int { self[""] }

    /// Whether `path` has an entry.
    public func contains(_ path: String) -> Bool { sizes[path] != nil }

    mutating func add(_ bytes: Int, toTensor path: String) {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        for count in 0...parts.count {
            let key = parts.prefix(count).joined(separator: ".")
            if sizes[key] == nil { order.append(key) }
            sizes[key, default: 0] += bytes
        }
    }

    /// The entries without `paths` (for `get_balanced_memory`'s leaf pruning).
    func removing(_ paths: Set<String>) -> ModuleSizes {
        var copy = ModuleSizes()
        copy.order = order.filter { !paths.contains($0) }
        copy.sizes = sizes.filter { !paths.contains($0.key) }
        return copy
    }
}

/// Bytes one element of `dtype` takes in Accelerate's `dtype_byte_size`. Accelerate counts
/// `bool` as 1/8 byte; here it is 1 (whole bytes only; diffusion models have no bool weights).
func byteSize(_ dtype: DType) -> Int { dtype.itemSize }

extension ModuleTree {
    /// Accelerate's `compute_module_sizes`: each tensor's `elementCount` × the size of the
    /// target `dtype`, but never more than its own dtype (`min(target, own)`); integer and
    /// bool tensors keep their own size (they are not converted); a parameter named in
    /// `specialDTypes` uses that dtype (e.g. `_keep_in_fp32_modules`). Without `dtype`,
    /// each tensor's own dtype.
    public func moduleSizes(dtype: DType? = nil, specialDTypes: [String: DType] = [:],
                            buffersOnly: Bool = false) -> ModuleSizes {
        var sizes = ModuleSizes()
        func bytes(_ tensor: TensorInfo, path: String) -> Int {
            if let special = specialDTypes[path] { return tensor.elementCount * byteSize(special) }
            guard let dtype, tensor.dtype.isFloatingPoint else { return tensor.elementCount * byteSize(tensor.dtype) }
            return tensor.elementCount * min(byteSize(dtype), byteSize(tensor.dtype))
        }
        if !buffersOnly {
            for node in nodes {
                for tensor in node.parameters {
                    let path = node.path(of: tensor.name)
                    sizes.add(bytes(tensor, path: path), toTensor: path)
                }
            }
        }
        for node in nodes {
            for tensor in node.buffers {
                let path = node.path(of: tensor.name)
                sizes.add(bytes(tensor, path: path), toTensor: path)
            }
        }
        return sizes
    }
}
