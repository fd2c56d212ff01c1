#!/usr/bin/env python3
# Writes Tests/Fixtures/device-maps/flux-transformer-cases.json: the device map Diffusers 0.42.1
# computes for FluxTransformer2DModel.from_pretrained(..., device_map=STRATEGY, max_memory=...,
# dtype=torch.bfloat16) -- model.hf_device_map -- for the REAL FLUX.1-dev transformer config
# (11.9B parameters, 23.80 GB in bf16) under budgets that split it across accelerators, the CPU
# and the disk, and for a reduced-depth config (num_layers 4, num_single_layers 8) under scaled
# budgets. Same case layout as model-cases.json (make_device_map_fixtures.py), plus the inputs
# Accelerate worked from (module sizes, the largest layer, the no-split classes).
#
# The map is computed by Diffusers' own function on the model as from_pretrained builds it:
# default dtype bfloat16, no_init_weights + accelerate.init_empty_weights (meta parameters),
# FluxTransformer2DModel.from_config, then model_loading_utils._determine_device_map(model,
# strategy, max_memory, torch.bfloat16, keep_in_fp32_modules=[], hf_quantizer=None), which takes
# the no-split classes from model._get_no_split_modules ({FluxTransformerBlock,
# FluxSingleTransformerBlock}), runs Accelerate's get_balanced_memory (every strategy but
# "sequential", which runs get_max_memory) and infer_auto_device_map. Each result is also checked
# against Accelerate's functions called directly, and, with the folders below, against
# from_pretrained itself:
#   --full DIR    a folder written by make_flux_random.py (full depth): from_pretrained(DIR/transformer)
#                 runs up to the device map for every full-config case (Diffusers'
#                 _load_pretrained_model is replaced by a stand-in that records the map it is
#                 given and stops, so no weights are read; accelerator budgets need no GPU)
#   --small DIR   a folder written by make_flux_random.py --dual 4 --single 8 (the reduced
#                 config): the same for every reduced case, and the CPU/disk cases are really
#                 loaded (weights read, disk part offloaded into a temporary folder) and the
#                 loaded model's hf_device_map compared
# One case is an error: "auto" (get_balanced_memory) with a "disk" key in max_memory raises in
# Accelerate 1.15.0 (it calls torch.device("disk")); the case records the message, and
# from_pretrained is checked to raise the same. Without both folders nothing is written (pass
# --no-verify to write anyway).
#
# Pinned versions: pinned.py (accelerate 1.15.0). Needs no GPU: an accelerator budget is a user
# max_memory entry, which Accelerate takes as given (it only warns that device 0 is missing).
# Run from anywhere:
#   /path/to/venv/bin/python tools/reference/make_flux_device_map_fixtures.py \
#       --full /var/tmp/flux-dev-random --small /var/tmp/flux-small
# With both folders: 76 s on the 2-core development machine, peak RSS 9.6 GiB as getrusage counts
# it, nearly all of it file pages (the reduced checkpoint that safetensors maps during the two
# real loads, and Accelerate's offload memmaps); anonymous memory peaks at about 3 GiB. With
# --no-verify: 10 s, 0.9 GiB.
import argparse
import os
import resource
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_device_map_fixtures as dm  # noqa: E402  (pins, JSON helpers, the get_max_memory stand-in)
import accelerate  # noqa: E402
import accelerate.utils.modeling as acc_modeling  # noqa: E402
import torch  # noqa: E402
from diffusers import FluxTransformer2DModel  # noqa: E402
from diffusers.models import model_loading_utils  # noqa: E402
from diffusers.models.modeling_utils import no_init_weights  # noqa: E402

from make_flux_random import FLUX_TRANSFORMER  # noqa: E402

DTYPE = torch.bfloat16
FULL = {"num_layers": 19, "num_single_layers": 38, "guidance_embeds": True}
SMALL = {"num_layers": 4, "num_single_layers": 8, "guidance_embeds": True}

