#!/usr/bin/env bash
# Ours beside Diffusers on the CPU, same machine, threads, random-weight SD 1.5-size pipeline and
# settings (issue 6): fresh processes, alternating ours/theirs, REPS repetitions per dtype.
#   tools/bench/side-by-side.sh DIR [SIZE] [STEPS] [REPS]
# DIR is made with tools/reference/make_sd15_random.py when missing. PYTHON is the pinned
# environment's interpreter (tools/reference/pinned.py; default /work/venv/bin/python), THREADS
# the threads both sides use (default 2), DTYPES the precisions (default "f32 bf16").
# Prints one table per dtype: each figure as ours / theirs = ratio (medians over the repetitions).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; steps=${3:-2}; reps=${4:-2}
python=${PYTHON:-/work/venv/bin/python}; threads=${THREADS:-2}
[[ -f "$model/model_index.json" ]] || "$python" tools/reference/make_sd15_random.py "$model" --no-check
swift build -c release --product diffuse >/dev/null
diffuse=${DIFFUSE:-.build/release/diffuse}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for dtype in ${DTYPES:-f32 bf16}; do
  for rep in $(seq "$reps"); do
    DIFFUSERS_NUM_THREADS=$threads "$diffuse" generate --model "$model" --prompt "a red circle" --steps "$steps" \
      --width "$size" --height "$size" --guidance 7.5 --seed 0 --dtype "$dtype" --device cpu \
      --out "$out/ours-$dtype-$rep.png" --report "$out/ours-$dtype-$rep.json" >/dev/null 2>"$out/ours.err" \
      || { echo "ours failed: $(tail -1 "$out/ours.err")"; exit 1; }
    "$python" tools/reference/make_sd15_random.py "$model" --bench --threads "$threads" --size "$size" --steps "$steps" \
      --dtype "$dtype" > "$out/theirs-$dtype-$rep.json" 2>"$out/theirs.err" \
      || { echo "Diffusers failed: $(tail -1 "$out/theirs.err")"; exit 1; }
  done
done
python3 - "$out" "$size" "$steps" "$reps" "$threads" ${DTYPES:-f32 bf16} <<'PY'
import json, statistics, sys, glob, os
out, size, steps, reps, threads, *dtypes = sys.argv[1:]
def median(xs): return statistics.median(xs) if xs else float("nan")
for dtype in dtypes:
    ours = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/ours-{dtype}-*.json"))]
    theirs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/theirs-{dtype}-*.json"))]
    rows = [
        # A denoising step after the first (UNet on the CFG batch + scheduler step).
        ("UNet step (steps 2..N)", [median(r["timings"]["steps_s"][1:]) for r in ours], [median(r["steps_s"][1:]) for r in theirs], "s"),
        ("text encoder", [r["timings"]["text_encoder_s"] for r in ours], [r["text_encoder_s"] for r in theirs], "s"),
        ("VAE decode", [r["timings"]["vae_decode_s"] for r in ours], [r["vae_decode_s"] for r in theirs], "s"),
        ("load", [r["timings"]["load_s"] for r in ours], [r["load_s"] for r in theirs], "s"),
        ("pipeline call (load excluded)", [r["timings"]["total_s"] - r["timings"]["load_s"] for r in ours], [r["total_s"] for r in theirs], "s"),
        ("process peak RSS", [r["memory"]["process_peak_rss_bytes"] / 2**30 for r in ours], [r["process_peak_rss_bytes"] / 2**30 for r in theirs], "GiB"),
    ]
    v = theirs[0]
    print(f"\n{dtype}, {size}x{size}, {steps} steps, {threads} threads, {reps} runs each (Diffusers {v['diffusers']}, torch {v['torch']})\n")
    print("| figure | ours | Diffusers | ours / Diffusers |")
    print("|---|---:|---:|---:|")
    for name, a, b, unit in rows:
        ma, mb = median(a), median(b)
        print(f"| {name} | {ma:.2f} {unit} | {mb:.2f} {unit} | {ma / mb:.2f} |")
PY
