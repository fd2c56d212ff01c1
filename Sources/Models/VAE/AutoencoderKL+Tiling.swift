import NN
import Tensor

/// Diffusers' VAE tiling sizes: images larger than `sampleMinSize` (latents larger than
/// `latentMinSize`) are encoded (decoded) in overlapping tiles of that size, blended, cropped
/// and concatenated, so that the activations are bounded by one tile.
public struct VAETiling: Sendable, Equatable {
    /// Tile size in pixels (Diffusers' `tile_sample_min_size`).
    public var sampleMinSize: Int
    /// Tile size in latent pixels (`tile_latent_min_size`).
    public var latentMinSize: Int
    /// Fraction of a tile shared with its neighbour (`tile_overlap_factor`).
    public var overlapFactor: Double

    // Diffusers' derived sizes, with Python's `int()` truncation.
    var sampleStride: Int { Int(Double(sampleMinSize) * (1 - overlapFactor)) }
    var latentStride: Int { Int(Double(latentMinSize) * (1 - overlapFactor)) }
    var sampleBlend: Int { Int(Double(sampleMinSize) * overlapFactor) }
    var latentBlend: Int { Int(Double(latentMinSize) * overlapFactor) }
}

extension AutoencoderKL {
    /// Encodes and decodes a batch one sample at a time (Diffusers' `enable_slicing`); tiling,
    /// when on, happens inside each slice.
    public func enableSlicing() { useSlicing = true }
    public func disableSlicing() { useSlicing = false }

    /// Turns tiling on (Diffusers' `enable_tiling`). Defaults as Diffusers: the tile is the
    /// config's `sample_size` pixels, `sample_size / 2^(levels-1)` latent pixels, a quarter
    /// overlapping. Throws for a tile size that is not a positive multiple of the downscale
    /// factor, or an overlap outside (0, 1).
    public func enableTiling(sampleMinSize: Int? = nil, latentMinSize: Int? = nil, overlapFactor: Double = 0.25) throws {
        let factor = config.downscaleFactor
        let sample = sampleMinSize ?? config.sampleSize
        guard sample > 0, sample % factor == 0 else {
            throw ModuleError.invalidInput("the VAE tile size must be a positive multiple of \(factor) pixels, not \(sample)")
        }
        let latent = latentMinSize ?? (sampleMinSize.map { $0 / factor } ?? config.sampleSize / factor)
        guard latent > 0 else { throw ModuleError.invalidInput("the VAE latent tile size must be positive, not \(latent)") }
        guard overlapFactor > 0, overlapFactor < 1 else {
            throw ModuleError.invalidInput("the VAE tile overlap must be between 0 and 1 (exclusive), not \(overlapFactor)")
        }
        let tiling = VAETiling(sampleMinSize: sample, latentMinSize: latent, overlapFactor: overlapFactor)
        guard tiling.sampleStride > 0, tiling.latentStride > 0 else {
            throw ModuleError.invalidInput("VAE tiles of \(sample) px overlapping \(overlapFactor) leave no stride")
        }
        self.tiling = tiling
    }

    public func disableTiling() { tiling = nil }

    /// Back to a tiling it had before (`tiling`; nil: none), already checked when it was enabled.
    public func restoreTiling(_ tiling: VAETiling?) { self.tiling = tiling }

    /// `_encode` for one slice: the moments [B, 2·latent, h, w], tiled above the tile size.
    func encodeMoments(_ x: Tensor) throws -> Tensor {
        let run = { (tile: Tensor) throws -> Tensor in
            let moments = try self.encoder(tile)
            return try self.quantConv.map { try $0(moments) } ?? moments
        }
        if let tiling, x.shape[2] > tiling.sampleMinSize || x.shape[3] > tiling.sampleMinSize {
            return try tiled(x, tile: tiling.sampleMinSize, stride: tiling.sampleStride,
                             blend: tiling.latentBlend, rowLimit: tiling.latentMinSize - tiling.latentBlend, run)
        }
        return try run(x)
    }

