#!/usr/bin/env python3
# Verifies a sharded copy of a diffusers model folder (e.g. written by the swift-diffusers
# sharding tool) against the original folder, with PyTorch / safetensors / diffusers /
# huggingface_hub as the reference.
#
# Pinned versions: see pinned.py. Threads: 2, or VERIFY_THREADS from the environment.
#
# Usage:
#   python tools/reference/verify_sharded_roundtrip.py SRC_DIR SHARDED_DIR OUT_JSON \
#       --max-shard-size 200KB [--variant fp16] [--src-variant fp16] [--order model|file|sorted]
# Tests/Fixtures/checkpoints/swift-sharded-verification.json is the report of:
#   python tools/reference/verify_sharded_roundtrip.py Tests/Fixtures/checkpoints/unet-single \
#       Tests/Fixtures/checkpoints/swift-sharded Tests/Fixtures/checkpoints/swift-sharded-verification.json \
#       --max-shard-size 200KB --order file
#
# Checks (all must pass; the report lists each with ok/detail):
#  (a) files:      the sharded folder has either one <weights_name> and no index, or shards
#                  named <stem>[.<variant>]-0000k-of-0000N.safetensors plus
#                  <weights_name>.index[.<variant>].json; every shard opens with
#                  safetensors.safe_open; the index weight_map matches the shards' contents
#                  exactly; no tensor is in two shards; no stray weight files; every tensor
#                  equals the original bit for bit (dtype, shape, bytes); the key sets match;
#                  index metadata.total_size equals the summed tensor bytes; (informational:
#                  each shard's __metadata__ has {"format": "pt"} as diffusers writes it).
#  (b) diffusers:  <ModelClass>.from_pretrained(SHARDED_DIR) (class from config.json
#                  "_class_name"; UNet2DConditionModel by default) loads with no missing /
#                  unexpected / mismatched keys, and its state_dict equals the original bit for
#                  bit. If SHARDED_DIR has no config.json, SRC_DIR's config.json is used through
#                  a temporary folder of symlinks (noted in the report).
#  (c) sharding:   huggingface_hub.split_torch_state_dict_into_shards(state_dict,
#                  max_shard_size=--max-shard-size, filename_pattern=<stem>[.<variant>]{suffix}.safetensors)
#                  gives the same filename -> tensor-set assignment and total_size. The result
#                  depends on the ORDER of state_dict: --order model (default) uses the model's
#                  state_dict() order, i.e. what diffusers' save_pretrained does; --order file
#                  uses the order of the tensors in SRC_DIR's files (file by file, by data
#                  offset); --order sorted uses sorted tensor names. The report also says, for
#                  information, which of the three orders would have matched.
#
# Exit status: 0 when every required check passed, 1 otherwise (2 on bad usage).

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import traceback

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import bits, read_header, tensor_equal
import torch
from safetensors import safe_open
import diffusers
from huggingface_hub import split_torch_state_dict_into_shards

pinned.setup(threads=2, threads_env="VERIFY_THREADS")

VERSIONS = pinned.versions("huggingface_hub", python_micro=True)


def add_variant(name, variant):
    # same as diffusers.utils._add_variant
    if not variant:
        return name
    parts = name.split(".")
    parts = parts[:-1] + [variant] + parts[-1:]
    return ".".join(parts)


def names_for(weights_name, variant):
    single = add_variant(weights_name, variant)
    pattern = single.replace(".safetensors", "{suffix}.safetensors")
    index = add_variant(weights_name + ".index.json", variant)
    return single, pattern, index


def load_folder(folder, weights_name, variant):
    """Returns (tensors dict in file order, list of files, index or None)."""
    single, pattern, index_name = names_for(weights_name, variant)
    index_path = os.path.join(folder, index_name)
    index = None
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        files = sorted(set(index["weight_map"].values()))
    elif os.path.exists(os.path.join(folder, single)):
        files = [single]
    else:
        raise FileNotFoundError(f"neither {index_name} nor {single} in {folder}")
    tensors = {}
    for fn in files:
        _, hdr = read_header(os.path.join(folder, fn))
        hdr.pop("__metadata__", None)
        order = sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0])
        with safe_open(os.path.join(folder, fn), "pt") as f:
            for k in order:
                if k in tensors:
                    raise ValueError(f"{k} appears in two files of {folder}")
                tensors[k] = f.get_tensor(k).clone()
    return tensors, files, index


