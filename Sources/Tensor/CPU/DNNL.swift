import CDNNL
import Foundation

/// The oneDNN CPU engine and helpers around its C API: memory descriptors from tensor
/// layouts, primitives cached per shape, execution on a per-thread stream.
final class DNNL: @unchecked Sendable {
    let engine: dnnl_engine_t

    /// One engine per process: it is an immutable handle to the CPU, not device state.
    static let shared: Result<DNNL, TensorError> = {
        var engine: dnnl_engine_t?
        let status = dnnl_engine_create(&engine, dnnl_cpu, 0)
        guard status == dnnl_success, let engine else {
            return .failure(.backend("oneDNN could not create a CPU engine (status \(status.rawValue))"))
        }
        return .success(DNNL(engine: engine))
    }()

    /// The engine, with oneDNN set to use every kernel thread for calls from this thread.
    /// Primitives fix their thread split when created, so this must run before they are
    /// looked up (worker threads that run small primitives one per thread set 1 instead).
    static func get(threads: Int = Parallel.threadCount) throws -> DNNL {
        setThreads(threads)
        return try shared.get()
    }

    private init(engine: dnnl_engine_t) { self.engine = engine }

    private let cacheLock = NSLock()
    private var primitives: [String: Primitive] = [:]

    /// The primitive cached under `key`, created by `make` on first use.
    func primitive(_ key: String, make: () throws -> Primitive) throws -> Primitive {
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let p = primitives[key] { return p }
        let p = try make()
        primitives[key] = p
        return p
    }

    /// Creates a primitive from the primitive descriptor `describe` makes with the attributes
    /// it is given (oneDNN 3 creates descriptors per operation). Scratchpads are user-managed:
    /// each execution gets its own (so one primitive can run on several threads at once, which
    /// oneDNN's library-managed scratchpad does not allow) and its bytes are accounted.
    func makePrimitive(attributes: dnnl_primitive_attr_t? = nil, what: String,
                       describe: (inout dnnl_primitive_desc_t?, dnnl_primitive_attr_t?) -> dnnl_status_t) throws -> Primitive {
        var ownAttributes: dnnl_primitive_attr_t?
        defer { if let ownAttributes { dnnl_primitive_attr_destroy(ownAttributes) } }
        if attributes == nil { try check(dnnl_primitive_attr_create(&ownAttributes), "attributes") }
        let attr = attributes ?? ownAttributes
        try check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
        var pd: dnnl_primitive_desc_t?
        try check(describe(&pd, attr), what)
        guard let pd else { throw TensorError.backend("\(what): no primitive descriptor") }
        var primitive: dnnl_primitive_t?
        let status = dnnl_primitive_create(&primitive, pd)
        guard status == dnnl_success, let primitive else {
            dnnl_primitive_desc_destroy(pd)
            throw TensorError.backend("\(what): primitive creation failed (status \(status.rawValue))")
        }
        return Primitive(descriptor: pd, primitive: primitive)
    }

    /// A matmul primitive for fixed layouts; with `accumulate` the product is added to dst.
    func matmulPrimitive(_ a: MemoryDescriptor, _ b: MemoryDescriptor, _ c: MemoryDescriptor,
                         bias: MemoryDescriptor? = nil, accumulate: Bool = false) throws -> Primitive {
        var attributes: dnnl_primitive_attr_t?
        var postOps: dnnl_post_ops_t?
        defer {
            if let postOps { dnnl_post_ops_destroy(postOps) }
            if let attributes { dnnl_primitive_attr_destroy(attributes) }
        }
        if accumulate {
            try check(dnnl_primitive_attr_create(&attributes), "attributes")
            try check(dnnl_post_ops_create(&postOps), "post-ops")
            try check(dnnl_post_ops_append_sum(postOps, 1.0, 0, dnnl_data_type_undef), "sum post-op")
            try check(dnnl_primitive_attr_set_post_ops(attributes, postOps), "post-ops")
        }
        return try makePrimitive(attributes: attributes, what: "matmul") { pd, attr in
            dnnl_matmul_primitive_desc_create(&pd, engine, a.handle, b.handle, bias?.handle, c.handle, attr)
        }
    }

