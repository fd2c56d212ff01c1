#!/usr/bin/env python3
# Writes Tests/Fixtures/device-maps/: what Accelerate 1.15.0 and Diffusers 0.42.1 compute for
# device placement of the tiny-sd models (Tests/Fixtures/tiny-sd), so that the Swift planner
# (Sources/Offload/DeviceMap) can be checked against them exactly:
#
#   trees/{unet,vae,text_encoder}.json  each model built on the meta device, as Accelerate sees
#                                       it: class names, own parameters and buffers (numel,
#                                       dtype), children in registration order, no-split classes
#   model-cases.json                    get_balanced_memory / get_max_memory and the device map
#                                       (Diffusers' _determine_device_map for the UNet and VAE,
#                                       Accelerate's functions for CLIP), cleaned and raw
#   pipeline-cases.json                 Diffusers' _get_final_device_map("balanced") for the
#                                       tiny-sd pipeline under several budgets
#   memory-cases.json                   convert_file_size_to_int and get_max_memory
#
# Budgets without a user max_memory need a GPU's free memory; get_max_memory(None) is replaced
# by a fixed inventory (recorded in each case as "inventory") so that the script runs on a CPU.
# Device maps are written as [key, value] pairs; Accelerate's clean_device_map visits children
# in a set's order, so only the pairs (not their order) are meaningful.
# Run from anywhere: /work/venv/bin/python tools/reference/make_device_map_fixtures.py
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pinned  # noqa: E402  (offline mode and version pins first)

pinned.setup()

import diffusers  # noqa: E402

diffusers.utils.logging.set_verbosity_error()

import accelerate  # noqa: E402
import accelerate.utils.modeling as acc_modeling  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from diffusers.models import model_loading_utils  # noqa: E402
from diffusers.pipelines import pipeline_loading_utils  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

assert accelerate.__version__ == "1.15.0", accelerate.__version__

FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
TINY = os.path.join(FIXTURES, "tiny-sd")
OUT = os.path.join(FIXTURES, "device-maps")

DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.int64: "i64",
          torch.int32: "i32", torch.uint8: "u8", torch.bool: "bool"}
TORCH_DTYPES = {v: k for k, v in DTYPES.items()}

# ---- get_max_memory(None) on a CPU-only machine: a fixed inventory --------------------------------
_original_get_max_memory = acc_modeling.get_max_memory
INVENTORY = None


def fake_get_max_memory(max_memory=None):
    if max_memory is None:
        assert INVENTORY is not None, "a case without max_memory needs an inventory"
        return dict(INVENTORY)
    return _original_get_max_memory(max_memory)


acc_modeling.get_max_memory = fake_get_max_memory
model_loading_utils.get_max_memory = fake_get_max_memory
pipeline_loading_utils.get_max_memory = fake_get_max_memory


def build_models(dtype=torch.float32):
    with accelerate.init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(os.path.join(TINY, "unet")))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(os.path.join(TINY, "vae")))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(os.path.join(TINY, "text_encoder")))
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder}


def no_split(name, model):
    if name == "text_encoder":
        return sorted(model._no_split_modules)  # transformers declares a set
    return list(model._no_split_modules)


def tree(module, no_split_classes=None):
    node = {
        "class": type(module).__name__,
        "parameters": [[n, p.numel(), DTYPES[p.dtype]] for n, p in module.named_parameters(recurse=False)],
        "buffers": [[n, b.numel(), DTYPES[b.dtype]] for n, b in module.named_buffers(recurse=False)],
        "children": [[n, tree(c)] for n, c in module.named_children()],
    }
    if no_split_classes is not None:
        node["no_split"] = no_split_classes
    return node


def key_json(k):
    return k if isinstance(k, str) else str(k)


def budget_json(max_memory):
    # A user's max_memory as the Swift API takes it: string keys, int or string values.
    return None if max_memory is None else {key_json(k): v for k, v in max_memory.items()}


def memory_json(max_memory):
    # get_max_memory / get_balanced_memory results: [[key, bytes]] in order; a float
    # (0.9 x free memory on a single accelerator) is written with its exact value and floor.
    out = []
    for k, v in max_memory.items():
        entry = [key_json(k), int(v)]
        if isinstance(v, float):
            entry.append(repr(v))
        out.append(entry)
    return out


def map_json(device_map):
    return [[k, v if isinstance(v, (int, str)) else str(v)] for k, v in device_map.items()]


def write(name, value):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