    /// `_decode` for one slice: images [B, C, 8h, 8w], tiled above the latent tile size.
    func decodeSamples(_ z: Tensor) throws -> Tensor {
        let run = { (tile: Tensor) throws -> Tensor in
            try self.decoder(self.postQuantConv.map { try $0(tile) } ?? tile)
        }
        if let tiling, z.shape[2] > tiling.latentMinSize || z.shape[3] > tiling.latentMinSize {
            return try tiled(z, tile: tiling.latentMinSize, stride: tiling.latentStride,
                             blend: tiling.sampleBlend, rowLimit: tiling.sampleMinSize - tiling.sampleBlend, run)
        }
        return try run(z)
    }

    /// `x` in slices of one sample through `body`, concatenated, when slicing is on.
    func sliced(_ x: Tensor, _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        guard useSlicing, x.shape[0] > 1 else { return try body(x) }
        return try Tensor.concat((0..<x.shape[0]).map { try body(x.narrowed(axis: 0, start: $0, length: 1)) }, axis: 0)
    }

    /// Diffusers' tiled loop: tiles of `tile` input pixels every `stride`, each through `body`;
    /// in row-major order each output tile is blended with the (already blended) tile above
    /// and to its left over `blend` rows/columns, cropped to `rowLimit`, and the crops are
    /// concatenated along W, then H.
    private func tiled(_ x: Tensor, tile: Int, stride: Int, blend: Int, rowLimit: Int,
                       _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        let (height, width) = (x.shape[2], x.shape[3])
        var rows: [[Tensor]] = []
        for i in Swift.stride(from: 0, to: height, by: stride) {
            rows.append(try Swift.stride(from: 0, to: width, by: stride).map { j in
                try body(x.narrowed(axis: 2, start: i, length: min(tile, height - i))
                          .narrowed(axis: 3, start: j, length: min(tile, width - j)).contiguous())
            })
        }
        var bands: [Tensor] = []
        for i in rows.indices {
            var crops: [Tensor] = []
            for j in rows[i].indices {
                var current = rows[i][j]
                if i > 0 { current = try Self.blend(from: rows[i - 1][j], into: current, extent: blend, axis: 2) }
                if j > 0 { current = try Self.blend(from: rows[i][j - 1], into: current, extent: blend, axis: 3) }
                rows[i][j] = current   // neighbours blend against the blended tile, as Diffusers' in-place blend
                crops.append(try current.narrowed(axis: 2, start: 0, length: min(rowLimit, current.shape[2]))
                                        .narrowed(axis: 3, start: 0, length: min(rowLimit, current.shape[3])))
            }
            bands.append(try Tensor.concat(crops, axis: 3))
        }
        return try Tensor.concat(bands, axis: 2)
    }

    /// Diffusers' `blend_v` (axis 2) / `blend_h` (axis 3): the first `extent` lines of `b`
    /// become `a[end - extent + y] · (1 - y/extent) + b[y] · (y/extent)`, each product and
    /// the sum rounded to the tensor's dtype as PyTorch's separate ops do.
    static func blend(from a: Tensor, into b: Tensor, extent: Int, axis: Int) throws -> Tensor {
        let e = min(a.shape[axis], b.shape[axis], extent)
        guard e > 0 else { return b }
        var lines: [Tensor] = []
        for y in 0..<e {
            let weightB = Double(y) / Double(e)
            let above = try a.narrowed(axis: axis, start: a.shape[axis] - e + y, length: 1)
            let own = try b.narrowed(axis: axis, start: y, length: 1)
            lines.append(try above * Float(1 - weightB) + own * Float(weightB))
        }
        if b.shape[axis] > e { lines.append(try b.narrowed(axis: axis, start: e, length: b.shape[axis] - e)) }
        return try Tensor.concat(lines, axis: axis)
    }
}
