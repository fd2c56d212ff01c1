#!/usr/bin/env python3
# Writes Tests/Fixtures/vae-tiling/vae-tiling.safetensors: Diffusers' tiled encode, tiled decode
# and sliced decode of the tiny pipeline's VAE (Tests/Fixtures/tiny-sd/vae, downscale factor 2)
# with tiles small enough that tiling really happens: tile_sample_min_size 16 px,
# tile_latent_min_size 8, overlap 0.25 (strides 12 px / 6 latent px, blends 4 px / 2 latent px),
# on a 40x56 image (4 x 5 tiles, the last row and column partial) and 20x28 latents (4 x 5 tiles).
# Pins in pinned.py. Run: /path/to/venv/bin/python tools/reference/make_vae_tiling_fixtures.py
#
# Tensors: image [1,3,40,56], latents [1,4,20,28], latents3 [3,4,20,28];
#   tiled_encode_moments (encoder+quant_conv, tiled), tiled_encode_mean, tiled_encode_logvar,
#   plain_encode_mean; tiled_decode, plain_decode; sliced_decode (batch 3, slicing only),
#   sliced_tiled_decode (batch 3, slicing and tiling).
import os

import pinned  # first: offline mode and version pins before diffusers is imported
import torch
from diffusers import AutoencoderKL

pinned.setup()
FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
vae = AutoencoderKL.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "vae")).eval()
assert 2 ** (len(vae.config.block_out_channels) - 1) == 2

image = pinned.randn("vae-tiling.image", 1, 3, 40, 56).clamp(-1, 1)
latents = pinned.randn("vae-tiling.latents", 1, 4, 20, 28)
latents3 = pinned.randn("vae-tiling.latents3", 3, 4, 20, 28)

out = {"image": image, "latents": latents, "latents3": latents3}
with torch.no_grad():
    out["plain_encode_mean"] = vae.encode(image).latent_dist.mean
    out["plain_decode"] = vae.decode(latents).sample
    vae.enable_tiling()
    vae.tile_sample_min_size, vae.tile_latent_min_size, vae.tile_overlap_factor = 16, 8, 0.25
    moments = vae._encode(image)
    dist = vae.encode(image).latent_dist
    out["tiled_encode_moments"] = moments
    out["tiled_encode_mean"] = dist.mean
    out["tiled_encode_logvar"] = dist.logvar
    out["tiled_decode"] = vae.decode(latents).sample
    vae.enable_slicing()
    out["sliced_tiled_decode"] = vae.decode(latents3).sample
    vae.disable_tiling()
    out["sliced_decode"] = vae.decode(latents3).sample

assert out["tiled_decode"].shape == (1, 3, 40, 56), out["tiled_decode"].shape
assert out["tiled_encode_mean"].shape == (1, 4, 20, 28), out["tiled_encode_mean"].shape
assert not torch.equal(out["tiled_decode"], out["plain_decode"]), "tiling must change the result here"
path = os.path.join(FIXTURES, "vae-tiling", "vae-tiling.safetensors")
pinned.save_checked(out, path, {k: str(v) for k, v in pinned.versions().items()})
print("wrote", path, {k: tuple(v.shape) for k, v in out.items()})
