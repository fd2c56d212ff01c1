import Foundation

/// Resampling filters with the same kernels and supports as Pillow's.
public enum ResampleFilter: String, Sendable, CaseIterable {
    case bilinear, bicubic, lanczos

    /// Half-width of the kernel, in source pixels, when not shrinking.
    var support: Double {
        switch self {
        case .bilinear: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .bilinear:
            let t = abs(x)
            return t < 1 ? 1 - t : 0
        case .bicubic:   // Keys' cubic with a = −0.5
            let a = -0.5, t = abs(x)
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        case .lanczos:   // sinc(x)·sinc(x/3) on [−3, 3)
            return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
        }
    }

    private func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let t = x * Double.pi
        return sin(t) / t
    }
}

extension Image {
    /// This image resized to `width`×`height` the way Pillow's `Image.resize` does for RGB
    /// images (the filter of Diffusers' `VaeImageProcessor` is lanczos): separable, horizontal
    /// pass then vertical, the kernel widened by the scale when shrinking, weights normalised
    /// and rounded to 22-bit fixed point, each pass rounded and clipped to 8 bits. Results
    /// equal Pillow's byte for byte. The same size returns the image unchanged.
    ///
    /// - Throws: `ImageError.invalidArgument` for a non-positive size, or one over 2^28 pixels.
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResampleFilter = .lanczos) throws -> Image {
        let bytes = try Image.byteCount(width: newWidth, height: newHeight)
        guard bytes / 3 <= 1 << 28 else {
            throw ImageError.invalidArgument("cannot resize to \(newWidth)×\(newHeight): more than 2^28 pixels")
        }
        if newWidth == width && newHeight == height { return self }
        var current = self
        if newWidth != width {
            let weights = ResampleWeights(inputSize: width, outputSize: newWidth, filter: filter)
            current = current.resampled(weights, horizontal: true)
        }
        if newHeight != height {
            let weights = ResampleWeights(inputSize: height, outputSize: newHeight, filter: filter)
            current = current.resampled(weights, horizontal: false)
        }
        return current
    }

    /// One separable pass: along rows (`horizontal`) or along columns.
    private func resampled(_ weights: ResampleWeights, horizontal: Bool) -> Image {
        let outWidth = horizontal ? weights.outputSize : width
        let outHeight = horizontal ? height : weights.outputSize
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let half = 1 << (ResampleWeights.precisionBits - 1)
        let top = 255 << ResampleWeights.precisionBits
        pixels.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                // `along` walks the resampled axis; `across` the other one.
                let (acrossCount, inStepAlong, inStepAcross, outStepAlong, outStepAcross) = horizontal
                    ? (height, 3, width * 3, 3, outWidth * 3)
                    : (width, width * 3, 3, outWidth * 3, 3)
                for o in 0..<weights.outputSize {
                    let first = weights.first[o], taps = weights.count[o]
                    let k = weights.coefficients[(o * weights.stride)...]
                    for across in 0..<acrossCount {
                        var sums = (half, half, half)
                        var p = first * inStepAlong + across * inStepAcross
                        for t in 0..<taps {
                            let w = k[k.startIndex + t]
                            sums.0 += Int(input[p]) * w
                            sums.1 += Int(input[p + 1]) * w
                            sums.2 += Int(input[p + 2]) * w
                            p += inStepAlong
                        }
                        let q = o * outStepAlong + across * outStepAcross
                        output[q] = clip8(sums.0, top)
                        output[q + 1] = clip8(sums.1, top)
                        output[q + 2] = clip8(sums.2, top)
                    }
                }
            }
        }
        return Image(uncheckedWidth: outWidth, height: outHeight, pixels: out)
    }
}

@inline(__always)
private func clip8(_ value: Int, _ top: Int) -> UInt8 {
    if value >= top { return 255 }
    if value <= 0 { return 0 }
    return UInt8(value >> ResampleWeights.precisionBits)
}

/// Fixed-point weights of every output position along one axis.
struct ResampleWeights {
    static let precisionBits = 32 - 8 - 2

    let outputSize: Int
    /// First input index and number of taps of each output position.
    let first: [Int]
    let count: [Int]
    /// `stride` coefficients per output position (the first `count[o]` are used).
    let coefficients: [Int]
    let stride: Int

    init(inputSize: Int, outputSize: Int, filter: ResampleFilter) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let inverseScale = 1 / filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outputSize)
        var count = [Int](repeating: 0, count: outputSize)
        var coefficients = [Int](repeating: 0, count: outputSize * stride)
        var weights = [Double](repeating: 0, count: stride)
        for o in 0..<outputSize {
            let center = (Double(o) + 0.5) * scale
            let lower = max(0, Int(center - support + 0.5))
            let upper = min(inputSize, Int(center + support + 0.5))
            let taps = max(0, min(upper - lower, stride))
            var total = 0.0
            for t in 0..<taps {
                let w = filter.weight((Double(t + lower) - center + 0.5) * inverseScale)
                weights[t] = w
                total += w
            }
            for t in 0..<taps {
                let w = total != 0 ? weights[t] / total : weights[t]
                let scaled = w * Double(1 << ResampleWeights.precisionBits)
                coefficients[o * stride + t] = Int(scaled < 0 ? scaled - 0.5 : scaled + 0.5)
            }
            first[o] = lower
            count[o] = taps
        }
        self.outputSize = outputSize
        self.first = first
        self.count = count
        self.coefficients = coefficients
        self.stride = stride
    }
}