MB = 10**6
MODEL_CASES = [
    # (model, strategy, max_memory, torch_dtype, inventory)
    ("unet", "auto", {0: "1.5MB", 1: "1.5MB", "cpu": "2MB"}, None, None),
    ("unet", "balanced", {0: "1.5MB", 1: "1.5MB", "cpu": "2MB"}, None, None),
    ("unet", "balanced", {0: 3 * MB, 1: 3 * MB, 2: 3 * MB}, None, None),
    ("unet", "balanced_low_0", {0: "2MB", 1: "2MB", 2: "2MB", "cpu": "10MB"}, None, None),
    ("unet", "balanced_low_0", {0: "3MB", 1: "1MB", 2: "1MB", "cpu": "1MB"}, None, None),
    ("unet", "sequential", {0: "1MB", 1: "1MB", "cpu": "1MB"}, None, None),
    ("unet", "sequential", {0: "1MB", "cpu": "600KB"}, "f16", None),
    ("unet", "sequential", {0: "1MiB", "cpu": "2MiB", "disk": "1KB"}, None, None),
    ("unet", "sequential", {0: "1MB"}, None, None),
    ("unet", "sequential", {"cpu": "1MB"}, None, None),
    ("unet", "auto", {1: "2MB", 0: 1_000_000, "cpu": "8Mb"}, "bf16", None),
    ("unet", "auto", None, None, {0: 3 * MB, "cpu": 100 * MB}),
    ("unet", "auto", None, "f16", {0: 1 * MB, 1: 1 * MB, "cpu": 100 * MB}),
    ("unet", "sequential", None, None, {0: 2 * MB, 1: 1 * MB, "cpu": 1 * MB}),
    ("unet", "auto", {0: "10MB", "cpu": "10MB"}, None, None),
    # The reserve at its boundaries: conv_in (4,736 bytes) and the largest layer, up_blocks.0
    # (1,785,344 bytes); the whole model (3,941,776 bytes) on one accelerator.
    ("unet", "sequential", {0: 1_785_344 + 4_736 - 1}, None, None),
    ("unet", "sequential", {0: 1_785_344 + 4_736}, None, None),
    ("unet", "sequential", {"cpu": 1_785_344 + 4_736}, None, None),
    ("unet", "sequential", {0: 0, 1: 4_736}, None, None),
    ("unet", "sequential", {0: 3_941_776}, None, None),
    ("unet", "sequential", {0: 3_941_775}, None, None),
    # Budgets large enough for get_balanced_memory's per-device cap to bind.
    ("unet", "balanced", {0: "10MB", 1: "10MB", 2: "10MB"}, None, None),
    ("unet", "balanced_low_0", {0: "10MB", 1: "10MB", 2: "10MB"}, None, None),
    ("unet", "auto", None, "f16", {0: 10 * MB, 1: 10 * MB, "cpu": 100 * MB}),
    ("vae", "balanced", {0: "1MB", 1: "1MB", 2: "1MB"}, None, None),
    ("text_encoder", "balanced", {0: "1MB", 1: "1MB"}, None, None),
    ("vae", "auto", {0: "400KB", 1: "400KB", "cpu": "200KB"}, None, None),
    ("vae", "sequential", {0: "300KB", 1: "300KB", "cpu": "200KB"}, None, None),
    ("vae", "balanced_low_0", {0: "1MB", 1: "1MB", "cpu": "1MB"}, "f16", None),
    ("text_encoder", "auto", {0: "100KB", 1: "100KB", "cpu": "50KB"}, None, None),
    ("text_encoder", "sequential", {0: "60KB", "cpu": "100KB"}, None, None),
    ("text_encoder", "sequential", {0: "60KB", "cpu": "100KB"}, "f16", None),
]

PIPELINE_CASES = [
    # (max_memory, dtype, inventory)
    ({0: 4 * MB, 1: 5 * MB}, "f32", None),
    ({0: "5MB", 1: "4MB"}, "f32", None),
    ({0: "1MB", 1: "2MB"}, "f32", None),
    ({0: "500KB", 1: "300KB"}, "f32", None),
    ({0: "2MB", 1: "2MB", "cpu": "100MB"}, "f16", None),
    ({0: "3MB", 1: "1MB", "disk": "10MB"}, "f32", None),
    ({"cpu": "100MB"}, "f32", None),
    (None, "f32", {0: 2 * MB, 1: 3 * MB, "cpu": 50 * MB}),
]

SIZE_STRINGS = ["1GB", "1GiB", "1.5GB", "1.5GiB", "5Gb", "5gb", "5gB", "5MB", "5Mb", "2KiB", "2kib", "3KB", "3kb",
                "0.5MiB", "1e3KB", "1.5 GB", " 2GB", "-1GB", "-0.0GB", "GB", "abc", "1000", "10B", "1TB", 1000, 0,
                -5, "12.7MB", "1.999999KB", "0.3Kb"]

