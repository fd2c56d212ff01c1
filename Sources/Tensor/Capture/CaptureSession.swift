import Foundation

/// What the allocator does with one allocation while a capture is active on this thread.
enum CaptureAllocation {
    /// Not part of the capture: allocate as usual.
    case untracked
    /// Allocate as usual; `token` reports the release to the recorder when the storage goes.
    case recorded(token: AnyObject, index: Int)
    /// Use `pointer` inside the activation arena; `lease` frees the slice when the storage goes.
    case slice(pointer: UnsafeMutableRawPointer, lease: AnyObject, index: Int)
}

/// A capture being recorded or replayed on the current thread. Every `Storage` allocation
/// and every backend operation on this thread asks it first. Only allocations on `device`
/// made by the thread itself take part: hooks, derived caches (packed weights) and the
/// bodies of parallel loops run with the session suspended, so that what is recorded is
/// exactly the activations of the forward, in an order that repeats call after call.
class CaptureSession: @unchecked Sendable {
    let device: Device
    /// > 0 while suspended (`withoutRecording`); touched only by the owning thread.
    private var suspension = 0

    init(device: Device) { self.device = device }

    /// The active session of this thread, nil when none or suspended.
    static var current: CaptureSession? {
        guard let session = installed, session.suspension == 0 else { return nil }
        return session
    }

    /// Runs `body` with the current thread's session (if any) suspended.
    static func withoutRecording<T>(_ body: () throws -> T) rethrows -> T {
        guard let session = installed else { return try body() }
        session.suspension += 1
        defer { session.suspension -= 1 }
        return try body()
    }

    /// Runs `body` with `session` installed on this thread (one at a time: capturing inside
    /// a capture is an error).
    static func with<T>(_ session: CaptureSession, _ body: () throws -> T) throws -> T {
        guard installed == nil else {
            throw CaptureError.nested("a graph capture or replay is already running on this thread")
        }
        pthread_setspecific(sessionKey, Unmanaged.passUnretained(session).toOpaque())
        defer { pthread_setspecific(sessionKey, nil) }
        return try withExtendedLifetime(session) { try body() }
    }

    private static var installed: CaptureSession? {
        guard let raw = pthread_getspecific(sessionKey) else { return nil }
        return Unmanaged<CaptureSession>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Decides where an allocation of `byteCount` on `device` goes.
    func allocate(_ byteCount: Int, on device: Device) throws -> CaptureAllocation { .untracked }

    /// Wraps one backend operation: `name` is its kind, `inputs` the tensors it reads, and
    /// with `inPlaceSafe` the kernel writes each output element after reading the same
    /// element of an input of equal layout (so the output may take over a dying input's bytes).
    func operation(_ name: String, inputs: [Tensor?], inPlaceSafe: Bool, _ body: () throws -> Tensor) throws -> Tensor {
        try body()
    }
}

/// The thread-local slot holding the installed session (unretained: `with` keeps it alive).
private let sessionKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
