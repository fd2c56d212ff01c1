#!/usr/bin/env python3
# Generates the checkpoint-loading fixtures for swift-diffusers with diffusers itself.
#
# Pinned versions: see pinned.py (the fixtures in Tests/Fixtures/checkpoints were produced
# with those). Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_checkpoint_fixtures.py [--out Tests/Fixtures/checkpoints]
#
# Output (Tests/Fixtures/checkpoints/):
#   unet-single/         save_pretrained(max_shard_size="10GB")   -> one diffusion_pytorch_model.safetensors
#   unet-sharded/        save_pretrained(max_shard_size="200KB")  -> shards + diffusion_pytorch_model.safetensors.index.json
#   unet-fp16-sharded/   float16 model, save_pretrained(variant="fp16", max_shard_size="300KB")
#   expected.json        per folder: files, per-file tensor count / data bytes / tensor names /
#                        sha256, totals, index metadata.total_size
#   unet-forward.safetensors  (extra) one float32 forward pass of the same model:
#                        sample, timestep, encoder_hidden_states -> out (UNet2DConditionModel(...).sample)
#
# Model: a tiny UNet2DConditionModel shaped like the one in diffusers' own tests
# (down ("DownBlock2D","CrossAttnDownBlock2D"), up ("CrossAttnUpBlock2D","UpBlock2D"),
# sample_size 32, in/out channels 4, cross_attention_dim 32) but REDUCED to fit the size budget:
# block_out_channels (16, 32) instead of (32, 64), norm_num_groups 16 instead of 32,
# layers_per_block 1 instead of 2. The test config has 1.43M parameters (5.7 MB in float32,
# ~14 MB for the three folders); this one has ~253K (about 2.5 MB for all three folders).
# Weights are re-drawn from a seeded generator (every tensor random and non-zero) so that
# the run is deterministic; re-running produces byte-identical files (unet-forward.safetensors
# is written with pinned.save_file_ordered, its two metadata keys in the order given).

import argparse
import copy
import hashlib
import json
import os
import shutil

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import read_header, state_equal
import torch
from safetensors import safe_open
from diffusers import UNet2DConditionModel

pinned.setup(threads=2)

VERSIONS = pinned.versions("huggingface_hub")

UNET_CONFIG = dict(pinned.DIFFUSERS_TEST_UNET, block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=16)

FOLDERS = {
    # name: (dtype, variant, max_shard_size)
    "unet-single": (torch.float32, None, "10GB"),
    "unet-sharded": (torch.float32, None, "200KB"),
    "unet-fp16-sharded": (torch.float16, "fp16", "300KB"),
}


def build_model():
    model = pinned.default_init(UNet2DConditionModel, **UNET_CONFIG)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * fan_in ** -0.5)
            elif name.endswith("weight"):  # norm scales
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:  # biases
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def describe(folder, dtype, variant, max_shard_size):
    files = sorted(os.listdir(folder))
    weight_files = [f for f in files if f.endswith(".safetensors")]
    index_files = [f for f in files if f.endswith(".json") and "index" in f]
    per_file = {}
    total_tensors = 0
    total_params = 0
    total_bytes = 0
    for f in weight_files:
        hdr_len, hdr = read_header(os.path.join(folder, f))
        meta = hdr.pop("__metadata__", None)
        names = sorted(hdr)
        nbytes = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in hdr.values())
        params = 0
        for v in hdr.values():
            n = 1
            for s in v["shape"]:
                n *= s
            params += n
        per_file[f] = {
            "tensor_count": len(names),
            "data_bytes": nbytes,
            "header_bytes": hdr_len,
            "parameter_count": params,
            "dtypes": sorted({v["dtype"] for v in hdr.values()}),
            "metadata": meta,
            "tensors": names,
        }
        total_tensors += len(names)
        total_params += params
        total_bytes += nbytes
    index = None
    if index_files:
        assert len(index_files) == 1, index_files
        with open(os.path.join(folder, index_files[0])) as fh:
            index = json.load(fh)
    return {
        "dtype": str(dtype).replace("torch.", ""),
        "variant": variant,
        "max_shard_size": max_shard_size,
        "files": files,
        "weight_files": weight_files,
        "index_file": index_files[0] if index_files else None,
        "per_file": per_file,
        "total_tensors": total_tensors,
        "total_parameters": total_params,
        "total_data_bytes": total_bytes,
        "index_total_size": index["metadata"]["total_size"] if index else None,
        "sha256": {f: sha256(os.path.join(folder, f)) for f in files},
    }