class Report:
    def __init__(self):
        self.checks = []

    def check(self, name, ok, detail=None, required=True):
        self.checks.append({"name": name, "ok": bool(ok), "required": required, "detail": detail})
        flag = "PASS" if ok else ("FAIL" if required else "warn")
        print(f"[{flag}] {name}" + (f": {detail}" if detail and not ok else ""))
        return ok

    @property
    def ok(self):
        return all(c["ok"] for c in self.checks if c["required"])


def check_files(rep, sharded_dir, weights_name, variant, original):
    single, pattern, index_name = names_for(weights_name, variant)
    present = sorted(f for f in os.listdir(sharded_dir) if f.endswith(".safetensors"))
    index_path = os.path.join(sharded_dir, index_name)
    shard_re = re.compile(re.escape(single[: -len(".safetensors")]) + r"-(\d{5})-of-(\d{5})\.safetensors")
    found = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        rep.check("a.index_parses", "weight_map" in index and "metadata" in index,
                  f"keys: {sorted(index)}")
        listed = sorted(set(index["weight_map"].values()))
        bad_names = [f for f in listed if not shard_re.fullmatch(f)]
        rep.check("a.shard_names", not bad_names, f"not matching {shard_re.pattern}: {bad_names}")
        ns = {int(shard_re.fullmatch(f).group(2)) for f in listed if shard_re.fullmatch(f)}
        ks = sorted(int(shard_re.fullmatch(f).group(1)) for f in listed if shard_re.fullmatch(f))
        rep.check("a.shard_numbering", len(ns) == 1 and ks == list(range(1, len(listed) + 1))
                  and ns == {len(listed)}, f"indices {ks}, totals {sorted(ns)}")
        stray = sorted(set(present) - set(listed))
        rep.check("a.no_stray_weight_files", not stray, f"unreferenced: {stray}")
        files = listed
    else:
        index = None
        rep.check("a.single_file_present", present == [single],
                  f"expected exactly [{single}] (no {index_name}), found {present}")
        files = [f for f in present if f == single]
    total_bytes = 0
    fmt_ok = []
    for fn in files:
        path = os.path.join(sharded_dir, fn)
        try:
            _, hdr = read_header(path)
            meta = hdr.pop("__metadata__", None) or {}
            fmt_ok.append(meta.get("format") == "pt")
            with safe_open(path, "pt") as f:
                keys = list(f.keys())
                for k in keys:
                    if k in found:
                        rep.check(f"a.unique_tensor[{k}]", False, f"in {found[k][0]} and {fn}")
                    found[k] = (fn, f.get_tensor(k).clone())
            data = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in hdr.values())
            total_bytes += data
            ok = True
            detail = f"{len(keys)} tensors, {data} data bytes"
        except Exception as e:  # noqa: BLE001
            ok, detail = False, f"{type(e).__name__}: {e}"
        rep.check(f"a.safe_open[{fn}]", ok, detail)
    rep.check("a.shard_metadata_format_pt", all(fmt_ok), "a shard lacks __metadata__ {'format': 'pt'}",
              required=False)
    if index is not None:
        wm_actual = {k: v[0] for k, v in found.items()}
        diff = sorted(k for k in set(wm_actual) | set(index["weight_map"])
                      if wm_actual.get(k) != index["weight_map"].get(k))
        rep.check("a.index_weight_map_matches_files", not diff, f"{len(diff)} keys differ, e.g. {diff[:5]}")
        ts = index.get("metadata", {}).get("total_size")
        rep.check("a.index_total_size", ts == total_bytes, f"index says {ts}, tensors sum to {total_bytes}")
    missing = sorted(set(original) - set(found))
    extra = sorted(set(found) - set(original))
    rep.check("a.same_tensor_names", not missing and not extra,
              f"missing {len(missing)} {missing[:5]}, unexpected {len(extra)} {extra[:5]}")
    differ = [k for k in original if k in found and not tensor_equal(original[k], found[k][1])]
    def why(k):
        a, b = found[k][1], original[k]
        if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
            return f"{k}: {a.dtype}{tuple(a.shape)} vs original {b.dtype}{tuple(b.shape)}"
        return f"{k}: {int((bits(a) != bits(b)).sum())} of {bits(a).numel()} bytes differ"
    rep.check("a.tensors_bit_identical", not differ,
              f"{len(differ)} differ, e.g. " + "; ".join(why(k) for k in differ[:3]))
    return {k: v[0] for k, v in found.items()}, index, total_bytes


