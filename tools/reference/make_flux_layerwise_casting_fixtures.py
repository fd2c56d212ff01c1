#!/usr/bin/env python3
# Writes Tests/Fixtures/layerwise-casting/flux-transformer.safetensors: the tiny FLUX.1-dev
# transformer (Tests/Fixtures/tiny-flux-models/transformer-dev) under Diffusers'
# enable_layerwise_casting (storage float8_e4m3fn, float8_e5m2 or bfloat16, compute float32;
# the default skip patterns plus FluxTransformer2DModel's "pos_embed" and "norm") on the inputs
# of tiny-flux-models/outputs.safetensors ("dev.*"), and flux-hooked-layers.json: the names of
# the layers Diffusers hooked (so the AdaLN modulation linears and the top-level proj_out stay
# float32). Needs make_flux_fixtures.py's output first. Pins in pinned.py. Run:
#   /path/to/venv/bin/python tools/reference/make_flux_layerwise_casting_fixtures.py
import os

import pinned  # first: offline mode and version pins before diffusers is imported
import torch
from diffusers import FluxTransformer2DModel
from safetensors.torch import load_file

pinned.setup()
FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
inputs = load_file(os.path.join(FIXTURES, "tiny-flux-models", "outputs.safetensors"))
args = dict(hidden_states=inputs["dev.hidden_states"], encoder_hidden_states=inputs["dev.encoder_hidden_states"],
            pooled_projections=inputs["dev.pooled_projections"], timestep=inputs["dev.timestep"],
            img_ids=inputs["dev.img_ids"], txt_ids=inputs["dev.txt_ids"], guidance=inputs["dev.guidance"])
out, hooked = {}, None
for name, dtype in [("f8e4m3fn", torch.float8_e4m3fn), ("f8e5m2", torch.float8_e5m2), ("bf16", torch.bfloat16)]:
    model = FluxTransformer2DModel.from_pretrained(os.path.join(FIXTURES, "tiny-flux-models", "transformer-dev")).eval()
    model.enable_layerwise_casting(storage_dtype=dtype, compute_dtype=torch.float32)
    if hooked is None:
        hooked = sorted(n for n, m in model.named_modules()
                        if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.get_hook("layerwise_casting") is not None)
    with torch.no_grad():
        out[name] = model(**args).sample
out["f32"] = inputs["dev.output"]
path = os.path.join(FIXTURES, "layerwise-casting", "flux-transformer.safetensors")
pinned.save_checked(out, path, {k: str(v) for k, v in pinned.versions().items()})
pinned.write_json(os.path.join(FIXTURES, "layerwise-casting", "flux-hooked-layers.json"), hooked, indent=1)
for k, v in out.items():
    err = ((v - inputs["dev.output"]).norm() / inputs["dev.output"].norm()).item()
    print(k, "relative L2 vs f32:", err)
print("wrote", path, len(hooked), "hooked layers")
