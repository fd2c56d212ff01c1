import Tensor

/// Conversions between images and the tensors a VAE takes and returns, as Diffusers'
/// `VaeImageProcessor` does them (its defaults: `vae_scale_factor` 8, `do_resize`,
/// `resample="lanczos"`, `do_normalize`).
///
/// - `preprocess`: each image is resized (Pillow's filter, byte for byte) to its size rounded
///   down to a multiple of `vaeScaleFactor` — or, with `resample` nil, must already be such a
///   multiple — then `x / 255` in f32 and, when normalising, `2x − 1`: a [B, 3, H, W] tensor in
///   [−1, 1].
/// - `postprocess`: `(x · 0.5 + 0.5)` clamped to [0, 1] (when denormalising), then
///   `round(x · 255)` with ties to even, as `numpy_to_pil` does with `(images * 255).round()`.
public struct VaeImageProcessor: Sendable {
    /// Width and height of model inputs must be multiples of this (2^(VAE levels − 1)).
    public var vaeScaleFactor: Int
    /// Filter used to bring an image to a valid size; nil: a wrong size is an error.
    public var resample: ResampleFilter?
    /// Map [0, 1] to [−1, 1] on the way in and back on the way out.
    public var normalize: Bool

    public init(vaeScaleFactor: Int = 8, resample: ResampleFilter? = .lanczos, normalize: Bool = true) {
        self.vaeScaleFactor = vaeScaleFactor
        self.resample = resample
        self.normalize = normalize
    }

    /// The size `preprocess` gives an image of `width`×`height`, or the requested one: each
    /// rounded down to a multiple of `vaeScaleFactor` (Diffusers' `get_default_height_width`).
    public func targetSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let f = max(1, vaeScaleFactor)
        return (width - width % f, height - height % f)
    }

    /// One image as a [1, 3, H, W] tensor (see `preprocess(_:width:height:device:)`).
    public func preprocess(_ image: Image, width: Int? = nil, height: Int? = nil, device: Device = .cpu) throws -> Tensor {
        try preprocess([image], width: width, height: height, device: device)
    }

    /// Images as a [B, 3, H, W] f32 tensor, in [−1, 1] when normalising (else [0, 1]).
    /// `width`/`height` default to the first image's size; all images are brought to that size.
    ///
    /// - Throws: `ImageError.sizeNotMultiple` when resizing is off and a size is not a multiple
    ///   of `vaeScaleFactor`, or when rounding down leaves nothing; `.invalidArgument` for no images.
    public func preprocess(_ images: [Image], width: Int? = nil, height: Int? = nil, device: Device = .cpu) throws -> Tensor {
        guard let firstImage = images.first else { throw ImageError.invalidArgument("no images to preprocess") }
        guard vaeScaleFactor >= 1 else { throw ImageError.invalidArgument("the VAE scale factor must be positive, got \(vaeScaleFactor)") }
        let requestedWidth = width ?? firstImage.width, requestedHeight = height ?? firstImage.height
        let target = targetSize(width: requestedWidth, height: requestedHeight)
        guard target.width > 0, target.height > 0 else {
            throw ImageError.sizeNotMultiple(width: requestedWidth, height: requestedHeight, multiple: vaeScaleFactor)
        }
        var resizedImages: [Image] = []
        for image in images {
            if image.width == target.width && image.height == target.height {
                resizedImages.append(image)
            } else if let resample {
                resizedImages.append(try image.resized(width: target.width, height: target.height, filter: resample))
            } else {
                throw ImageError.sizeNotMultiple(width: image.width, height: image.height, multiple: vaeScaleFactor)
            }
        }

        let plane = target.width * target.height
        var values = [Float](repeating: 0, count: images.count * 3 * plane)
        for (b, image) in resizedImages.enumerated() {
            image.pixels.withUnsafeBufferPointer { pixels in
                values.withUnsafeMutableBufferPointer { out in
                    for c in 0..<3 {
                        let base = (b * 3 + c) * plane
                        for i in 0..<plane {
                            let x = Float(pixels[i * 3 + c]) / 255
                            out[base + i] = normalize ? 2 * x - 1 : x
                        }
                    }
                }
            }
        }
        do {
            return try Tensor(values, shape: [images.count, 3, target.height, target.width], device: device)
        } catch let error as TensorError {
            throw ImageError.invalidArgument("cannot make the image tensor: \(error)")
        }
    }

    /// A decoded [B, 3, H, W] tensor (any float dtype, values in [−1, 1] when normalising,
    /// else [0, 1]) as B images. Values outside the range are clamped; NaN becomes 0.
    ///
    /// - Throws: `ImageError.invalidArgument` for any other shape.
    public func postprocess(_ tensor: Tensor) throws -> [Image] {
        guard tensor.rank == 4, tensor.shape[1] == 3, tensor.shape.allSatisfy({ $0 > 0 }) else {
            throw ImageError.invalidArgument(
                "an image tensor must have shape [batch, 3, height, width] with positive sizes, got \(tensor.shape)")
        }
        let (batch, height, width) = (tensor.shape[0], tensor.shape[2], tensor.shape[3])
        let values: [Float]
        do { values = try tensor.floats() } catch {
            throw ImageError.invalidArgument("cannot read the image tensor \(tensor): \(error)")
        }
        let plane = width * height
        return values.withUnsafeBufferPointer { input in
            (0..<batch).map { b in
                var pixels = [UInt8](repeating: 0, count: plane * 3)
                for c in 0..<3 {
                    let base = (b * 3 + c) * plane
                    for i in 0..<plane {
                        pixels[i * 3 + c] = VaeImageProcessor.byte(input[base + i], denormalize: normalize)
                    }
                }
                return Image(uncheckedWidth: width, height: height, pixels: pixels)
            }
        }
    }

    /// One value to a byte: `(x · 0.5 + 0.5).clamp(0, 1)` when denormalising, then
    /// `round(x · 255)` with ties to even (numpy's `round`), all in f32.
    @inline(__always)
    static func byte(_ value: Float, denormalize: Bool) -> UInt8 {
        var x = denormalize ? value * 0.5 + 0.5 : value
        guard !x.isNaN else { return 0 }
        x = min(max(x, 0), 1)
        return UInt8((x * 255).rounded(.toNearestOrEven))
    }
}