def check_diffusers(rep, src_dir, sharded_dir, variant, original):
    cfg_path = os.path.join(sharded_dir, "config.json")
    tmp = None
    load_dir = sharded_dir
    note = None
    if not os.path.exists(cfg_path):
        tmp = tempfile.mkdtemp(prefix="verify_sharded_")
        for f in os.listdir(sharded_dir):
            os.symlink(os.path.abspath(os.path.join(sharded_dir, f)), os.path.join(tmp, f))
        os.symlink(os.path.abspath(os.path.join(src_dir, "config.json")), os.path.join(tmp, "config.json"))
        load_dir = tmp
        note = "SHARDED_DIR has no config.json; used SRC_DIR/config.json"
    rep.check("b.config_json_present", tmp is None, note, required=False)
    try:
        with open(os.path.join(load_dir, "config.json")) as f:
            cls_name = json.load(f).get("_class_name", "UNet2DConditionModel")
        cls = getattr(diffusers, cls_name)
        fdt = sorted({str(t.dtype) for t in original.values() if t.is_floating_point()})
        torch_dtype = getattr(torch, fdt[0].replace("torch.", "")) if len(fdt) == 1 else None
        model, info = cls.from_pretrained(load_dir, variant=variant, torch_dtype=torch_dtype,
                                          output_loading_info=True, local_files_only=True)
        problems = {k: v for k, v in info.items() if v}
        rep.check("b.from_pretrained_no_missing_unexpected", not problems,
                  f"{cls_name}: {json.dumps({k: [str(x) for x in v][:5] for k, v in problems.items()})}")
        sd = model.state_dict()
        differ = [k for k in original if k not in sd or not tensor_equal(original[k], sd[k].detach().cpu())]
        extra = [k for k in sd if k not in original]
        rep.check("b.state_dict_bit_identical", not differ and not extra,
                  f"{len(differ)} differ/missing e.g. {differ[:5]}; {len(extra)} extra e.g. {extra[:5]}")
        return cls_name
    except Exception as e:  # noqa: BLE001
        rep.check("b.from_pretrained", False, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
        return None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def model_key_order(src_dir, cls_name):
    from accelerate import init_empty_weights
    cls = getattr(diffusers, cls_name or "UNet2DConditionModel")
    config = cls.load_config(src_dir)
    with init_empty_weights():
        m = cls.from_config(config)
    return list(m.state_dict().keys())


def check_sharding(rep, src_dir, weights_name, variant, max_shard_size, order, original, actual_map,
                   index, total_bytes, cls_name):
    single, pattern, index_name = names_for(weights_name, variant)
    orders = {"file": list(original.keys()), "sorted": sorted(original.keys())}
    try:
        mk = model_key_order(src_dir, cls_name)
        if set(mk) == set(original):
            orders["model"] = mk
        else:
            orders["model"] = None
            rep.check("c.model_order_available", False,
                      f"model state_dict keys != file keys ({len(set(mk) ^ set(original))} differ)",
                      required=(order == "model"))
    except Exception as e:  # noqa: BLE001
        orders["model"] = None
        rep.check("c.model_order_available", False, f"{type(e).__name__}: {e}", required=(order == "model"))

    actual = {}
    for k, fn in actual_map.items():
        actual.setdefault(fn, set()).add(k)
    results = {}
    for name, keys in orders.items():
        if keys is None:
            continue
        # each tensor gets its own storage, as in a model's state_dict (storage size = tensor bytes)
        sd = {k: original[k].clone() for k in keys}
        split = split_torch_state_dict_into_shards(sd, max_shard_size=max_shard_size, filename_pattern=pattern)
        expected = {fn: set(ts) for fn, ts in split.filename_to_tensors.items()}
        same = expected == actual
        if same and split.is_sharded:
            same = index is not None and index.get("metadata", {}).get("total_size") == split.metadata["total_size"]
        if same and not split.is_sharded:
            same = index is None
        results[name] = {"matches": same, "expected_files": len(expected), "is_sharded": split.is_sharded,
                         "total_size": split.metadata["total_size"]}
        if name == order:
            detail = None
            if not same:
                lines = []
                for fn in sorted(set(expected) | set(actual)):
                    e, a = expected.get(fn, set()), actual.get(fn, set())
                    if e != a:
                        lines.append(f"{fn}: expected {len(e)} tensors, got {len(a)}; "
                                     f"missing {sorted(e - a)[:3]} extra {sorted(a - e)[:3]}")
                if split.is_sharded != (index is not None):
                    lines.append(f"hub would {'' if split.is_sharded else 'not '}shard; "
                                 f"folder has {'an' if index is not None else 'no'} index")
                detail = "; ".join(lines[:6])
            rep.check(f"c.hub_split_matches[order={order}]", same, detail)
    if order not in results:
        rep.check(f"c.hub_split_matches[order={order}]", False, "order not available")
    rep.checks.append({"name": "c.orders_that_match (info)", "ok": True, "required": False,
                       "detail": {k: v["matches"] for k, v in results.items()}})
    print("      orders that would match:", {k: v["matches"] for k, v in results.items()})
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("src_dir")
    ap.add_argument("sharded_dir")
    ap.add_argument("out_json")
    ap.add_argument("--max-shard-size", required=True,
                    help='as huggingface_hub takes it: an int (bytes) or "200KB", "5GB" (KB = 1000 bytes)')
    ap.add_argument("--variant", default=None, help="variant of SHARDED_DIR's files (e.g. fp16)")
    ap.add_argument("--src-variant", default=None, help="variant of SRC_DIR's files")
    ap.add_argument("--weights-name", default="diffusion_pytorch_model.safetensors")
    ap.add_argument("--order", choices=["model", "file", "sorted"], default="model",
                    help="state_dict order fed to split_torch_state_dict_into_shards (default: model)")
    args = ap.parse_args()
    mss = int(args.max_shard_size) if args.max_shard_size.isdigit() else args.max_shard_size

    rep = Report()
    info = {}
    try:
        original, src_files, _ = load_folder(args.src_dir, args.weights_name, args.src_variant)
        info["src_files"] = src_files
        info["tensors"] = len(original)
        rep.check("src.loaded", True, f"{len(original)} tensors from {src_files}")
        actual_map, index, total_bytes = check_files(rep, args.sharded_dir, args.weights_name, args.variant, original)
        info["sharded_files"] = sorted(set(actual_map.values()))
        cls_name = check_diffusers(rep, args.src_dir, args.sharded_dir, args.variant, original)
        info["orders"] = check_sharding(rep, args.src_dir, args.weights_name, args.variant, mss, args.order,
                                        original, actual_map, index, total_bytes, cls_name)
    except Exception as e:  # noqa: BLE001
        rep.check("exception", False, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
    out = {
        "ok": rep.ok,
        "src_dir": args.src_dir,
        "sharded_dir": args.sharded_dir,
        "max_shard_size": args.max_shard_size,
        "variant": args.variant,
        "order": args.order,
        "info": info,
        "checks": rep.checks,
        "versions": VERSIONS,
    }
    d = os.path.dirname(os.path.abspath(args.out_json))
    os.makedirs(d, exist_ok=True)
    with open(args.out_json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("OK" if rep.ok else "FAILED", "->", args.out_json)
    sys.exit(0 if rep.ok else 1)


if __name__ == "__main__":
    main()
