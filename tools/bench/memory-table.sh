#!/usr/bin/env bash
# Peak memory and time of each placement/offload technique on an SD 1.5-size pipeline folder
# (tools/reference/make_sd15_random.py DIR), one fresh `diffuse generate` process per row.
#   tools/bench/memory-table.sh DIR [SIZE] [STEPS] [BANDWIDTH]
# BANDWIDTH (bytes/s, e.g. 4GB) throttles the accel stand-in's copy engine; "auto" sets it so
# that copying the UNet's weights takes as long as one plain step (measured by the first row,
# which then runs unthrottled). DTYPE=bf16 runs the pipeline in bfloat16 (f32 by default).
# ONLY=accel keeps the rows whose name contains that text.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; steps=${3:-1}; bandwidth=${4:-}; dtype=${DTYPE:-f32}
swift build -c release --product diffuse >/dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
rows=(
  "accel plain|--device accel:0"
  "cpu plain|--device cpu"
  "cpu sequential|--device cpu --offload sequential"
  "cpu group-leaf (disk tier)|--device cpu --offload group-leaf --offload-dir $out/groups"
  "cpu group-block 1 (disk tier)|--device cpu --offload group-block --blocks-per-group 1 --offload-dir $out/groups"
  "accel model offload|--device accel:0 --offload model"
  "accel sequential|--device accel:0 --offload sequential"
  "accel group-leaf|--device accel:0 --offload group-leaf"
  "accel group-leaf + prefetch|--device accel:0 --offload group-leaf --stream"
  "accel group-block 1|--device accel:0 --offload group-block --blocks-per-group 1"
  "accel group-block 1 + prefetch|--device accel:0 --offload group-block --blocks-per-group 1 --stream"
  "accel group-leaf + prefetch 1GB ahead|--device accel:0 --offload group-leaf --stream --prefetch-bytes 1GB"
  "accel group-leaf + prefetch 2GB ahead|--device accel:0 --offload group-leaf --stream --prefetch-bytes 2GB"
  "accel device map auto, 0=1GB|--device accel:0 --device-map auto --max-memory 0=1GB,cpu=64GB"
)
source tools/bench/rows.sh
table_header
i=0
for row in "${rows[@]}"; do
  name=${row%%|*}; args=${row#*|}
  [[ -n "${ONLY:-}" && "$name" != *"$ONLY"* && $i -gt 0 ]] && { i=$((i+1)); continue; }
  extra=()
  if [[ $i -gt 0 && -n "$bandwidth" ]]; then extra=(--accel-bandwidth "$bandwidth"); fi
  # shellcheck disable=SC2086
  run_row "$name" "$out/$i" $args "${extra[@]}" || { i=$((i+1)); continue; }
  if [[ $i -eq 0 && "$bandwidth" == auto ]]; then
    # The UNet's weights in the run's dtype over the plain step's time.
    bandwidth=$(python3 - "$model" "$dtype" "$out/0.json" <<'PY'
import json, os, sys
model, dtype, report = sys.argv[1:]
unet = sum(os.path.getsize(os.path.join(model, "unet", f)) for f in os.listdir(os.path.join(model, "unet")) if f.endswith(".safetensors"))
unet = unet * (2 if dtype in ("bf16", "f16") else 4) // 4   # the folder holds f32 weights
step = json.load(open(report))["timings"]["steps_s"][-1]
print(int(unet / step))
PY
)
    echo "(copy bandwidth for the rows below: $((bandwidth / 1000000)) MB/s = the UNet's weights per plain step)"
  fi
  i=$((i+1))
done