# (config, strategy, max_memory, what --full/--small verify: "map" = from_pretrained's map,
#  "load" = from_pretrained really loads the weights and model.hf_device_map is compared)
CASES = [
    (FULL, "auto", {0: "8GiB", "cpu": "30GiB"}, "map"),
    (FULL, "auto", {0: "5GiB", 1: "6GiB", "cpu": "40GiB"}, "map"),
    (FULL, "auto", {0: "2GiB", "cpu": "10GiB"}, "map"),                    # spills to disk
    (FULL, "auto", {0: "22GiB", "cpu": "4GiB"}, "map"),                    # all but the tail on 0
    (FULL, "sequential", {0: "24GB", "cpu": "64GB"}, "map"),               # a 24 GB card
    (FULL, "sequential", {0: "10GiB", 1: "10GiB", "cpu": "3GiB"}, "map"),  # 0, 1, cpu and disk
    (FULL, "sequential", {0: "4GiB", "cpu": "8GiB", "disk": "1GiB"}, "map"),  # a disk budget is no limit
    (FULL, "auto", {0: "4GiB", "cpu": "8GiB", "disk": "1GiB"}, "error"),      # ... and "auto" rejects it
    (FULL, "balanced", {0: "20GiB", 1: "20GiB"}, "map"),                   # get_balanced_memory caps 0
    (FULL, "balanced", {0: "16GB", 1: "16GB", 2: "16GB"}, "map"),          # ... and 1
    (FULL, "balanced_low_0", {0: "20GiB", 1: "20GiB", "cpu": "40GiB"}, "map"),
    (FULL, "sequential", {0: "12GiB", 1: "12GiB"}, "map"),
    (FULL, "auto", {"cpu": "64GiB"}, "map"),                                # fits: {"": "cpu"}
    (SMALL, "auto", {0: "2GiB", "cpu": "2GiB"}, "map"),
    (SMALL, "balanced", {0: "3GiB", 1: "3GiB"}, "map"),
    (SMALL, "sequential", {"cpu": "3GiB"}, "load"),                          # cpu, then disk
    (SMALL, "auto", {"cpu": "2500MiB"}, "load"),
]


