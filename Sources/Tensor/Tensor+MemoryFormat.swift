/// How a 4-D [N, C, H, W] tensor's elements are laid out in memory (PyTorch's
/// `torch.memory_format`): the shape stays NCHW either way, only the strides differ.
public enum MemoryFormat: String, Sendable, CaseIterable {
    /// Row-major NCHW.
    case contiguous
    /// NHWC: the channels of one pixel are adjacent (`torch.channels_last`). Convolutions read
    /// and write it directly and element-wise operations keep it, so a conv-heavy model
    /// carries it from one convolution to the next without reorders.
    case channelsLast = "channels_last"
}

extension Tensor {
    /// NHWC strides for an NCHW `shape`.
    static func channelsLastStrides(for shape: [Int]) -> [Int] {
        precondition(shape.count == 4, "channels-last strides are for 4-D shapes")
        let (c, h, w) = (shape[1], shape[2], shape[3])
        return [h * w * c, 1, w * c, c]
    }

    /// Whether this 4-D tensor is laid out NHWC (dimensions of size 1 may have any stride).
    /// A tensor can be both contiguous and channels-last (one channel, or 1×1 pixels).
    public var isChannelsLast: Bool {
        guard rank == 4 else { return false }
        let expected = Tensor.channelsLastStrides(for: shape)
        return (0..<4).allSatisfy { shape[$0] == 1 || strides[$0] == expected[$0] }
    }

    /// Channels-last and not also contiguous: kernels must take the NHWC path for it.
    var needsChannelsLastPath: Bool { isChannelsLast && !isContiguous }

    /// The layout of this tensor, as far as the two formats tell it apart.
    public var memoryFormat: MemoryFormat { needsChannelsLastPath ? .channelsLast : .contiguous }

    /// An uninitialised tensor of `shape` laid out in `format`.
    public static func empty(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu, memoryFormat format: MemoryFormat) throws -> Tensor {
        let t = try empty(shape, dtype: dtype, device: device)
        guard format == .channelsLast, shape.count == 4 else { return t }
        return Tensor(storage: t.storage, dtype: dtype, shape: shape, strides: channelsLastStrides(for: shape))
    }

    /// This tensor laid out in `format` (`self` when it already is). Channels-last needs 4 dims.
    public func contiguous(_ format: MemoryFormat) throws -> Tensor {
        switch format {
        case .contiguous: return try contiguous()
        case .channelsLast:
            guard rank == 4 else { throw TensorError.invalidArgument("channels-last needs a 4-D [N, C, H, W] tensor, got \(shape)") }
            if isChannelsLast { return self }
            let out = try Tensor.empty(shape, dtype: dtype, device: device, memoryFormat: .channelsLast)
            try out.nhwcView.copyElements(from: permuted(0, 2, 3, 1))
            return out
        }
    }

    /// A channels-last tensor seen as the contiguous [N, H, W, C] array it is in memory.
    var nhwcView: Tensor {
        Tensor(storage: storage, dtype: dtype, shape: [shape[0], shape[2], shape[3], shape[1]],
               strides: [strides[0], strides[2], strides[3], strides[1]], offset: offset)
    }
}
