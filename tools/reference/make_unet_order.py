#!/usr/bin/env python3
# Writes Tests/Fixtures/state-dict-order/unet-state-dict-order.json: the state_dict() key
# order of the tiny UNet2DConditionModel in Tests/Fixtures/checkpoints (built from
# unet-single/config.json with diffusers 0.42.1; pins in pinned.py). Diffusers shards in this
# order; a safetensors file does not record it (headers are sorted by dtype, then name), so
# the Swift test feeds it to the shard planner to reproduce Diffusers' own shard files byte
# for byte.
# Run (from any folder): /path/to/venv/bin/python tools/reference/make_unet_order.py
import os

import pinned  # first: offline mode and version pins before diffusers is imported
from diffusers import UNet2DConditionModel

pinned.setup()

FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")

config = UNet2DConditionModel.load_config(os.path.join(FIXTURES, "checkpoints", "unet-single"))
model = UNet2DConditionModel.from_config(config)
pinned.write_json(os.path.join(FIXTURES, "state-dict-order", "unet-state-dict-order.json"),
                  list(model.state_dict().keys()), indent=1)
