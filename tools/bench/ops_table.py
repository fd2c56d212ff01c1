"""Combines OpsBenchmark and torch_ops_bench.py JSON files into one markdown table."""
import glob
import json
import os
import platform
import sys


def best(files):
    results, meta = {}, {}
    for path in files:
        with open(path) as f:
            data = json.load(f)
        meta = data
        for key, r in data["results"].items():
            if key not in results or r["seconds"] < results[key]["seconds"]:
                results[key] = r
    return results, meta


def main(folder):
    ours, ours_meta = best(sorted(glob.glob(os.path.join(folder, "swift-*.json"))))
    theirs, theirs_meta = best(sorted(glob.glob(os.path.join(folder, "torch-*.json"))))
    print(f"threads: swift-diffusers {ours_meta.get('threads')}, PyTorch {theirs_meta.get('torch')} "
          f"{theirs_meta.get('threads')} ({theirs_meta.get('cpu_capability')}); machine {platform.machine()}")
    print()
    roof, roof_meta = best(sorted(glob.glob(os.path.join(folder, "roof-*.json"))))
    if roof:
        print(f"roof: {roof_meta.get('engine')} called directly (layouts left to the library)")
    print()
    print("| op | shape | swift-diffusers GFLOP/s | PyTorch GFLOP/s | PyTorch time / ours | roof GFLOP/s (kernel) | ours / roof |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key in ["matmul_f32", "matmul_bf16", "linear_f32", "linear_bf16", "conv2d_f32", "conv2d_bf16", "attention_f32", "attention_bf16",
                "cross_attention_f32", "cross_attention_bf16"]:
        if key not in ours or key not in theirs:
            continue
        o, t = ours[key], theirs[key]
        r = roof.get(key)
        roof_cells = f"{r['gflops']:.1f} ({r['impl']}) | {r['seconds'] / o['seconds']:.2f}" if r else "– | –"
        print(f"| {key} | {o.get('shape', '')} | {o['gflops']:.1f} | {t['gflops']:.1f} | "
              f"{t['seconds'] / o['seconds']:.2f} | {roof_cells} |")


if __name__ == "__main__":
    main(sys.argv[1])
