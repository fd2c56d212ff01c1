import Foundation
import NN
import Tensor

/// A host-memory budget (`--memory-budget`): a size as `MemorySize` reads it, more than zero.
public enum HostMemoryBudget {
    /// Parses `text` ("6GB", "512MiB"), or throws one sentence naming it.
    public static func parse(_ text: String) throws -> Int {
        if let number = Double(text.trimmingCharacters(in: .whitespaces)) {
            throw OffloadError.invalidOption(number <= 0 ? "--memory-budget must be more than 0 bytes, not '\(text)'"
                                             : "--memory-budget needs a unit, e.g. \(text)GB or \(text)MiB, not '\(text)'")
        }
        guard let bytes = try? MemorySize.parse(text) else {
            throw OffloadError.invalidOption("--memory-budget takes a size such as 6GB or 512MiB (a number of at most 9.2e18 bytes and a unit), not '\(text)'")
        }
        guard bytes > 0 else { throw OffloadError.invalidOption("--memory-budget must be more than 0 bytes, not '\(text)'") }
        return bytes
    }

    /// `bytes` rounded to a size `parse` reads back — tenths of a GiB, or whole MiB below one —
    /// up (a budget that holds at least this much) or down (one within what is there).
    public static func suggestion(_ bytes: Int, roundingDown: Bool = false) -> String {
        let rule: FloatingPointRoundingRule = roundingDown ? .down : .up
        let gib = Double(bytes) / 1_073_741_824
        if gib >= 1 { return String(format: "%.1fGiB", (gib * 10).rounded(rule) / 10) }
        return "\(Int((Double(bytes) / 1_048_576).rounded(rule)))MiB"
    }
}

/// One way to run a pipeline on the host that a memory plan weighs: how many weight bytes it
/// holds at once, and the one unit it cannot split further.
public struct BudgetCandidate: Sendable, Equatable {
    public enum Technique: Sendable, Equatable {
        /// Every weight of the running phase's model in memory (each phase holds its own model).
        case resident
        /// Group offloading on the host at block level (`blocksPerGroup` blocks a group), mapped
        /// weights read in place and the next group read ahead.
        case groupBlock(blocksPerGroup: Int)
        /// Group offloading at leaf level: one module's weights at a time, and the next.
        case groupLeaf
        /// Towards an accelerator: each phase's model moved there for its phase (model CPU offload).
        case modelOffload
        /// Towards an accelerator: each leaf module's weights moved there for its forward.
        case sequentialOffload

        /// The technique `--offload` and `--blocks-per-group` name (nil: one a plan does not weigh).
        public init?(offloadOption: String, blocksPerGroup: Int?) {
            switch offloadOption {
            case "none": self = .resident
            case "group-block": self = .groupBlock(blocksPerGroup: blocksPerGroup ?? 1)
            case "group-leaf": self = .groupLeaf
            case "model": self = .modelOffload
            case "sequential": self = .sequentialOffload
            default: return nil
            }
        }
        /// Its `--offload` value.
        public var offloadOption: String {
            switch self {
            case .resident: return "none"
            case .groupBlock: return "group-block"
            case .groupLeaf: return "group-leaf"
            case .modelOffload: return "model"
            case .sequentialOffload: return "sequential"
            }
        }
        /// Its `--blocks-per-group` value, at block level.
        public var blocksPerGroup: Int? {
            if case .groupBlock(let n) = self { return n }
            return nil
        }
        /// Whether it is group offloading (whose groups a transfer queue may copy ahead).
        public var isGrouped: Bool {
            switch self {
            case .groupBlock, .groupLeaf: return true
            case .resident, .modelOffload, .sequentialOffload: return false
            }
        }
    }
    public let technique: Technique
    /// Weight bytes in memory at once, at most, in the compute dtype: the largest phase's
    /// model (resident), or the always-resident group plus the running and the prefetched one.
    public let weightBytesAtOnce: Int
    /// The largest group this technique moves (or the largest model, resident) and its bytes.
    public let largestUnit: String
    public let largestUnitBytes: Int
    /// How the VAE decodes the batch (a plan's choice for images whose whole decode would not fit).
    public var decode = VAEDecode()
    /// Whether the plan put the memory-efficient attention kernel (`--attention flash`) in place
    /// of a requested one that holds whole score matrices (naive, sliced).
    public var memoryEfficientAttention = false
    /// Towards an accelerator, with group offloading: the groups that follow copied ahead on a
    /// transfer queue while the current one computes (`--stream`), until this many bytes are
    /// on their way (`--prefetch-bytes`, whole KiB; 0: one group ahead, as Diffusers); nil:
    /// each group copied when it is needed. The copies overlap the computation, at the price
    /// of the groups held ahead on the device.
    public var streamPrefetchBytes: Int?
    /// Images a chunk of the batch runs at once (nil: the whole batch), each image with the
    /// noise it gets in the whole batch: a plan's choice for a batch whose activations do not fit.
    public var imagesPerChunk: Int?
    /// The dtype the plan stores the denoiser's Linear/Conv weights in (layerwise casting), nil
    /// for none: lossy, weighed only where no lossless plan fits.
    public var lossyStorage: DType?
    /// The run's peaks and step time as its rehearsal predicts them (nil: not rehearsed; the
    /// weights, the process and the images are then all a plan weighs).
    public var prediction: RunPrediction?
    /// Why its rehearsal could not complete (an accelerator's capacity ran out): it never fits.
    public var rejection: String?

