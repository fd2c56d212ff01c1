import NN
import Tensor
import TestSupport
import XCTest
import Models

final class UNetTests: XCTestCase {
    /// A Diffusers-saved UNet (Fixtures/checkpoints/unet-single) loads strictly, single file and
    /// sharded, and its forward pass matches Diffusers' within the numerics contract.
    func testTinyUNetMatchesDiffusers() throws {
        let config = try UNet2DConditionConfig(ModelConfig(path: Fixtures.path("checkpoints/unet-single/config.json")))
        let forward = try Fixtures.file("checkpoints/unet-forward.safetensors")
        for folder in ["unet-single", "unet-sharded"] {
            let unet = UNet2DConditionModel(config)
            try unet.load(from: Checkpoint(folder: Fixtures.path("checkpoints/\(folder)")))
            let out = try unet(forward.tensor(named: "sample"), timestep: forward.tensor(named: "timestep"),
                               encoderHiddenStates: forward.tensor(named: "encoder_hidden_states"))
            try assertMatches(out, forward.tensor(named: "out"), "UNet forward (\(folder))")
        }
    }
}
