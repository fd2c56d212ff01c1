/// A backend that hands every operation to `intercept` before it runs: a graph capture records
/// or checks it, an `OpProfile` times it. `intercept` gets the operation's kind (`conv2d`,
/// `unary.silu`, …), the tensors it reads, whether its kernel may write over an input of equal
/// layout, and the call itself, which it must run and whose result it returns.
struct InterceptingBackend: Backend {
    typealias Intercept = @Sendable (_ name: String, _ inputs: [Tensor?], _ inPlaceSafe: Bool, _ call: () throws -> Tensor) throws -> Tensor
    let base: any Backend
    let intercept: Intercept

    private func op(_ name: String, _ inputs: [Tensor?], inPlaceSafe: Bool = false,
                    _ body: () throws -> Tensor) throws -> Tensor {
        try intercept(name, inputs, inPlaceSafe, body)
    }

    func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        try self.op("unary.\(op.rawValue)", [x], inPlaceSafe: true) { try base.unary(op, x) }
    }
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try self.op("binary.\(op.rawValue)", [a, b], inPlaceSafe: true) { try base.binary(op, a, b) }
    }
    func gated(_ x: Tensor, by gate: Tensor, activation: UnaryOp) throws -> Tensor {
        try op("gated.\(activation.rawValue)", [x, gate]) { try base.gated(x, by: gate, activation: activation) }
    }
    func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor {
        try op("affine", [x], inPlaceSafe: true) { try base.affine(x, scale: scale, shift: shift) }
    }
    func clamp(_ x: Tensor, lower: Float, upper: Float) throws -> Tensor {
        try op("clamp", [x], inPlaceSafe: true) { try base.clamp(x, lower: lower, upper: upper) }
    }
    func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
        try op("softmax", [x]) { try base.softmax(x, axis: axis) }
    }
    func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try op("groupNorm", [x, weight, bias]) { try base.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps) }
    }
    func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try op("layerNorm", [x, weight, bias]) { try base.layerNorm(x, weight: weight, bias: bias, eps: eps) }
    }
    func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        try op("rmsNorm", [x, weight]) { try base.rmsNorm(x, weight: weight, eps: eps) }
    }
    func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try op("matmul", [a, b]) { try base.matmul(a, b) }
    }
    func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        try op("linear", [x, weight, bias]) { try base.linear(x, weight: weight, bias: bias) }
    }
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: ConvPadding) throws -> Tensor {
        try op("conv2d", [x, weight, bias]) { try base.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding) }
    }
    func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor?,
                                   scale: Float?, isCausal: Bool, kernel: AttentionKernel) throws -> Tensor {
        // The kernel is part of the name: a timing of one must not stand for another.
        try op("attention.\(kernel.name)", [query, key, value, mask]) {
            try base.scaledDotProductAttention(query: query, key: key, value: value, mask: mask,
                                               scale: scale, isCausal: isCausal, kernel: kernel)
        }
    }
    func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        try op("concat", tensors) { try base.concat(tensors, axis: axis) }
    }
    func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        try op("upsampleNearest", [x]) { try base.upsampleNearest(x, height: height, width: width) }
    }
    func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        try op("embedding", [ids, weight]) { try base.embedding(ids, weight: weight) }
    }
}
