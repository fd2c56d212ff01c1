import Foundation
import Models
import NN
import Offload
import Tensor
import XCTest

/// The disk tier on a CPU-only machine: weights stay in their memory-mapped checkpoint, a group's
/// pages come in while it computes and are released after, so the peak resident set is the
/// groups in use, not the model (VmHWM, the kernel's figure).
final class DiskTierTests: XCTestCase {
    /// A UNet of the SD family big enough (about 64 MB of f32 weights) to see in the RSS.
    static func config() -> UNet2DConditionConfig {
        var c = UNet2DConditionConfig()
        c.blockOutChannels = [128, 256]
        c.downBlockTypes = [.plain, .crossAttention]
        c.upBlockTypes = [.crossAttention, .plain]
        c.attentionHeads = [8, 8]
        c.crossAttentionDim = 64
        c.sampleSize = 16
        return c
    }

    /// The same size in SDXL's shape: the "text_time" addition embedding, per-block
    /// transformer depths, linear projections.
    static func configXL() throws -> UNet2DConditionConfig {
        let path = NSTemporaryDirectory() + "disk-tier-xl-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"""
            {"block_out_channels": [128, 256], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "attention_head_dim": [8, 8], "cross_attention_dim": 64,
             "sample_size": 16, "transformer_layers_per_block": [1, 2], "use_linear_projection": true,
             "addition_embed_type": "text_time", "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 80}
            """#.utf8).write(to: URL(fileURLWithPath: path))
        return try UNet2DConditionConfig(ModelConfig(path: path))
    }

    static let folder = NSTemporaryDirectory() + "disk-tier-\(UUID().uuidString)"
    static let folderXL = NSTemporaryDirectory() + "disk-tier-xl-\(UUID().uuidString)"

    /// Writes random weights for `config` once into `folder`; models then map them from that file.
    static func writeCheckpoint(_ config: UNet2DConditionConfig = config(), to folder: String = folder) throws {
        guard !FileManager.default.fileExists(atPath: folder) else { return }
        let unet = UNet2DConditionModel(config)
        var state: UInt64 = 7
        var tensors: [(name: String, tensor: Tensor)] = []
        for (path, parameter) in unet.namedParameters() {
            let count = parameter.shape.reduce(1, *)
            let fanIn = max(1, parameter.shape.dropFirst().reduce(1, *))
            let scale = 1 / Float(fanIn).squareRoot()
            let values = (0..<count).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 23) - 1) * scale
            }
            tensors.append((path, try Tensor(values, shape: parameter.shape)))
        }
        _ = try CheckpointWriter.save(tensors, to: folder)
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
        try? FileManager.default.removeItem(atPath: folderXL)
    }

    func peakGrowth(xl: Bool = false, _ prepare: (UNet2DConditionModel) throws -> Void) throws -> (growth: Int, output: [Float]) {
        let (config, folder) = xl ? (try Self.configXL(), Self.folderXL) : (Self.config(), Self.folder)
        try Self.writeCheckpoint(config, to: folder)
        let unet = UNet2DConditionModel(config)
        try unet.load(from: Checkpoint(folder: folder))
        XCTAssertTrue(unet.namedParameters().allSatisfy { $0.parameter.value?.storage.isMapped == true }, "weights stay mapped")
        try prepare(unet)
        // Free heap pages and cached blocks left by earlier tests go back to the kernel first;
        // otherwise this run reuses them and its growth understates what it touches.
        Device.cpu.allocator.emptyCache()
        _ = mallocTrim(0)
        ProcessMemory.resetPeak()
        let base = try XCTUnwrap(ProcessMemory.residentBytes)
        let out = try forward(unet)
        let growth = try XCTUnwrap(ProcessMemory.peakResidentBytes) - base
        return (growth, out)
    }

    func forward(_ unet: UNet2DConditionModel) throws -> [Float] {
        let sample = try Tensor((0..<(4 * 16 * 16)).map { Float($0 % 13) / 13 - 0.5 }, shape: [1, 4, 16, 16])
        let context = try Tensor((0..<(8 * 64)).map { Float($0 % 7) / 7 - 0.5 }, shape: [1, 8, 64])
        let added = try unet.config.textTimeEmbedding.map { _ in
            UNet2DConditionModel.AddedConditions(textEmbeds: try Tensor((0..<32).map { Float($0 % 5) / 5 - 0.4 }, shape: [1, 32]),
                                                 timeIds: try Tensor([1024, 1024, 0, 0, 1024, 1024], shape: [1, 6]))
        }
        return try unet(sample, timestep: try Tensor(int64: [500], shape: []), encoderHiddenStates: context, addedConditions: added).floats()
    }

    /// The convolution weights of mapped groups are packed into the run's packed-weight file on
    /// the first forward only: later forwards fault them back from it (the file does not grow)
    /// with the same numbers, and removing the hooks detaches the file.
    func testPackedWeightsArePackedOnce() throws {
        try Self.writeCheckpoint()
        let unet = UNet2DConditionModel(Self.config())
        try unet.load(from: Checkpoint(folder: Self.folder))
        let plain = try forward(unet)
        let state = try unet.applyGroupOffloading(device: .cpu, options: GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1)))
        let file = try XCTUnwrap(state.packedWeightFile)
        XCTAssertEqual(file.byteCount, 0)
        XCTAssertEqual(try forward(unet), plain)
        let packed = file.byteCount
        let convolutionBytes = unet.namedParameters().compactMap { $0.parameter.value }.filter { $0.rank == 4 }.reduce(0) { $0 + $1.byteCount }
        XCTAssertGreaterThanOrEqual(packed, convolutionBytes * 9 / 10, "the convolution weights went to the file")
        XCTAssertEqual(try forward(unet), plain)
        XCTAssertEqual(file.byteCount, packed, "nothing packed again")
        try unet.removeAllHooks()
        XCTAssertTrue(unet.namedParameters().allSatisfy { $0.parameter.value?.storage.spillFile == nil })
        XCTAssertEqual(try forward(unet), plain)
    }

    /// The SD UNet and its SDXL-shaped twin.
    func testDiskTierBoundsThePeakResidentSet() throws {
        for xl in [false, true] {
            let family = xl ? "SDXL" : "SD"
            let plain = try peakGrowth(xl: xl) { _ in }
            let weights = try Checkpoint(folder: xl ? Self.folderXL : Self.folder).headers().reduce(0) { $0 + $1.header.dataByteCount }
            for (name, options) in [("leaf level", GroupOffloadOptions(type: .leafLevel)),
                                    ("block level", GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1)))] {
                let tiered = try peakGrowth(xl: xl) { try $0.applyGroupOffloading(device: .cpu, options: options) }
                XCTAssertEqual(tiered.output, plain.output, "\(family), \(name): the same numbers")
                print("disk tier, \(family), \(name): peak RSS grew \(formatBytes(tiered.growth)) vs \(formatBytes(plain.growth)) plain (weights \(formatBytes(weights)))")
                if name == "leaf level" {
                    XCTAssertLessThan(Double(tiered.growth), 0.4 * Double(plain.growth), "\(family), \(name): under 40 % of the plain run's peak")
                } else {
                    XCTAssertLessThan(tiered.growth, plain.growth, "\(family), \(name): below the plain run's peak")
                }
            }
            let sequential = try peakGrowth(xl: xl) { try $0.enableSequentialCPUOffload(device: .cpu) }
            XCTAssertEqual(sequential.output, plain.output)
            XCTAssertLessThan(Double(sequential.growth), 0.4 * Double(plain.growth), "\(family), sequential: under 40 %")
        }
    }

    func testGroupFilesAreWrittenOnceAndNeverStale() throws {
        let folder = NSTemporaryDirectory() + "group-files-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny-sd/unet").path
        func model() throws -> UNet2DConditionModel {
            let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: root + "/config.json")))
            try unet.load(from: Checkpoint(folder: root), dtype: .bf16)   // converted: owned, not mapped
            return unet
        }
        let options = GroupOffloadOptions(type: .blockLevel(blocksPerGroup: 1), offloadToDiskPath: folder)
        let first = try model()
        try first.applyGroupOffloading(device: .cpu, options: options)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        XCTAssertEqual(files.count, 5)
        XCTAssertTrue(first.namedParameters().allSatisfy { $0.parameter.value?.storage.isMapped == true }, "homes now map the group files")
        let dates = try files.map { try FileManager.default.attributesOfItem(atPath: folder + "/" + $0)[.modificationDate] as? Date }
        // A second model reuses the files (same weights, same checksum).
        let second = try model()
        try second.applyGroupOffloading(device: .cpu, options: options)
        XCTAssertEqual(try files.map { try FileManager.default.attributesOfItem(atPath: folder + "/" + $0)[.modificationDate] as? Date }, dates)
        // Other weights against the same folder: an error, and nothing half-applied.
        let other = try model()
        if let (_, p) = other.namedParameters().first(where: { $0.path.hasPrefix("down_blocks.0") }) { p.value = try p.value?.scaled(by: 2) }
        XCTAssertThrowsError(try other.applyGroupOffloading(device: .cpu, options: options)) { XCTAssertTrue("\($0)".contains("stale"), "\($0)") }
        XCTAssertTrue(other.allHooks().isEmpty)
        // A truncated group file: an error naming it.
        let victim = folder + "/" + files[0]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: victim))
        try handle.truncate(atOffset: 100)
        try handle.close()
        XCTAssertThrowsError(try model().applyGroupOffloading(device: .cpu, options: options)) { XCTAssertTrue("\($0)".contains(files[0]), "\($0)") }
        // An offload folder that cannot be written.
        XCTAssertThrowsError(try model().applyGroupOffloading(device: .cpu, options: GroupOffloadOptions(type: .leafLevel, offloadToDiskPath: "/proc/nope")))
    }
}

/// glibc's `malloc_trim` (not in Swift's Glibc module): returns free heap pages to the kernel.
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32
