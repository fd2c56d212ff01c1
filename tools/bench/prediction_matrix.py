#!/usr/bin/env python3
"""Predicted vs measured: `diffuse plan --json` (the rehearsal, no weight read) against
`diffuse generate --report` (the real run) over a matrix of pipelines, sizes, techniques and
dtypes. Prints one Markdown row per configuration with the process peak RSS, the device peak
(accel:0 where the run computes there, else the host allocator) and the steady step time,
predicted and measured, and their errors; ends with the rows out of bounds (10 % on memory,
25 % on time).

Each configuration runs in fresh processes: plan first, then generate with --steps 2 (the second
step is the steady one the plan predicts; PNDM's extra step makes it the mean of steps 2-3).
No Python package is needed.

  python3 tools/bench/prediction_matrix.py [--only SUBSTRING] [--diffuse PATH] > rows.md

Model folders (outside git, written by tools/reference/make_*_random.py):
  SD15=/var/tmp/sd15-random  SDXL=/var/tmp/sdxl-random  FLUX=/var/tmp/flux-small
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

SD15 = os.environ.get("SD15", "/var/tmp/sd15-random")
SDXL = os.environ.get("SDXL", "/var/tmp/sdxl-random")
FLUX = os.environ.get("FLUX", "/var/tmp/flux-small")
ACCEL = ["--device", "accel:0"]

# name, model folder, size, dtype, extra options
MATRIX = [
    ("sd15 f32 256 plain", SD15, 256, "f32", []),
    ("sd15 f32 512 plain", SD15, 512, "f32", []),
    ("sd15 f32 768 plain", SD15, 768, "f32", []),
    ("sd15 bf16 512 plain", SD15, 512, "bf16", []),
    ("sd15 bf16 512 group-block", SD15, 512, "bf16", ["--offload", "group-block", "--blocks-per-group", "1"]),
    ("sd15 f32 512 group-leaf", SD15, 512, "f32", ["--offload", "group-leaf"]),
    ("sd15 f32 512 disk tier", SD15, 512, "f32", ["--offload", "group-block", "--blocks-per-group", "1", "--offload-dir", "@TMP"]),
    ("sd15 f32 512 tiled VAE", SD15, 512, "f32", ["--vae-tiling"]),
    ("sd15 bf16 512 fp8 storage", SD15, 512, "bf16", ["--storage-dtype", "f8e4m3"]),
    ("sd15 f32 512 model offload", SD15, 512, "f32", ACCEL + ["--offload", "model"]),
    ("sd15 f32 512 sequential", SD15, 512, "f32", ACCEL + ["--offload", "sequential"]),
    ("sd15 bf16 768 tiled VAE", SD15, 768, "bf16", ["--vae-tiling"]),
    ("sd15 bf16 512 group-block stream, copies at 16 GB/s", SD15, 512, "bf16",
     ACCEL + ["--accel-bandwidth", "16GB", "--offload", "group-block", "--blocks-per-group", "1", "--stream"]),
    ("sdxl bf16 512 plain", SDXL, 512, "bf16", []),
    ("sdxl f32 512 plain", SDXL, 512, "f32", []),
    ("sdxl bf16 768 group-block", SDXL, 768, "bf16", ["--offload", "group-block", "--blocks-per-group", "1"]),
    ("sdxl bf16 768 group-leaf tiled VAE", SDXL, 768, "bf16", ["--offload", "group-leaf", "--vae-tiling"]),
    ("sdxl bf16 512 model offload", SDXL, 512, "bf16", ACCEL + ["--offload", "model"]),
    ("flux bf16 256 plain", FLUX, 256, "bf16", []),
    ("flux bf16 512 plain", FLUX, 512, "bf16", []),
    ("flux bf16 768 group-block", FLUX, 768, "bf16", ["--offload", "group-block", "--blocks-per-group", "1"]),
    ("flux f32 512 plain", FLUX, 512, "f32", []),
    ("flux bf16 512 fp8 storage", FLUX, 512, "bf16", ["--storage-dtype", "f8e4m3"]),
    ("flux bf16 512 tiled VAE", FLUX, 512, "bf16", ["--vae-tiling"]),
    ("flux bf16 512 model offload", FLUX, 512, "bf16", ACCEL + ["--offload", "model"]),
    ("flux bf16 512 sequential", FLUX, 512, "bf16", ACCEL + ["--offload", "sequential"]),
    ("flux bf16 512 group-leaf", FLUX, 512, "bf16", ["--offload", "group-leaf"]),
]


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()[-400:]}")
    return result.stdout


def error(predicted, measured):
    return (predicted - measured) / measured if measured else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--diffuse", default=".build/release/diffuse")
    args = parser.parse_args()
    print("| configuration | peak RSS predicted | measured | error | device peak predicted | measured | error | step s predicted | measured | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    out_of_bounds = []
    for name, model, size, dtype, extra in MATRIX:
        if args.only not in name:
            continue
        with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
            extra = [folder + "/groups" if e == "@TMP" else e for e in extra]
            common = ["--model", model, "--prompt", "a photo of a cat", "--seed", "1", "--steps", "2",
                      "--width", str(size), "--height", str(size), "--dtype", dtype] + extra
            try:
                plan = json.loads(run([args.diffuse, "plan", "--json"] + common))
                run([args.diffuse, "generate", "--quiet", "--out", folder + "/x.png", "--report", folder + "/r.json"] + common)
            except RuntimeError as failure:
                print(f"| {name} | failed: {failure} |", flush=True)
                out_of_bounds.append(name)
                continue
            report = json.load(open(folder + "/r.json"))
        predicted = plan["predicted"]
        device = "accel:0" if "accel:0" in extra else "cpu"
        rss_p, rss_m = predicted["process_peak_rss_bytes"], report["memory"]["process_peak_rss_bytes"]
        dev_p = predicted["devices"].get(device, 0)
        dev_m = report["memory"]["devices"].get(device, {}).get("peak_bytes", 0)
        steps = report["timings"]["steps_s"][1:]
        step_m = sum(steps) / len(steps)
        step_p = predicted["step_s"]
        errors = (error(rss_p, rss_m), error(dev_p, dev_m), error(step_p, step_m))
        gib = 1 << 30
        print(f"| {name} | {rss_p / gib:.2f} GiB | {rss_m / gib:.2f} GiB | {errors[0]:+.1%} | {dev_p / gib:.2f} GiB | {dev_m / gib:.2f} GiB | "
              f"{errors[1]:+.1%} | {step_p:.2f} | {step_m:.2f} | {errors[2]:+.1%} |", flush=True)
        if abs(errors[0]) > 0.10 or abs(errors[1]) > 0.10 or abs(errors[2]) > 0.25:
            out_of_bounds.append(name)
    print(f"\nout of bounds (10 % memory, 25 % step time): {', '.join(out_of_bounds) if out_of_bounds else 'none'}")


if __name__ == "__main__":
    sys.exit(main())
