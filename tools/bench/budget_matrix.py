#!/usr/bin/env python3
"""Host memory budgets honoured: for each pipeline and budget, `diffuse generate --memory-budget`
(the plan chosen from rehearsed candidates) against its measured peak RSS — under the budget,
or refused up front naming the smallest budget — and, with --candidates, every candidate that
fits one budget run with its own options, to show the chosen one is at least as fast.

  python3 tools/bench/budget_matrix.py [--only SUBSTRING] [--budgets 4GB,16GB] [--candidates [--rounds N]] [--diffuse PATH]

Model folders as prediction_matrix.py's (SD15, SDXL, FLUX_DEV environment variables). The
"demo accel" rows put the demo pipeline on a simulated accelerator whose copies run at 200 MB/s
(8 GB of host budget): their budgets are the device's (`--max-memory 0=…`), and the peak shown
is the device's.
"""
import argparse
import json
import os
import subprocess
import tempfile

SD15 = os.environ.get("SD15", "/var/tmp/sd15-random")
SDXL = os.environ.get("SDXL", "/var/tmp/sdxl-random")
FLUX_DEV = os.environ.get("FLUX_DEV", "/var/tmp/flux-dev-random")

# name, folder (None: the demo pipeline), options, budgets; host budgets unless the name says accel
STEPS = ["--steps", "2"]
ACCEL = ["--device", "accel:0", "--accel-bandwidth", "200MB", "--steps", "6"]
RUNS = [
    ("sd15 f32 512", SD15, ["--width", "512", "--height", "512"] + STEPS, ["2GB", "4GB", "8GB", "16GB"]),
    ("sdxl bf16 512", SDXL, ["--dtype", "bf16", "--width", "512", "--height", "512"] + STEPS, ["2GB", "4GB", "8GB", "16GB"]),
    ("flux-dev bf16 256", FLUX_DEV, ["--dtype", "bf16", "--width", "256", "--height", "256"] + STEPS, ["4GB", "6GB", "8GB"]),
    ("demo accel", None, ACCEL, ["20MB", "8MB"]),
]
SIZES = {"GB": 10**9, "MB": 10**6}


def budget_options(name, budget):
    if "accel" in name:
        return ["--memory-budget", "8GB", "--max-memory", "0=" + budget]
    return ["--memory-budget", budget]


def peak_of(name, report):
    if "accel" in name:
        return report["memory"]["devices"]["accel:0"]["peak_bytes"]
    return report["memory"]["process_peak_rss_bytes"]


def predicted_peak(name, predicted):
    return predicted["devices"]["accel:0"] if "accel" in name else predicted["process_peak_rss_bytes"]


def size(name, bytes_):
    return f"{bytes_ / 2**20:.1f} MiB" if "accel" in name else f"{bytes_ / 2**30:.2f} GiB"


def budget_bytes(text):
    return int(float(text[:-2]) * SIZES[text[-2:]])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--budgets", default="", help="comma-separated budgets to run (default: each pipeline's own)")
    parser.add_argument("--candidates", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="with --candidates: rounds of alternating candidate runs")
    parser.add_argument("--diffuse", default=".build/release/diffuse")
    args = parser.parse_args()
    print("| pipeline | budget | chosen | predicted peak | measured peak RSS | under budget | step s |")
    print("|---|---|---|---|---|---|---|")
    for name, folder, options, budgets in RUNS:
        if args.only not in name:
            continue
        common = (["--model", folder] if folder else []) + ["--prompt", "a photo of a cat", "--seed", "1"] + options
        for budget in budgets:
            if args.budgets and budget not in args.budgets.split(","):
                continue
            with tempfile.TemporaryDirectory(dir="/var/tmp") as out:
                result = subprocess.run([args.diffuse, "generate", "--quiet"] + budget_options(name, budget) + ["--out", out + "/x.png",
                                         "--report", out + "/r.json"] + common, capture_output=True, text=True)
                if result.returncode != 0:
                    # Refused up front, or stopped by the enforced limit: nothing is written either way.
                    print(f"| {name} | {budget} | did not run to the end: {result.stderr.strip()[-300:]} | | | yes (nothing written) | |", flush=True)
                    continue
                report = json.load(open(out + "/r.json"))
            plan = report["plan"]
            chosen = next(c["command_line"] for c in plan["candidates"] if c["techniques"] == plan["chosen"])
            peak = peak_of(name, report)
            steps = report["timings"]["steps_s"][1:]
            print(f"| {name} | {budget} | `{chosen}` | {size(name, predicted_peak(name, plan['predicted']))} | {size(name, peak)} | "
                  f"{'yes' if peak <= budget_bytes(budget) else 'NO'} | {sum(steps) / len(steps):.3f} |", flush=True)
            if args.candidates:
                # Each fitting candidate run with its own options, the candidates alternating in
                # fresh processes for --rounds rounds; the median of their steady steps is shown.
                fitting = [c for c in plan["candidates"] if c["fits"]]
                seconds = {c["command_line"]: [] for c in fitting}
                peaks = {}
                for _ in range(args.rounds):
                    for candidate in fitting:
                        with tempfile.TemporaryDirectory(dir="/var/tmp") as out:
                            words = candidate["command_line"].split()
                            subprocess.run([args.diffuse, "generate", "--quiet", "--out", out + "/x.png", "--report", out + "/r.json"] + common + words,
                                           check=True, capture_output=True)
                            own = json.load(open(out + "/r.json"))
                        steps = own["timings"]["steps_s"][1:]
                        seconds[candidate["command_line"]].append(sum(steps) / len(steps))
                        peaks[candidate["command_line"]] = peak_of(name, own)
                for candidate in fitting:
                    line = candidate["command_line"]
                    mark = " (chosen)" if candidate["techniques"] == plan["chosen"] else ""
                    runs = sorted(seconds[line])
                    print(f"|  | {budget} candidate | `{line}`{mark} | {candidate['predicted']['step_s']:.3f} s predicted, "
                          f"{size(name, predicted_peak(name, candidate['predicted']))} | {size(name, peaks[line])} | | "
                          f"{runs[len(runs) // 2]:.3f} (median of {', '.join(f'{x:.3f}' for x in seconds[line])}) |", flush=True)

if __name__ == "__main__":
    main()
