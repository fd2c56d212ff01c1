#!/usr/bin/env bash
# Peak memory and time of each placement/offload technique on an SD 1.5-size pipeline folder
# (tools/reference/make_sd15_random.py DIR), one fresh `diffuse generate` process per row.
#   tools/bench/memory-table.sh DIR [SIZE] [STEPS] [BANDWIDTH]
# BANDWIDTH (bytes/s, e.g. 4GB) throttles the accel stand-in's copy engine. ONLY=accel keeps the
# rows whose name contains that text.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; steps=${3:-1}; bandwidth=${4:-}
swift build -c release --product diffuse >/dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
rows=(
  "cpu plain|--device cpu"
  "cpu sequential (disk tier)|--device cpu --offload sequential"
  "cpu group-leaf (disk tier)|--device cpu --offload group-leaf"
  "cpu group-block 1 (disk tier)|--device cpu --offload group-block --blocks-per-group 1"
  "accel plain|--device accel:0"
  "accel model offload|--device accel:0 --offload model"
  "accel sequential|--device accel:0 --offload sequential"
  "accel group-leaf|--device accel:0 --offload group-leaf"
  "accel group-leaf + prefetch|--device accel:0 --offload group-leaf --stream"
  "accel group-block 1|--device accel:0 --offload group-block --blocks-per-group 1"
  "accel group-block 1 + prefetch|--device accel:0 --offload group-block --blocks-per-group 1 --stream"
  "accel group-leaf + prefetch 1GB ahead|--device accel:0 --offload group-leaf --stream --prefetch-bytes 1GB"
)
extra=()
[ -n "$bandwidth" ] && extra=(--accel-bandwidth "$bandwidth")
i=0
for row in "${rows[@]}"; do
  name=${row%%|*}; args=${row#*|}
  [[ -n "${ONLY:-}" && "$name" != *"$ONLY"* ]] && continue
  # shellcheck disable=SC2086
  .build/release/diffuse generate --model "$model" --prompt "a red circle" --steps "$steps" --width "$size" --height "$size" \
      $args "${extra[@]}" --out "$out/$i.png" --report "$out/$i.json" >/dev/null 2>&1 || { echo "| $name | failed |"; i=$((i+1)); continue; }
  python3 - "$name" "$out/$i.json" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path)); t = r["timings"]; m = r["memory"]; tr = r["transfers"]
accel = m["devices"].get("accel:0", {}).get("peak_bytes", 0)
unet = t["steps_s"][-1]
print(f"| {name} | {accel/2**20:.0f} MiB | {m['process_peak_rss_bytes']/2**30:.2f} GiB | {unet:.2f} s | {t['vae_decode_s']:.1f} s | {tr['bytes']/2**30:.2f} GiB / {tr['count']} | {tr['wait_s']:.2f} s |")
PY
  i=$((i+1))
done