def verify_reload(folder, dtype, variant, ref_state):
    model, info = UNet2DConditionModel.from_pretrained(
        folder, variant=variant, torch_dtype=dtype, output_loading_info=True, local_files_only=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(k), (folder, k, info.get(k))
    sd = model.state_dict()
    assert state_equal(sd, ref_state), f"{folder}: reloaded state_dict differs"
    # every tensor in the files is also bit-identical to the model's
    files = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), "pt") as fh:
                for k in fh.keys():
                    assert k not in files, k
                    files[k] = fh.get_tensor(k)
    assert state_equal(files, ref_state), f"{folder}: file tensors differ"
    print(f"  reload OK: {folder} ({len(sd)} tensors, dtype {dtype})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/checkpoints")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("versions:", VERSIONS)

    model = build_model()
    n_params = sum(p.numel() for p in model.state_dict().values())
    print(f"model: {n_params} parameters, {len(model.state_dict())} tensors")

    expected = {
        "generator": "tools/reference/make_checkpoint_fixtures.py",
        "versions": VERSIONS,
        "unet_config": {k: list(v) if isinstance(v, tuple) else v for k, v in UNET_CONFIG.items()},
        "size_units": "huggingface_hub parse_size_to_int: KB = 1000 bytes, MB = 10**6, GB = 10**9; "
                      "shard size is counted in tensor data bytes only (headers excluded)",
        "folders": {},
    }
    for name, (dtype, variant, max_shard_size) in FOLDERS.items():
        folder = os.path.join(args.out, name)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        m = copy.deepcopy(model).to(dtype)  # Module.to is in-place: keep `model` float32
        m.save_pretrained(folder, variant=variant, max_shard_size=max_shard_size, safe_serialization=True)
        ref_state = {k: v.detach().clone() for k, v in m.state_dict().items()}
        verify_reload(folder, dtype, variant, ref_state)
        expected["folders"][name] = describe(folder, dtype, variant, max_shard_size)
        d = expected["folders"][name]
        print(f"  {name}: {len(d['weight_files'])} weight file(s), {d['total_tensors']} tensors, "
              f"{d['total_data_bytes']} data bytes, index total_size {d['index_total_size']}")
    assert all(p.dtype == torch.float32 for p in model.parameters())

    # extra: one float32 forward pass for end-to-end checks of a Swift UNet
    g = torch.Generator().manual_seed(99)
    sample = torch.randn(1, 4, 16, 16, generator=g)
    ehs = torch.randn(1, 5, 32, generator=g)
    timestep = torch.tensor([10.0])
    with torch.no_grad():
        out = model(sample, timestep, encoder_hidden_states=ehs).sample
    fwd_path = os.path.join(args.out, "unet-forward.safetensors")
    pinned.save_file_ordered(
        {"sample": sample, "timestep": timestep, "encoder_hidden_states": ehs, "out": out.contiguous()},
        fwd_path, metadata={"model": "unet-single (float32)",
                            "call": "model(sample, timestep, encoder_hidden_states=encoder_hidden_states).sample"})
    print(f"  forward: out {tuple(out.shape)}, |out| max {out.abs().max().item():.4g}")

    pinned.write_json(os.path.join(args.out, "expected.json"), expected, indent=1, sort_keys=True)
    print(f"total size of {args.out}: {pinned.folder_bytes(args.out)} bytes")


if __name__ == "__main__":
    main()
