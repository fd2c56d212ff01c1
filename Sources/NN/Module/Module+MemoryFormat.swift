import Tensor

extension Module {
    /// Lays out the activations of every convolution in this tree in `format` (PyTorch's
    /// `model.to(memory_format=torch.channels_last)`): with `.channelsLast` the first
    /// convolution converts its input to NHWC, and since convolutions, group norms,
    /// element-wise operations, channel concatenation and upsampling keep that layout, the
    /// activations stay NHWC from one convolution to the next without reorders. Weights are
    /// packed once into the layout oneDNN prefers in either format. Outputs keep their NCHW
    /// shape; only their strides differ.
    public func setMemoryFormat(_ format: MemoryFormat) {
        for (_, module) in namedModules() { (module as? Conv2d)?.memoryFormat = format }
    }
}
