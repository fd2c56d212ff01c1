#!/usr/bin/env python3
# Writes Tests/Fixtures/safetensors/mixed-dtypes.safetensors with the reference writer
# (safetensors 0.8.0, torch 2.15; pins in pinned.py) for the Swift writer's byte-comparison
# test: one tensor per dtype swift-diffusers' DType holds, plus a rank-0 and an empty tensor,
# metadata {"format": "pt"} as Diffusers writes. Plain save_file on purpose: the file is what
# safetensors itself writes (one metadata key, so its header is reproducible as it is).
# Run (from any folder): /path/to/venv/bin/python tools/reference/make_mixed_dtypes.py
import os

import pinned  # first: offline mode and version pins
import torch
from safetensors.torch import save_file

pinned.setup()

OUT = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures", "safetensors", "mixed-dtypes.safetensors")

g = torch.Generator().manual_seed(7)
base = torch.randn(2, 3, generator=g) * 4
tensors = {
    "f32": base.clone(),
    "f16": base.to(torch.float16),
    "bf16": base.to(torch.bfloat16),
    "f8e4m3": base.to(torch.float8_e4m3fn),
    "f8e5m2": base.to(torch.float8_e5m2),
    "i64": torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3),
    "i32": torch.arange(-3, 3, dtype=torch.int32).reshape(3, 2),
    "u8": torch.arange(250, 256, dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(1.5),
    "empty": torch.zeros(0, 4),
    "a.b.weight": torch.ones(1, 1, 3),
}
save_file(tensors, OUT, metadata={"format": "pt"})
