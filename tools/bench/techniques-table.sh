#!/usr/bin/env bash
# Peak memory and time of the memory toolkit's part-2 techniques on an SD 1.5-size pipeline
# folder (tools/reference/make_sd15_random.py DIR), one fresh `diffuse generate` process per row.
#   tools/bench/techniques-table.sh DIR [SIZE] [STEPS]
# Use STEPS ≥ 3 for the captured rows (step 1 eager, 2 recorded, the last replayed).
# DTYPE=bf16 computes in bfloat16 (f32 by default); ONLY=text keeps the rows whose name contains it.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; steps=${3:-1}; dtype=${DTYPE:-f32}
swift build -c release --product diffuse >/dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
rows=(
  "accel plain (flash attention)|--device accel:0"
  "accel UNet stored f8e4m3|--device accel:0 --storage-dtype f8e4m3"
  "accel UNet stored bf16|--device accel:0 --storage-dtype bf16"
  "accel naive attention|--device accel:0 --attention naive"
  "accel sliced attention (auto)|--device accel:0 --attention sliced"
  "accel UNet captured (replayed from step 3)|--device accel:0 --capture"
  "accel contiguous (NCHW) activations|--device accel:0 --no-channels-last"
  "cpu plain|--device cpu"
  "cpu UNet captured (replayed from step 3)|--device cpu --capture"
  "cpu contiguous (NCHW) activations|--device cpu --no-channels-last"
  "cpu UNet stored f8e4m3|--device cpu --storage-dtype f8e4m3"
)
source tools/bench/rows.sh
table_header
i=0
for row in "${rows[@]}"; do
  name=${row%%|*}; args=${row#*|}
  [[ -n "${ONLY:-}" && "$name" != *"$ONLY"* ]] && { i=$((i+1)); continue; }
  # shellcheck disable=SC2086
  run_row "$name" "$out/$i" $args || { i=$((i+1)); continue; }
  i=$((i+1))
done
