#!/usr/bin/env python3
# Writes Tests/Fixtures/state-dict-order/*.json: the state_dict() key order of
#   unet-state-dict-order.json          the tiny UNet2DConditionModel of Tests/Fixtures/checkpoints/unet-single
#   vae-state-dict-order.json           the AutoencoderKL of Tests/Fixtures/tiny-sd/vae
#   text-encoder-state-dict-order.json  the CLIPTextModel of Tests/Fixtures/tiny-sd/text_encoder
# built from those configs with diffusers 0.42.1 / transformers 5.24.0 (pins in pinned.py).
# Diffusers and transformers shard in this order; a safetensors file does not record it
# (headers are sorted by dtype, then name), so `diffuse shard` takes it from the model it
# builds from the config, and the Swift tests check that model's parameter order against these.
# Run (from any folder): /path/to/venv/bin/python tools/reference/make_state_dict_orders.py
import os

import pinned  # first: offline mode and version pins before diffusers is imported
from diffusers import AutoencoderKL, UNet2DConditionModel

pinned.setup()
transformers = pinned.import_transformers()

FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIXTURES, "state-dict-order")


def write(name, model):
    pinned.write_json(os.path.join(OUT, name), list(model.state_dict().keys()), indent=1)


write("unet-state-dict-order.json",
      UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(os.path.join(FIXTURES, "checkpoints", "unet-single"))))
write("vae-state-dict-order.json",
      AutoencoderKL.from_config(AutoencoderKL.load_config(os.path.join(FIXTURES, "tiny-sd", "vae"))))
config = transformers.CLIPTextConfig.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "text_encoder"))
write("text-encoder-state-dict-order.json", transformers.CLIPTextModel(config))