    /// This candidate's sizes under another technique that holds as much at once.
    public func renamed(_ technique: Technique) -> BudgetCandidate {
        BudgetCandidate(technique: technique, weightBytesAtOnce: weightBytesAtOnce, largestUnit: largestUnit, largestUnitBytes: largestUnitBytes)
    }

    public init(technique: Technique, weightBytesAtOnce: Int, largestUnit: String, largestUnitBytes: Int) {
        self.technique = technique
        self.weightBytesAtOnce = weightBytesAtOnce
        self.largestUnit = largestUnit
        self.largestUnitBytes = largestUnitBytes
    }

    /// How close its images are to the plain run's: the same numbers (offloading, chunks of the
    /// batch, a decode one image at a time reorder no sum), close (tiles blended as Diffusers
    /// blends them, another attention kernel's rounding), or lossy (weights stored in fewer bits).
    public enum Numbers: Int, Sendable, CaseIterable {
        case plain, close, lossy
    }
    public var numbers: Numbers {
        lossyStorage != nil ? .lossy : decode.tiling || memoryEfficientAttention ? .close : .plain
    }

    /// The options that select this candidate's techniques.
    public var commandLine: String {
        "--offload \(technique.offloadOption)" + (technique.blocksPerGroup.map { " --blocks-per-group \($0)" } ?? "")
            + (streamPrefetchBytes.map { " --stream" + ($0 > 0 ? " --prefetch-bytes \($0 / 1024)KiB" : "") } ?? "")
            + decode.commandLine + (memoryEfficientAttention ? " --attention flash" : "")
            + (imagesPerChunk.map { " --images-per-chunk \($0)" } ?? "") + (lossyStorage.map { " --storage-dtype \($0)" } ?? "")
    }

    /// This candidate with `change` made (and no prediction yet).
    private func with(_ change: (inout BudgetCandidate) -> Void) -> BudgetCandidate {
        var copy = self
        change(&copy)
        copy.prediction = nil
        copy.rejection = nil
        return copy
    }

    /// This candidate with the VAE tiled at its sample size.
    public func tiled() -> BudgetCandidate { decoding(VAEDecode(slicing: decode.slicing, tiling: true)) }

    /// This candidate decoding as `decode` says.
    public func decoding(_ decode: VAEDecode) -> BudgetCandidate { with { $0.decode = decode } }

    /// This candidate with the memory-efficient attention kernel.
    public func withMemoryEfficientAttention() -> BudgetCandidate { with { $0.memoryEfficientAttention = true } }

    /// This candidate with its groups copied ahead until `prefetchBytes` (rounded up to whole
    /// KiB; 0: one group) are on their way.
    public func streaming(prefetchBytes: Int) -> BudgetCandidate {
        with { $0.streamPrefetchBytes = (prefetchBytes + 1023) / 1024 * 1024 }
    }

    /// This candidate run `images` at a time.
    public func chunked(_ images: Int) -> BudgetCandidate { with { $0.imagesPerChunk = images } }

    /// The storage dtype of lossy plans: f8e4m3, Diffusers' `enable_layerwise_casting` default.
    public static let lossyStorageDType = DType.f8e4m3fn

    /// This candidate, sized with the denoiser's weights in `storage`, marked lossy.
    public func storing(_ storage: DType) -> BudgetCandidate {
        var copy = self
        copy.lossyStorage = storage
        return copy
    }

    /// The chunk sizes a plan weighs for a batch of `batch`, largest first: half the batch, a
    /// quarter, … down to one image (rounded up, each size once).
    public static func chunkSizes(batch: Int) -> [Int] {
        var sizes: [Int] = [], size = batch
        while size > 1 {
            size = (size + 1) / 2
            sizes.append(size)
        }
        return sizes
    }

