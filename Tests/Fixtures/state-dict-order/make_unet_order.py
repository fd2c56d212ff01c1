#!/usr/bin/env python3
# Writes unet-state-dict-order.json: the state_dict() key order of the tiny
# UNet2DConditionModel in Tests/Fixtures/checkpoints (built from its config.json with
# diffusers 0.42.1). Diffusers shards in this order; a safetensors file does not record it
# (headers are sorted by dtype, then name), so the Swift test feeds it to the shard planner
# to reproduce Diffusers' own shard files byte for byte.
# Run: /work/venv/bin/python Tests/Fixtures/state-dict-order/make_unet_order.py
import json
import os
from diffusers import UNet2DConditionModel

here = os.path.dirname(os.path.abspath(__file__))
folder = os.path.join(here, "..", "checkpoints", "unet-single")
config = UNet2DConditionModel.load_config(folder)
model = UNet2DConditionModel.from_config(config)
with open(os.path.join(here, "unet-state-dict-order.json"), "w") as f:
    json.dump(list(model.state_dict().keys()), f, indent=1)
    f.write("\n")
