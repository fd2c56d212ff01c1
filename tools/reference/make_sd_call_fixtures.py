#!/usr/bin/env python3
# Diffusers' StableDiffusionPipeline on the committed tiny SD folder (Tests/Fixtures/tiny-sd,
# made by make_sd_fixtures.py) for call arguments added after that script's outputs, written to
# Tests/Fixtures/tiny-sd/outputs/calls.safetensors (a separate file, so that pipeline.safetensors
# stays as it was made):
#   guidance_rescale.*  guidance_rescale=0.7, 3 PNDM steps at 64x64 from txt2img.latents_in
#   odd_size.*          104x72 pixels: latents 9x13, not multiples of the UNet's downsampling
#                       (2), which Diffusers runs by handing each up block the skip's size
#                       (forward_upsample_size); initial latents drawn with the seeded helper
# Pinned versions: pinned.py. CPU, float32, 2 threads. Run from anywhere:
#   /path/to/venv/bin/python tools/reference/make_sd_call_fixtures.py
import json
import os

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import randn
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

pinned.setup(threads=2)
VERSIONS = pinned.versions("numpy")
FOLDER = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures", "tiny-sd")
PROMPT = "a red circle"


def run(pipe, tensors, key, latents, **kwargs):
    """The call's final latents and image under `key`."""
    common = dict(prompt=PROMPT, negative_prompt="", guidance_scale=7.5, num_inference_steps=3, latents=latents.clone())
    with torch.no_grad():
        lat = pipe(**common, **kwargs, output_type="latent").images
        img = pipe(**common, **kwargs, output_type="np").images
    tensors[f"{key}.latents_in"] = latents
    tensors[f"{key}.latents_out"] = lat
    tensors[f"{key}.image"] = torch.from_numpy(img).permute(0, 3, 1, 2)


def main():
    pipe = StableDiffusionPipeline.from_pretrained(FOLDER, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    base = load_file(os.path.join(FOLDER, "outputs", "pipeline.safetensors"))
    tensors, info = {}, {"versions": VERSIONS, "prompt": PROMPT, "negative_prompt": "", "guidance_scale": 7.5, "steps": 3}
    run(pipe, tensors, "guidance_rescale", base["txt2img.latents_in"], height=64, width=64, guidance_rescale=0.7)
    info["guidance_rescale"] = {"height": 64, "width": 64, "guidance_rescale": 0.7}
    run(pipe, tensors, "odd_size", randn("calls/odd_size", 1, 4, 9, 13), height=72, width=104)
    info["odd_size"] = {"height": 72, "width": 104}
    tensors = {k: v.detach().contiguous().to(torch.float32) for k, v in tensors.items()}
    path = os.path.join(FOLDER, "outputs", "calls.safetensors")
    pinned.save_checked(tensors, path, {"info": json.dumps(info, sort_keys=True)})
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