    /// `weight` reordered from `user` into a primitive's preferred layout `target`, made once
    /// and kept with the weight's storage (in its spill file when it has one). `source` gives
    /// the bytes `user` describes (the weight itself, or converted). A weight mapped from its
    /// checkpoint is read through the packed copy from then on, so its own pages go: resident
    /// once, not twice.
    func packedWeight(_ weight: Tensor, as user: MemoryDescriptor, into target: MemoryDescriptor, key: String,
                      source: () throws -> Tensor) throws -> PackedWeight {
        try weight.storage.derived("\(key)|\(weight.offset)|\(weight.shape)|\(weight.strides)") { try OpProfile.measure(.copy, operation: "pack-weight") {
            let bytes = try source()
            let storage = try weight.storage.derivedStorage(byteCount: target.byteCount)
            let reorder = try reorderPrimitive(from: user, to: target)
            try execute(reorder, [(DNNL_ARG_FROM, user, bytes.data), (DNNL_ARG_TO, target, storage.pointer)],
                        keepAlive: [bytes, storage], device: weight.device)
            weight.storage.spillFile?.startWriteBack(of: storage)
            if weight.storage.isMapped { weight.storage.releaseResidentPages(keepingDerived: true) }
            return PackedWeight(storage: storage, descriptor: target)
        } }
    }

    func reorderPrimitive(from source: MemoryDescriptor, to target: MemoryDescriptor) throws -> Primitive {
        var attributes: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attributes), "attributes")
        defer { dnnl_primitive_attr_destroy(attributes) }
        try check(dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user), "scratchpad mode")
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_reorder_primitive_desc_create(&pd, source.handle, engine, target.handle, engine, attributes), "reorder")
        guard let pd else { throw TensorError.backend("reorder: no primitive descriptor") }
        var primitive: dnnl_primitive_t?
        try check(dnnl_primitive_create(&primitive, pd), "reorder")
        guard let primitive else { throw TensorError.backend("reorder: no primitive") }
        return Primitive(descriptor: pd, primitive: primitive)
    }

    /// Runs `primitive` with `arguments` (oneDNN argument id → memory descriptor and data).
    /// `keepAlive` holds the owners of those pointers (tensors, storages) until it is done:
    /// Swift may otherwise release a temporary right after its pointer was taken.
    func execute(_ primitive: Primitive, _ arguments: [(Int32, MemoryDescriptor, UnsafeMutableRawPointer)],
                 keepAlive: [Any], device: Device = .cpu) throws {
        let bound = try bind(primitive, arguments.map { ($0.0, $0.1) }, device: device)
        try withExtendedLifetime(keepAlive) { try bound.run(arguments.map { $0.2 }) }
    }

    /// `primitive` with its memory objects (and scratchpad) made once, for hot loops of small
    /// products where per-call set-up would cost as much as the work. Use it on one thread.
    func bind(_ primitive: Primitive, _ arguments: [(Int32, MemoryDescriptor)], device: Device) throws -> BoundPrimitive {
        var memories: [dnnl_exec_arg_t] = []
        var handles: [dnnl_memory_t] = []
        var scratchpad: Storage?
        func add(_ id: Int32, _ descriptor: MemoryDescriptor, _ pointer: UnsafeMutableRawPointer?) throws {
            var memory: dnnl_memory_t?
            try check(dnnl_memory_create(&memory, descriptor.handle, engine, pointer), "memory")
            guard let memory else { throw TensorError.backend("oneDNN gave no memory object") }
            handles.append(memory)
            memories.append(dnnl_exec_arg_t(arg: id, memory: memory))
        }
        do {
            for (id, descriptor) in arguments { try add(id, descriptor, nil) }
            if let md = primitive.queryDesc(dnnl_query_scratchpad_md), md.byteCount > 0 {
                let storage = try Storage(byteCount: md.byteCount, device: device)
                try add(DNNL_ARG_SCRATCHPAD, md, storage.pointer)
                scratchpad = storage
            }
        } catch {
            for m in handles { dnnl_memory_destroy(m) }
            throw error
        }
        return BoundPrimitive(primitive: primitive, arguments: memories, handles: handles,
                              stream: try currentStream(), scratchpad: scratchpad, bound: arguments.count)
    }

    private func currentStream() throws -> StreamBox {
        let dictionary = Thread.current.threadDictionary
        if let box = dictionary["swift-diffusers.dnnl.stream"] as? StreamBox { return box }
        var stream: dnnl_stream_t?
        try check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "stream")
        guard let stream else { throw TensorError.backend("oneDNN gave no stream") }
        let box = StreamBox(stream: stream)
        dictionary["swift-diffusers.dnnl.stream"] = box
        return box
    }

    /// Sets how many OpenMP threads oneDNN uses for calls made from this thread.
    static func setThreads(_ n: Int) { omp_set_num_threads(Int32(n)) }
}