def build(config):
    """The model as from_pretrained builds it: default dtype bf16, meta parameters."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPE)
    try:
        with no_init_weights(), accelerate.init_empty_weights():
            return FluxTransformer2DModel.from_config(dict(FLUX_TRANSFORMER, **config))
    finally:
        torch.set_default_dtype(previous)


def config_label(config):
    return "FLUX.1-dev" if config == FULL else (
        f"FLUX.1-dev, num_layers {config['num_layers']}, num_single_layers {config['num_single_layers']}")


class Captured(Exception):
    def __init__(self, device_map):
        self.device_map = device_map


def from_pretrained_map(folder, strategy, max_memory):
    """The device map from_pretrained hands to _load_pretrained_model (which is not run)."""
    assert "_load_pretrained_model" not in FluxTransformer2DModel.__dict__  # ModelMixin's

    def stand_in(cls, model, *args, device_map=None, **kwargs):
        raise Captured(device_map)

    FluxTransformer2DModel._load_pretrained_model = classmethod(stand_in)
    try:
        FluxTransformer2DModel.from_pretrained(os.path.join(folder, "transformer"), device_map=strategy,
                                               max_memory=dict(max_memory), dtype=DTYPE)
    except Captured as captured:
        return captured.device_map
    finally:
        del FluxTransformer2DModel._load_pretrained_model
    raise AssertionError("from_pretrained did not reach _load_pretrained_model")


def from_pretrained_loaded(folder, strategy, max_memory):
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(folder))) as offload:
        model = FluxTransformer2DModel.from_pretrained(os.path.join(folder, "transformer"), device_map=strategy,
                                                       max_memory=dict(max_memory), dtype=DTYPE, offload_folder=offload)
        device_map = dict(model.hf_device_map)
        assert all(p.dtype == DTYPE for p in model.parameters())
        del model
    return device_map


def module_sizes(model, sizes):
    """[key, bytes] for the root, its children and every block, in the model's order."""
    keys = [""]
    for name, child in model.named_children():
        keys.append(name)
        if name in ("transformer_blocks", "single_transformer_blocks"):
            keys += [f"{name}.{n}" for n, _ in child.named_children()]
    return [[k, sizes[k]] for k in keys]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", help="a full-depth folder from make_flux_random.py")
    ap.add_argument("--small", help="a folder from make_flux_random.py --dual 4 --single 8")
    ap.add_argument("--no-verify", action="store_true", help="write without checking against from_pretrained")
    args = ap.parse_args()
    verify = not args.no_verify
    if verify and not (args.full and args.small):
        sys.exit("pass --full DIR and --small DIR (or --no-verify)")
    models = {}
    cases = []
    verified = {"map": 0, "load": 0, "error": 0}
    for config, strategy, max_memory, check in CASES:
        label = config_label(config)
        if label not in models:
            models[label] = build(config)
        model = models[label]
        folder = args.full if config == FULL else args.small
        classes = model._get_no_split_modules(strategy)
        assert sorted(classes) == ["FluxSingleTransformerBlock", "FluxTransformerBlock"], classes
        sizes = acc_modeling.compute_module_sizes(model, dtype=DTYPE)
        max_layer = acc_modeling.get_max_layer_size(list(model.named_children()), sizes, classes)
        case = {"model": "transformer", "config": label, "strategy": strategy, "max_memory": dm.budget_json(max_memory),
                "dtype": "bf16", "inventory": None}
        if check == "error":
            try:
                model_loading_utils._determine_device_map(model, strategy, dict(max_memory), DTYPE, [], None)
            except RuntimeError as error:
                message = str(error)
            else:
                raise AssertionError(f"{strategy} {max_memory}: no error")
            if verify:
                try:
                    from_pretrained_map(folder, strategy, max_memory)
                except RuntimeError as error:
                    assert str(error) == message, (str(error), message)
                else:
                    raise AssertionError(f"from_pretrained {strategy} {max_memory}: no error")
                verified["error"] += 1
            case.update({"error": message, "device_map": None, "total_size": sizes[""]})
            print(f"{label} {strategy} {max_memory}: error {message!r}", flush=True)
        else:
            device_map = model_loading_utils._determine_device_map(model, strategy, dict(max_memory), DTYPE, [], None)
            if strategy != "sequential":
                budgets = acc_modeling.get_balanced_memory(model, max_memory=dict(max_memory),
                                                           no_split_module_classes=classes, dtype=DTYPE,
                                                           special_dtypes={}, low_zero=strategy == "balanced_low_0")
            else:
                budgets = acc_modeling.get_max_memory(dict(max_memory))
            assert device_map == acc_modeling.infer_auto_device_map(model, max_memory=dict(budgets),
                                                                    no_split_module_classes=classes, dtype=DTYPE)
            raw = acc_modeling.infer_auto_device_map(model, max_memory=dict(budgets), no_split_module_classes=classes,
                                                     dtype=DTYPE, clean_result=False)
            if verify:
                got = from_pretrained_map(folder, strategy, max_memory)
                assert got == device_map, (label, strategy, max_memory, got, device_map)
                verified["map"] += 1
                if check == "load":
                    loaded = from_pretrained_loaded(folder, strategy, max_memory)
                    assert loaded == dict(device_map), (label, strategy, max_memory, loaded, device_map)
                    verified["load"] += 1
            case.update({"budgets": dm.memory_json(budgets), "device_map": dm.map_json(device_map),
                         "raw_device_map": dm.map_json(raw), "total_size": sizes[""]})
            print(f"{label} {strategy} {max_memory}: {dm.map_json(device_map)}", flush=True)
        case.update({"no_split": sorted(classes), "max_layer": [max_layer[0], max_layer[1]],
                     "module_sizes": module_sizes(model, sizes), "verified": check})
        cases.append(case)
    dm.write("flux-transformer-cases.json", cases)
    print(f"{len(cases)} cases; checked against from_pretrained: {verified['map']} maps, {verified['load']} real loads, "
          f"{verified['error']} errors; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
