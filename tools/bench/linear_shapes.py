#!/usr/bin/env python3
# The linears of one UNet call, timed one by one with PyTorch: the shapes a step really runs
# (forward hooks on every nn.Linear of a Diffusers UNet2DConditionModel), each with its count.
# Writes them as JSON for `OpsBenchmark --linear-shapes FILE`, which times the same list here.
#
# Pinned versions: python 3.11, torch==2.15.0, diffusers==0.42.1 (see torch_ops_bench.py).
#
# Usage:  python tools/bench/linear_shapes.py UNET_FOLDER OUT.json [--size 64] [--batch 2]
#         (BENCH_THREADS, default 2, sets torch's threads; progress and the total go to stderr)

import argparse
import collections
import json
import os
import sys
import time

import torch
from diffusers import UNet2DConditionModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("unet")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=64, help="latent side (64 = 512x512 pixels)")
    ap.add_argument("--batch", type=int, default=2, help="2 = one guided step")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    unet = UNet2DConditionModel.from_pretrained(args.unet)
    shapes = collections.Counter()

    def hook(module, inputs, output):
        x = inputs[0]
        shapes[(x.numel() // x.shape[-1], module.in_features, module.out_features, module.bias is not None)] += 1

    for module in unet.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(hook)
    width = unet.config.cross_attention_dim
    with torch.no_grad():
        unet(torch.randn(args.batch, unet.config.in_channels, args.size, args.size), torch.tensor([500]),
             encoder_hidden_states=torch.randn(args.batch, 77, width))
    rows, total = [], 0.0
    for (m, k, n, bias), count in sorted(shapes.items(), key=lambda kv: -kv[0][0] * kv[0][1] * kv[0][2] * kv[1]):
        x, w = torch.randn(m, k), torch.randn(n, k) * k ** -0.5
        b = torch.randn(n) if bias else None
        with torch.no_grad():
            for _ in range(2):
                torch.nn.functional.linear(x, w, b)
            times = []
            for _ in range(5):
                start = time.perf_counter()
                torch.nn.functional.linear(x, w, b)
                times.append(time.perf_counter() - start)
        seconds = sorted(times)[len(times) // 2]
        total += seconds * count
        rows.append({"m": m, "k": k, "n": n, "bias": bias, "count": count, "torch_seconds": seconds})
        print(f"{m:6d} {k:5d} {n:5d} x{count:3d}  {seconds * 1e3:8.3f} ms  {2 * m * k * n / seconds / 1e9:6.1f} GFLOP/s",
              file=sys.stderr)
    print(f"total {total:.3f} s", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
