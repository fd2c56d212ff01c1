#!/usr/bin/env python3
# Diffusers' StableDiffusionPipeline on the committed tiny SD folder (Tests/Fixtures/tiny-sd,
# made by make_sd_fixtures.py) for call arguments added after that script's outputs, written to
# Tests/Fixtures/tiny-sd/outputs/calls.safetensors (a separate file, so that pipeline.safetensors
# stays as it was made):
#   guidance_rescale.*  guidance_rescale=0.7, 3 PNDM steps at 64x64 from txt2img.latents_in
#   unet_odd.*          the UNet alone on a 9x13 sample (not a multiple of its downsampling, 2),
#                       which Diffusers runs by handing each upsampler its skip's size
#                       (forward_upsample_size); timestep 981, the text states of "a red circle"
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
    sample = randn("calls/unet_odd", 1, 4, 9, 13)
    with torch.no_grad():
        context = pipe.encode_prompt(PROMPT, "cpu", 1, False)[0]
        tensors["unet_odd.sample"], tensors["unet_odd.encoder_hidden_states"] = sample, context
        tensors["unet_odd.out"] = pipe.unet(sample, torch.tensor(981), encoder_hidden_states=context).sample
    info["unet_odd"] = {"sample": [1, 4, 9, 13], "timestep": 981}
    tensors = {k: v.detach().contiguous().to(torch.float32) for k, v in tensors.items()}
    path = os.path.join(FOLDER, "outputs", "calls.safetensors")
    pinned.save_checked(tensors, path, {"info": json.dumps(info, sort_keys=True)})
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
