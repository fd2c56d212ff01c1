#!/usr/bin/env python3
# Writes Tests/Fixtures/attention/sliced-unet.safetensors: the tiny pipeline's UNet
# (Tests/Fixtures/tiny-sd/unet, 8 heads per attention layer) with Diffusers' sliced attention
# (`set_attention_slice`: 1 head at a time, and "auto" = half the heads), and with the classic
# AttnProcessor (the whole score matrix), at t=981 on the inputs of tiny-sd/outputs/unet.safetensors.
# Pins in pinned.py. Run: /path/to/venv/bin/python tools/reference/make_attention_fixtures.py
import os

import pinned  # first: offline mode and version pins before diffusers is imported
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from safetensors.torch import load_file

pinned.setup()
FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
unet = UNet2DConditionModel.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "unet")).eval()
inputs = load_file(os.path.join(FIXTURES, "tiny-sd", "outputs", "unet.safetensors"))
sample, context = inputs["sample"], inputs["encoder_hidden_states"]
t = torch.tensor(981)
out = {}
with torch.no_grad():
    unet.set_attention_slice(1)
    out["sliced_max_t981"] = unet(sample, t, context).sample
    unet.set_attention_slice("auto")
    out["sliced_auto_t981"] = unet(sample, t, context).sample
    unet.set_attn_processor(AttnProcessor())
    out["classic_t981"] = unet(sample, t, context).sample
os.makedirs(os.path.join(FIXTURES, "attention"), exist_ok=True)
path = os.path.join(FIXTURES, "attention", "sliced-unet.safetensors")
pinned.save_checked(out, path, {k: str(v) for k, v in pinned.versions().items()})
print("wrote", path)