MAX_MEMORY_INPUTS = [
    {"cpu": "1GB", 1: "2GiB", 0: 500, "disk": "5GB"},
    {"disk": 10, "cpu": 20},
    {2: "1MB", 0: "1MB", 1: "1MB"},
    {0: "1GB", "mps_typo": "1GB"},
    {0: "1GB", "cuda:0": "1GB"},
    {0: "1000"},
]


def main():
    global INVENTORY
    models = build_models()
    for name, model in models.items():
        write(f"trees/{name}.json", tree(model, no_split(name, model)))

    cases = []
    for name, strategy, max_memory, dtype_name, inventory in MODEL_CASES:
        model = models[name]
        INVENTORY = inventory
        dtype = TORCH_DTYPES[dtype_name] if dtype_name else None
        user = None if max_memory is None else dict(max_memory)
        classes = no_split(name, model)
        if strategy != "sequential":
            budgets = acc_modeling.get_balanced_memory(
                model, max_memory=None if user is None else dict(user), no_split_module_classes=classes,
                dtype=dtype, low_zero=strategy == "balanced_low_0")
        else:
            budgets = acc_modeling.get_max_memory(None if user is None else dict(user))
        if name == "text_encoder":
            # transformers models are placed by transformers; here Accelerate's functions directly.
            device_map = acc_modeling.infer_auto_device_map(model, max_memory=dict(budgets),
                                                            no_split_module_classes=classes, dtype=dtype)
        else:
            device_map = model_loading_utils._determine_device_map(
                model, strategy, None if user is None else dict(user), dtype)
            assert device_map == acc_modeling.infer_auto_device_map(model, max_memory=dict(budgets),
                                                                    no_split_module_classes=classes, dtype=dtype)
        raw = acc_modeling.infer_auto_device_map(model, max_memory=dict(budgets), no_split_module_classes=classes,
                                                 dtype=dtype, clean_result=False)
        sizes = acc_modeling.compute_module_sizes(model, dtype=dtype)
        cases.append({
            "model": name, "strategy": strategy, "max_memory": budget_json(max_memory), "dtype": dtype_name,
            "inventory": None if inventory is None else [[key_json(k), v] for k, v in inventory.items()],
            "budgets": memory_json(budgets), "device_map": map_json(device_map), "raw_device_map": map_json(raw),
            "total_size": sizes[""],
        })
    write("model-cases.json", cases)

    # Sizes of every module and tensor in f32 and f16, for the size table itself.
    sizes = {}
    for name, model in models.items():
        for dtype_name in ["f32", "f16"]:
            table = acc_modeling.compute_module_sizes(model, dtype=TORCH_DTYPES[dtype_name])
            sizes[f"{name}.{dtype_name}"] = [[k, v] for k, v in table.items()]
    write("module-sizes.json", sizes)

    with open(os.path.join(TINY, "model_index.json")) as f:
        index = json.load(f)
    init_dict = {k: tuple(v) for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0]}
    pipeline_cases = []
    for max_memory, dtype_name, inventory in PIPELINE_CASES:
        INVENTORY = inventory
        component_sizes = {name: acc_modeling.compute_module_sizes(build_models()[name].to(TORCH_DTYPES[dtype_name]),
                                                                   dtype=TORCH_DTYPES[dtype_name])[""]
                           for name in ["unet", "vae", "text_encoder"]}
        final = pipeline_loading_utils._get_final_device_map(
            device_map="balanced", pipeline_class=StableDiffusionPipeline, passed_class_obj={}, init_dict=init_dict,
            library="diffusers", max_memory=None if max_memory is None else dict(max_memory),
            dtype=TORCH_DTYPES[dtype_name], cached_folder=TINY)
        pipeline_cases.append({
            "max_memory": budget_json(max_memory), "dtype": dtype_name,
            "inventory": None if inventory is None else [[key_json(k), v] for k, v in inventory.items()],
            "component_sizes": [[k, v] for k, v in component_sizes.items()],
            "device_map": None if final is None else map_json(final),
        })
    write("pipeline-cases.json", pipeline_cases)

    size_cases = []
    for text in SIZE_STRINGS:
        try:
            size_cases.append({"input": text, "bytes": acc_modeling.convert_file_size_to_int(text)})
        except ValueError as error:
            size_cases.append({"input": text, "error": str(error)})
    memory_cases = []
    for max_memory in MAX_MEMORY_INPUTS:
        try:
            result = _original_get_max_memory(dict(max_memory))
            memory_cases.append({"input": budget_json(max_memory), "result": memory_json(result)})
        except ValueError as error:
            memory_cases.append({"input": budget_json(max_memory), "error": str(error)})
    write("memory-cases.json", {"sizes": size_cases, "max_memory": memory_cases,
                                "versions": pinned.versions("accelerate", "transformers")})


if __name__ == "__main__":
    main()
