import Tensor

/// FLUX's latent layout: the VAE's [B, C, h, w] latents packed into 2×2 patches, one token each
/// [B, (h/2)(w/2), 4C] (token `r·(w/2) + c`, channel `ch·4 + dy·2 + dx`), with the positions
/// (0, r, c) of each token on the packed grid (Diffusers' `_pack_latents`, `_unpack_latents`,
/// `_prepare_latent_image_ids`).
public enum FluxLatents {
    /// The unpacked latent size of an image: `2·⌊side / (2·vaeScaleFactor)⌋` each way, so that
    /// sizes that are not multiples of 2·vaeScaleFactor are floored as Diffusers floors them.
    public static func latentSize(width: Int, height: Int, vaeScaleFactor: Int) -> (height: Int, width: Int) {
        (2 * (height / (vaeScaleFactor * 2)), 2 * (width / (vaeScaleFactor * 2)))
    }

    /// [B, C, h, w] → [B, (h/2)(w/2), 4C].
    public static func pack(_ latents: Tensor) throws -> Tensor {
        let (b, c, h, w) = (latents.shape[0], latents.shape[1], latents.shape[2], latents.shape[3])
        return try latents.reshaped([b, c, h / 2, 2, w / 2, 2]).permuted(0, 2, 4, 1, 3, 5).contiguous().reshaped([b, (h / 2) * (w / 2), c * 4])
    }

    /// [B, (h/2)(w/2), 4C] → [B, C, h, w].
    public static func unpack(_ tokens: Tensor, height h: Int, width w: Int) throws -> Tensor {
        let (b, n, channels) = (tokens.shape[0], tokens.shape[1], tokens.shape[2])
        guard n == (h / 2) * (w / 2), channels % 4 == 0 else {
            throw PipelineError.invalidOption("\(n) packed latent tokens of \(channels) channels do not unpack to \(h)×\(w) latents")
        }
        return try tokens.reshaped([b, h / 2, w / 2, channels / 4, 2, 2]).permuted(0, 3, 1, 4, 2, 5).contiguous()
            .reshaped([b, channels / 4, h, w])
    }

    /// The positions [(h/2)(w/2), 3] of the packed tokens, row-major, rounded through `dtype` as
    /// Diffusers casts them to the prompt embeddings' dtype (bf16 holds integers exactly to 256).
    public static func imageIds(height h: Int, width w: Int, dtype: DType) throws -> Tensor {
        var ids: [Float] = []
        ids.reserveCapacity((h / 2) * (w / 2) * 3)
        for r in 0..<(h / 2) {
            for c in 0..<(w / 2) { ids += [0, Float(r), Float(c)] }
        }
        return try Tensor(ids, shape: [(h / 2) * (w / 2), 3]).to(dtype).to(.f32)
    }
}
