#!/usr/bin/env python3
# Writes Tests/Fixtures/device-maps/sdxl-pipeline-cases.json: Diffusers 0.42.1's
# _get_final_device_map("balanced") for the tiny SDXL pipeline (Tests/Fixtures/tiny-sdxl, made
# by make_sdxl_fixtures.py) under the guide's budget shape, max_memory={0: X, 1: X}, at sizes
# that matter for its 5 MB of weights, in f32 and f16, with the component sizes Accelerate
# counts. Reuses make_device_map_fixtures.py's stand-in for get_max_memory (no GPU needed).
# Run from anywhere: /path/to/venv/bin/python tools/reference/make_sdxl_device_map_fixtures.py
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_device_map_fixtures as dm  # noqa: E402  (pins, the get_max_memory stand-in, JSON helpers)
import torch  # noqa: E402
import accelerate.utils.modeling as acc_modeling  # noqa: E402
from diffusers import StableDiffusionXLPipeline  # noqa: E402
from diffusers.pipelines import pipeline_loading_utils  # noqa: E402

TINY_XL = os.path.join(dm.FIXTURES, "tiny-sdxl")
MB = 1000 * 1000
CASES = [({0: 3 * MB, 1: 3 * MB}, "f32"), ({0: "1GB", 1: "1GB"}, "f32"), ({0: "2MB", 1: "2MB"}, "f32"),
         ({0: "1MB", 1: "1MB"}, "f32"), ({0: "1500KB", 1: "1500KB"}, "f16")]


def main():
    with open(os.path.join(TINY_XL, "model_index.json")) as f:
        index = json.load(f)
    init_dict = {k: tuple(v) for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0]}
    pipe = StableDiffusionXLPipeline.from_pretrained(TINY_XL, add_watermarker=False)
    cases = []
    for max_memory, dtype_name in CASES:
        dtype = dm.TORCH_DTYPES[dtype_name]
        sizes = {name: acc_modeling.compute_module_sizes(getattr(pipe, name).to(dtype), dtype=dtype)[""]
                 for name in ["text_encoder", "text_encoder_2", "unet", "vae"]}
        final = pipeline_loading_utils._get_final_device_map(
            device_map="balanced", pipeline_class=StableDiffusionXLPipeline, passed_class_obj={}, init_dict=init_dict,
            library="diffusers", max_memory=dict(max_memory), dtype=dtype, cached_folder=TINY_XL)
        cases.append({"max_memory": dm.budget_json(max_memory), "dtype": dtype_name,
                      "component_sizes": [[k, v] for k, v in sizes.items()],
                      "device_map": None if final is None else dm.map_json(final)})
        print(max_memory, dtype_name, sizes, final)
    dm.write("sdxl-pipeline-cases.json", cases)


if __name__ == "__main__":
    main()
