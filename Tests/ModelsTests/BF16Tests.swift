import NN
import Tensor
import TestSupport
import XCTest
import Models

/// The tiny components loaded in bf16 (weights converted at load, activations in bf16, products
/// accumulating in f32) against Diffusers' f32 outputs. bf16 keeps 8 significant bits, so the
/// outputs drift from f32 by 0.6–3 % here (the fixture's weights are sharpened on purpose). The
/// bound for each component is 1.25× the drift PyTorch itself shows on the same model and
/// inputs in bf16 (tools/reference/measure_bf16_error.py): we may round differently, not worse.
final class BF16Tests: XCTestCase {
    /// PyTorch 2.15 / Diffusers 0.42.1 in bf16 vs their f32 outputs (relative L2).
    static let pytorch = (unet: 0.0331286, textEncoder: 0.0062845, vaeDecode: 0.0207605, vaeEncode: 0.0142681)
    static let slack = 1.25

    func testUNetTextEncoderAndVAEInBF16() throws {
        let root = Fixtures.path("tiny-sd")
        let unet = UNet2DConditionModel(try UNet2DConditionConfig(ModelConfig(path: root + "/unet/config.json")))
        try unet.load(from: Checkpoint(folder: root + "/unet"), dtype: .bf16)
        XCTAssertTrue(unet.namedParameters().allSatisfy { $0.parameter.value?.dtype == .bf16 })
        let u = try Fixtures.file("tiny-sd/outputs/unet.safetensors")
        let out = try unet(u.tensor(named: "sample").to(.bf16), timestep: Tensor(int64: [981], shape: []),
                           encoderHiddenStates: u.tensor(named: "encoder_hidden_states").to(.bf16))
        XCTAssertEqual(out.dtype, .bf16)
        try assertMatches(out, u.tensor(named: "out_t981"), tolerance: Self.pytorch.unet * Self.slack, "UNet in bf16")

        let clip = CLIPTextModel(try CLIPTextConfig(ModelConfig(path: root + "/text_encoder/config.json")))
        try clip.load(from: Checkpoint(folder: root + "/text_encoder"), dtype: .bf16)
        let t = try Fixtures.file("tiny-sd/outputs/text_encoder.safetensors")
        try assertMatches(clip(t.tensor(named: "input_ids")).lastHiddenState, t.tensor(named: "last_hidden_state"),
                          tolerance: Self.pytorch.textEncoder * Self.slack, "text encoder in bf16")

        let vae = AutoencoderKL(try AutoencoderKLConfig(ModelConfig(path: root + "/vae/config.json")))
        try vae.load(from: Checkpoint(folder: root + "/vae"), dtype: .bf16)
        let v = try Fixtures.file("tiny-sd/outputs/vae.safetensors")
        try assertMatches(vae.decode(v.tensor(named: "latent").to(.bf16)), v.tensor(named: "decode"), tolerance: Self.pytorch.vaeDecode * Self.slack, "VAE decode in bf16")
        try assertMatches(vae.encode(v.tensor(named: "image").to(.bf16)).mean, v.tensor(named: "encode.mean"),
                          tolerance: Self.pytorch.vaeEncode * Self.slack, "VAE encode in bf16")
    }
}
