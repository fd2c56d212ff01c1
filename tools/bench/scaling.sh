#!/usr/bin/env bash
# How time and peak RSS grow with resolution and batch, ours beside Diffusers (issue 6): runs
# tools/bench/side-by-side.sh once per configuration (one run per side, DTYPES default f32) and
# prints one table: UNet step, VAE decode and process peak RSS, ours / Diffusers, and each
# figure relative to the 512x512 batch-1 run of the same side.
#   tools/bench/scaling.sh DIR [STEPS]
# SIZES (default "256 512 768 1024") at batch 1, BATCHES (default "1 2 4") at 512x512.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; steps=${2:-2}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
configs=()
for size in ${SIZES:-256 512 768 1024}; do configs+=("$size 1"); done
for batch in ${BATCHES:-1 2 4}; do [[ "$batch" == 1 ]] || configs+=("512 $batch"); done
for config in "${configs[@]}"; do
  read -r size batch <<<"$config"
  SUMMARY="$tmp/$size-$batch.json" BATCH=$batch DTYPES=${DTYPES:-f32} tools/bench/side-by-side.sh "$model" "$size" "$steps" 1 >/dev/null
done
python3 - "$tmp" <<'PY'
import glob, json, sys
rows = [r for f in glob.glob(sys.argv[1] + "/*.json") for r in json.load(open(f))]
def pick(figure, dtype):
    return {(r["size"], r["batch"]): r for r in rows if r["figure"] == figure and r["dtype"] == dtype}
for dtype in sorted({r["dtype"] for r in rows}):
    step, decode, rss = pick("UNet step (steps 2..N)", dtype), pick("VAE decode", dtype), pick("process peak RSS", dtype)
    base = (512, 1)
    print(f"\n{dtype}; in parentheses: × the same side's 512² batch-1 figure\n")
    print("| size | batch | UNet step ours | Diffusers | ratio | VAE decode ours | Diffusers | ratio | peak RSS ours | Diffusers | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(step, key=lambda k: (k[1], k[0])):
        cells = []
        for table, unit in ((step, "s"), (decode, "s"), (rss, "GiB")):
            r, b = table[key], table.get(base)
            grow = (lambda side: f" (×{r[side] / b[side]:.2f})") if b else (lambda side: "")
            cells.append(f"{r['ours']:.2f} {unit}{grow('ours')} | {r['theirs']:.2f} {unit}{grow('theirs')} | {r['ours'] / r['theirs']:.2f}")
        print(f"| {key[0]}² | {key[1]} | " + " | ".join(cells) + " |")
PY