final class Primitive: @unchecked Sendable {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    init(descriptor: dnnl_primitive_desc_t, primitive: dnnl_primitive_t) {
        self.descriptor = descriptor
        self.primitive = primitive
    }
    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }
    /// The memory layout the primitive chose for an argument (weights, src, dst): a copy
    /// (the descriptor's own belongs to the primitive descriptor).
    func queryDesc(_ what: dnnl_query_t) -> MemoryDescriptor? {
        guard let md = dnnl_primitive_desc_query_md(descriptor, what, 0) else { return nil }
        var copy: dnnl_memory_desc_t?
        guard dnnl_memory_desc_clone(&copy, md) == dnnl_success, let copy else { return nil }
        return MemoryDescriptor(owning: copy)
    }
}

final class BoundPrimitive {
    private let primitive: Primitive
    private var arguments: [dnnl_exec_arg_t]
    private let handles: [dnnl_memory_t]
    private let stream: StreamBox
    private let scratchpad: Storage?
    private let bound: Int

    init(primitive: Primitive, arguments: [dnnl_exec_arg_t], handles: [dnnl_memory_t], stream: StreamBox,
         scratchpad: Storage?, bound: Int) {
        self.primitive = primitive
        self.arguments = arguments
        self.handles = handles
        self.stream = stream
        self.scratchpad = scratchpad
        self.bound = bound
    }

    deinit { for m in handles { dnnl_memory_destroy(m) } }

    /// Executes with `pointers` in the order the arguments were bound.
    func run(_ pointers: UnsafeMutableRawPointer...) throws { try run(pointers) }

    func run(_ pointers: [UnsafeMutableRawPointer]) throws {
        if MemoryRehearsal.skipsWork { return }
        for (i, pointer) in pointers.prefix(bound).enumerated() {
            try check(dnnl_memory_set_data_handle(handles[i], pointer), "memory handle")
        }
        try check(dnnl_primitive_execute(primitive.primitive, stream.stream, Int32(arguments.count), &arguments), "execute")
        try check(dnnl_stream_wait(stream.stream), "stream wait")
    }
}

final class StreamBox: NSObject, @unchecked Sendable {
    let stream: dnnl_stream_t
    init(stream: dnnl_stream_t) { self.stream = stream }
    deinit { dnnl_stream_destroy(stream) }
}

/// A weight reordered once into the layout a primitive prefers (kept in `Storage.derived`).
final class PackedWeight: StorageBackedValue, @unchecked Sendable {
    let storage: Storage
    let descriptor: MemoryDescriptor
    init(storage: Storage, descriptor: MemoryDescriptor) {
        self.storage = storage
        self.descriptor = descriptor
    }
    var backingStorage: Storage { storage }
}

@inline(__always)
func check(_ status: dnnl_status_t, _ what: String) throws {
    guard status == dnnl_success else {
        throw TensorError.backend("oneDNN \(what) failed (status \(status.rawValue))")
    }
}

func dnnlType(_ dtype: DType) throws -> dnnl_data_type_t {
    switch dtype {
    case .f32: return dnnl_f32
    case .bf16: return dnnl_bf16
    case .f16: return dnnl_f16
    case .i32: return dnnl_s32
    case .u8: return dnnl_u8
    default: throw TensorError.unsupportedDType(operation: "oneDNN", dtype: dtype)
    }
}

/// A oneDNN memory descriptor (an opaque handle in oneDNN 3), destroyed with its last owner.
final class MemoryDescriptor: @unchecked Sendable {
    let handle: dnnl_memory_desc_t

    init(owning handle: dnnl_memory_desc_t) { self.handle = handle }
    deinit { dnnl_memory_desc_destroy(handle) }

    /// Bytes a buffer in this layout takes (padding of blocked layouts included).
    var byteCount: Int { dnnl_memory_desc_get_size(handle) }
}

func memoryDesc(dims: [Int], strides: [Int], dtype: DType) throws -> MemoryDescriptor {
    var md: dnnl_memory_desc_t?
    let d = dims.map { Int64($0) }, s = strides.map { Int64($0) }
    try check(dnnl_memory_desc_create_with_strides(&md, Int32(dims.count), d, try dnnlType(dtype), s), "memory descriptor")
    guard let md else { throw TensorError.backend("oneDNN gave no memory descriptor") }
    return MemoryDescriptor(owning: md)
}

func memoryDesc(dims: [Int], tag: dnnl_format_tag_t, dtype: DType) throws -> MemoryDescriptor {
    var md: dnnl_memory_desc_t?
    try check(dnnl_memory_desc_create_with_tag(&md, Int32(dims.count), dims.map { Int64($0) }, try dnnlType(dtype), tag),
              "memory descriptor")
    guard let md else { throw TensorError.backend("oneDNN gave no memory descriptor") }
    return MemoryDescriptor(owning: md)
}

func memoryDescEqual(_ a: MemoryDescriptor, _ b: MemoryDescriptor) -> Bool {
    dnnl_memory_desc_equal(a.handle, b.handle) != 0
}