    /// Group offloading of every component at `type` (Diffusers' layout), each weight in the
    /// dtype it arrives in for `computeDType`: per component the always-resident groups plus
    /// the two largest others (the running group and the one read ahead); the largest component.
    public static func grouped(_ components: [(name: String, model: Module)], _ type: GroupOffloadType,
                               computeDType: DType) throws -> BudgetCandidate {
        var atOnce = 0, largest = ("", 0)
        for (name, model) in components {
            var always = 0, moving: [Int] = []
            for unit in model.groupOffloadLayout(type) {
                let bytes = try unit.slots.reduce(0) { $0 + ParameterGroup.arrivingByteCount(try $1.parameter.tensor($1.path), computeDType) }
                if case .whileForward = unit.runs { always += bytes } else { moving.append(bytes) }
                if bytes > largest.1 { largest = ("\(name).\(unit.id)", bytes) }
            }
            atOnce = max(atOnce, always + moving.sorted(by: >).prefix(2).reduce(0, +))
        }
        let technique: Technique
        switch type {
        case .blockLevel(let n): technique = .groupBlock(blocksPerGroup: n)
        case .leafLevel: technique = .groupLeaf
        }
        return BudgetCandidate(technique: technique, weightBytesAtOnce: atOnce, largestUnit: largest.0, largestUnitBytes: largest.1)
    }

    /// Every weight of a model in memory: the largest component (`onePhaseAtATime`, when
    /// each phase lets the previous one's weights go) or all of them together.
    public static func resident(_ components: [(name: String, model: Module)], computeDType: DType,
                                onePhaseAtATime: Bool) throws -> BudgetCandidate {
        var total = 0, largest = ("", 0)
        for (name, model) in components {
            let bytes = try model.namedParameters().reduce(0) { $0 + ParameterGroup.arrivingByteCount(try $1.parameter.tensor($1.path), computeDType) }
            total += bytes
            if bytes > largest.1 { largest = (name, bytes) }
        }
        return BudgetCandidate(technique: .resident, weightBytesAtOnce: onePhaseAtATime ? largest.1 : total,
                               largestUnit: largest.0, largestUnitBytes: largest.1)
    }

}

/// How the VAE decodes a batch (Diffusers' `enable_vae_slicing`, `enable_vae_tiling`): whole,
/// one image at a time, in overlapping tiles.
public struct VAEDecode: Sendable, Equatable {
    /// One image at a time: the whole batch's numbers, one image's activations.
    public var slicing: Bool
    /// In overlapping tiles blended as Diffusers blends them (the pixels change a little).
    public var tiling: Bool
    /// With `tiling`, the tile's side in pixels; nil: the VAE's `sample_size`.
    public var tileSize: Int?

    public init(slicing: Bool = false, tiling: Bool = false, tileSize: Int? = nil) {
        self.slicing = slicing
        self.tiling = tiling
        self.tileSize = tiling ? tileSize : nil
    }

    /// The options that select it.
    public var commandLine: String {
        (slicing ? " --vae-slicing" : "") + (tiling ? " --vae-tiling" : "") + (tileSize.map { " --vae-tile-size \($0)" } ?? "")
    }

    /// The decodes from `start` down, each holding less than the one before: `start`, then one
    /// image at a time (a batch), then tiles of the VAE's `sampleSize` pixels, a half, a
    /// quarter — only tiles smaller than `imageSide` (a tile no smaller decodes whole) and
    /// smaller than `start`'s, multiples of the VAE's `downscale` of at least 8 latent pixels —
    /// one image at a time in a batch. A decode that runs out of memory is retried one rung
    /// down; a plan weighs the rungs while none fits.
    public static func ladder(from start: VAEDecode, batch: Int, imageSide: Int, sampleSize: Int, downscale: Int) -> [VAEDecode] {
        var rungs = [start]
        let slicing = start.slicing || batch > 1
        if slicing && !start.slicing { rungs.append(VAEDecode(slicing: true, tiling: start.tiling, tileSize: start.tileSize)) }
        let below = start.tiling ? start.tileSize ?? sampleSize : Int.max
        var tile = sampleSize, tiles = 0
        while tile >= 8 * downscale, tile % downscale == 0, tiles < 3 {
            if tile < imageSide && tile < below {
                rungs.append(VAEDecode(slicing: slicing, tiling: true, tileSize: tile == sampleSize ? nil : tile))
                tiles += 1
            }
            tile /= 2
        }
        return rungs
    }
}
