import CDNNL
import Foundation

extension CPUBackend {
    /// 2-D convolution (NCHW input, OIHW weight, dilation 1, groups 1) through oneDNN.
    /// The primitive picks its preferred layouts; the weight is reordered into that layout
    /// once and kept beside the weight's bytes (accounted on its device). Contiguous
    /// activations are reordered per call when the primitive does not read NCHW directly;
    /// channels-last ones are read and written NHWC as they are.
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: ConvPadding) throws -> Tensor {
        let device = try CPUBackend.sameDevice(x, weight, bias, op: "conv2d")
        try CPUBackend.requireCompute(x, "conv2d"); try CPUBackend.requireCompute(weight, "conv2d")
        guard x.rank == 4, weight.rank == 4 else {
            throw TensorError.shapeMismatch("conv2d needs a 4-D input and weight, got \(x.shape) and \(weight.shape)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, wc, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        guard wc == c else {
            throw TensorError.shapeMismatch("conv2d weight \(weight.shape) expects \(wc) input channels, the input \(x.shape) has \(c)")
        }
        if let bias, bias.shape != [o] { throw TensorError.shapeMismatch("conv2d bias \(bias.shape) does not match \(o) output channels") }
        guard stride.0 > 0, stride.1 > 0, [padding.top, padding.left, padding.bottom, padding.right].allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument("conv2d stride \(stride) must be positive and padding \(padding) non-negative")
        }
        let paddedH = h + padding.top + padding.bottom, paddedW = w + padding.left + padding.right
        let oh = (paddedH - kh) / stride.0 + 1, ow = (paddedW - kw) / stride.1 + 1
        guard paddedH >= kh, paddedW >= kw, oh > 0, ow > 0 else {
            throw TensorError.shapeMismatch("conv2d kernel \(kh)x\(kw) is larger than the padded input \(h)x\(w)")
        }
        // A bf16 activation with an f32 or f16 weight computes in bf16, as CPU autocast (and
        // Diffusers' bf16 load of an f16 checkpoint) does: the weight is converted once, into
        // the packed copy, so a mapped checkpoint weight is never also held as a bf16 copy.
        let autocast = x.dtype == .bf16 && (weight.dtype == .f32 || weight.dtype == .f16)
        let dtype = autocast ? .bf16 : CPUBackend.productType(x.dtype, weight.dtype)
        let result = autocast ? .bf16 : CPUBackend.resultType(x.dtype, weight.dtype)
        if result != dtype {  // f16: compute in f32
            return try conv2d(x.to(dtype), weight: weight.to(dtype), bias: bias, stride: stride, padding: padding).to(result)
        }
        if dtype == .bf16 && CPUBackend.bf16ProductsInF32 {
            // Autocast rounds the weight to bf16 first; the f32 copy (and its packing) is this call's.
            let exact = try weight.to(.bf16).to(.f32)
            return try conv2d(x.converted(to: .f32), weight: exact, bias: bias, stride: stride, padding: padding).converted(to: .bf16)
        }
        // A channels-last input is read and written NHWC as it is: no reorders, and the
        // output stays channels-last for the next convolution.
        var input = try x.to(dtype)
        let nhwc = input.needsChannelsLastPath
        if !nhwc { input = try input.contiguous() }
        let out = try Tensor.empty([n, o, oh, ow], dtype: dtype, device: device, memoryFormat: nhwc ? .channelsLast : .contiguous)
        guard out.count > 0 else { return out }

        let dnnl = try DNNL.get()
        let key = "conv|\(n),\(c),\(h),\(w)|\(o),\(kh),\(kw)|\(stride)|\(padding)|\(dtype)|\(bias != nil)|\(nhwc ? "nhwc" : "nchw")"
        let userTag = nhwc ? dnnl_nhwc : dnnl_nchw
        let srcUser = try memoryDesc(dims: [n, c, h, w], tag: userTag, dtype: dtype)
        let dstUser = try memoryDesc(dims: [n, o, oh, ow], tag: userTag, dtype: dtype)
        let weightUser = try memoryDesc(dims: [o, c, kh, kw], tag: dnnl_oihw, dtype: dtype)
        let biasMD = try memoryDesc(dims: [o], tag: dnnl_a, dtype: .f32)
        let primitive = try dnnl.primitive(key) {
            let activationTag = nhwc ? dnnl_nhwc : dnnl_format_tag_any
            let srcAny = try memoryDesc(dims: [n, c, h, w], tag: activationTag, dtype: dtype)
            let dstAny = try memoryDesc(dims: [n, o, oh, ow], tag: activationTag, dtype: dtype)
            let weightAny = try memoryDesc(dims: [o, c, kh, kw], tag: dnnl_format_tag_any, dtype: dtype)
            let strides: [Int64] = [Int64(stride.0), Int64(stride.1)]
            let dilations: [Int64] = [0, 0]
            let padsBefore: [Int64] = [Int64(padding.top), Int64(padding.left)]
            let padsAfter: [Int64] = [Int64(padding.bottom), Int64(padding.right)]
            return try dnnl.makePrimitive(what: "convolution") { pd, attr in
                dnnl_convolution_forward_primitive_desc_create(&pd, dnnl.engine, dnnl_forward_inference, dnnl_convolution_direct,
                                                               srcAny.handle, weightAny.handle, bias == nil ? nil : biasMD.handle,
                                                               dstAny.handle, strides, dilations, padsBefore, padsAfter, attr)
            }
        }
        guard let srcMD = primitive.queryDesc(dnnl_query_src_md), let dstMD = primitive.queryDesc(dnnl_query_dst_md),
              let weightMD = primitive.queryDesc(dnnl_query_weights_md) else {
            throw TensorError.backend("oneDNN convolution did not report its layouts")
        }

        // Weight: reordered once per layout and cached with the weight's storage.
        let packedWeight: (UnsafeMutableRawPointer, MemoryDescriptor)
        var weightOwner: Any
        if memoryDescEqual(weightMD, weightUser) && weight.dtype == dtype {
            let w = try weight.to(dtype).contiguous()
            packedWeight = (w.data, weightUser)
            weightOwner = w
        } else {
            let packed = try dnnl.packedWeight(weight, as: weightUser, into: weightMD, key: "conv-weight|\(key)") {
                try weight.to(dtype).contiguous()
            }
            packedWeight = (packed.storage.pointer, packed.descriptor)
            weightOwner = packed
        }

        // Source: read NCHW directly when the primitive can, else reorder into scratch.
        var srcScratch: Storage?
        var srcPointer = input.data
        if !memoryDescEqual(srcMD, srcUser) {
            let scratch = try Storage(byteCount: srcMD.byteCount, device: device)
            let reorder = try dnnl.primitive("reorder|src|\(key)") { try dnnl.reorderPrimitive(from: srcUser, to: srcMD) }
            try OpProfile.measure(.copy, operation: "conv2d.reorder") {
                try dnnl.execute(reorder, [(DNNL_ARG_FROM, srcUser, input.data), (DNNL_ARG_TO, srcMD, scratch.pointer)],
                                 keepAlive: [input, scratch], device: device)
            }
            srcPointer = scratch.pointer
            srcScratch = scratch
        }
        let dstDirect = memoryDescEqual(dstMD, dstUser)
        let dstScratch = dstDirect ? nil : try Storage(byteCount: dstMD.byteCount, device: device)
        var args: [(Int32, MemoryDescriptor, UnsafeMutableRawPointer)] = [
            (DNNL_ARG_SRC, srcMD, srcPointer), (DNNL_ARG_WEIGHTS, packedWeight.1, packedWeight.0),
            (DNNL_ARG_DST, dstMD, dstScratch?.pointer ?? out.data),
        ]
        var biasOwner: Any = ()
        if let bias {
            let b = try bias.storage.derived("conv-bias-f32|\(bias.offset)|\(bias.shape)|\(bias.strides)") {
                BoxedTensor(try bias.contiguous().to(.f32).copied())
            }
            args.append((DNNL_ARG_BIAS, biasMD, b.tensor.data))
            biasOwner = b
        }
        try dnnl.execute(primitive, args, keepAlive: [input, srcScratch as Any, weightOwner, dstScratch as Any, out, biasOwner], device: device)
        srcScratch = nil  // the reordered source is dead once the convolution ran
        if let dstScratch {
            let reorder = try dnnl.primitive("reorder|dst|\(key)") { try dnnl.reorderPrimitive(from: dstMD, to: dstUser) }
            try OpProfile.measure(.copy, operation: "conv2d.reorder") {
                try dnnl.execute(reorder, [(DNNL_ARG_FROM, dstMD, dstScratch.pointer), (DNNL_ARG_TO, dstUser, out.data)],
                                 keepAlive: [dstScratch, out], device: device)
            }
        }
        return out
    }
}

/// A tensor kept in `Storage.derived`.
final class BoxedTensor: @unchecked Sendable {
    let tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }
}
