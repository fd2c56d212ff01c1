#!/usr/bin/env python3
# Writes Tests/Fixtures/layerwise-casting/unet.safetensors: the tiny pipeline's UNet
# (Tests/Fixtures/tiny-sd/unet) with Diffusers' enable_layerwise_casting (storage float8_e4m3fn,
# float8_e5m2 or bfloat16, compute float32; default patterns plus the UNet's "norm"), at t=981 on
# the inputs of tiny-sd/outputs/unet.safetensors, and the names of the layers Diffusers hooked.
# Pins in pinned.py. Run: /path/to/venv/bin/python tools/reference/make_layerwise_casting_fixtures.py
import json
import os

import pinned  # first: offline mode and version pins before diffusers is imported
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

pinned.setup()
FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
inputs = load_file(os.path.join(FIXTURES, "tiny-sd", "outputs", "unet.safetensors"))
sample, context, t = inputs["sample"], inputs["encoder_hidden_states"], torch.tensor(981)
out, hooked = {}, None
for name, dtype in [("f8e4m3fn", torch.float8_e4m3fn), ("f8e5m2", torch.float8_e5m2), ("bf16", torch.bfloat16)]:
    unet = UNet2DConditionModel.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "unet")).eval()
    unet.enable_layerwise_casting(storage_dtype=dtype, compute_dtype=torch.float32)
    if hooked is None:
        hooked = sorted(n for n, m in unet.named_modules()
                        if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.get_hook("layerwise_casting") is not None)
    with torch.no_grad():
        out[f"{name}_t981"] = unet(sample, t, context).sample
out["f32_t981"] = inputs["out_t981"]
os.makedirs(os.path.join(FIXTURES, "layerwise-casting"), exist_ok=True)
path = os.path.join(FIXTURES, "layerwise-casting", "unet.safetensors")
pinned.save_checked(out, path, {k: str(v) for k, v in pinned.versions().items()})
pinned.write_json(os.path.join(FIXTURES, "layerwise-casting", "hooked-layers.json"), hooked, indent=1)
for k, v in out.items():
    err = ((v - inputs["out_t981"]).norm() / inputs["out_t981"].norm()).item()
    print(k, "relative L2 vs f32:", err)
print("wrote", path, len(hooked), "hooked layers")
