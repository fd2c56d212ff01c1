import NN

/// `AutoencoderKL`'s config.json fields (Diffusers' names and defaults).
public struct AutoencoderKLConfig: Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var blockOutChannels = [64]
    public var layersPerBlock = 1
    public var latentChannels = 4
    public var normNumGroups = 32
    public var sampleSize = 32
    public var scalingFactor: Float = 0.18215
    public var shiftFactor: Float?
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    public init() {}

    public init(_ c: ModelConfig) throws {
        inChannels = try c.int("in_channels", default: inChannels)
        outChannels = try c.int("out_channels", default: outChannels)
        blockOutChannels = c.contains("block_out_channels") ? try c.ints("block_out_channels") : blockOutChannels
        layersPerBlock = try c.int("layers_per_block", default: layersPerBlock)
        latentChannels = try c.int("latent_channels", default: latentChannels)
        normNumGroups = try c.int("norm_num_groups", default: normNumGroups)
        sampleSize = try c.int("sample_size", default: sampleSize)
        scalingFactor = Float(try c.double("scaling_factor", default: Double(scalingFactor)))
        shiftFactor = try c.optionalDouble("shift_factor").map { Float($0) }
        useQuantConv = try c.bool("use_quant_conv", default: useQuantConv)
        usePostQuantConv = try c.bool("use_post_quant_conv", default: usePostQuantConv)
        midBlockAddAttention = try c.bool("mid_block_add_attention", default: midBlockAddAttention)
        let act = try c.string("act_fn", default: "silu")
        guard act == "silu" else { throw ModuleError.invalidConfig("\(c.path): act_fn '\(act)' is not supported (only silu)") }
        let down = c.contains("down_block_types") ? try c.strings("down_block_types") : ["DownEncoderBlock2D"]
        let up = c.contains("up_block_types") ? try c.strings("up_block_types") : ["UpDecoderBlock2D"]
        for type in down where type != "DownEncoderBlock2D" {
            throw ModuleError.invalidConfig("\(c.path): down block type '\(type)' is not supported (DownEncoderBlock2D)")
        }
        for type in up where type != "UpDecoderBlock2D" {
            throw ModuleError.invalidConfig("\(c.path): up block type '\(type)' is not supported (UpDecoderBlock2D)")
        }
        guard down.count == blockOutChannels.count, up.count == blockOutChannels.count else {
            throw ModuleError.invalidConfig("\(c.path): \(down.count) down and \(up.count) up blocks for \(blockOutChannels.count) block_out_channels")
        }
        guard !blockOutChannels.isEmpty, blockOutChannels.allSatisfy({ $0 > 0 && $0 % normNumGroups == 0 }), layersPerBlock > 0 else {
            throw ModuleError.invalidConfig("\(c.path): block_out_channels \(blockOutChannels) must be positive multiples of norm_num_groups \(normNumGroups)")
        }
    }

    /// Pixels per latent along each side: 2^(number of blocks − 1).
    public var downscaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}
