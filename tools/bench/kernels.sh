#!/usr/bin/env bash
# Which oneDNN kernel runs each op class of a pipeline call: one `diffuse generate` with
# ONEDNN_VERBOSE=1, its primitive executions tallied per phase (text encoder, UNet steps, VAE
# decode), primitive kind and implementation, with call counts and milliseconds.
#   tools/bench/kernels.sh DIR [SIZE] [DTYPE] [STEPS]
# DIFFUSE is our binary (default: built here in release mode), THREADS its threads (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; dtype=${3:-f32}; steps=${4:-1}
[[ -n "${DIFFUSE:-}" ]] || swift build -c release --product diffuse >/dev/null
diffuse=${DIFFUSE:-.build/release/diffuse}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
# Progress lines of a non-terminal run go to stdout beside oneDNN's: they mark the phases.
ONEDNN_VERBOSE=1 DIFFUSERS_NUM_THREADS=${THREADS:-2} "$diffuse" generate --model "$model" --prompt "a red circle" \
  --steps "$steps" --width "$size" --height "$size" --seed 0 --dtype "$dtype" --device cpu --out "$out/image.png" \
  > "$out/log.txt" 2>"$out/err.txt" || { echo "diffuse failed: $(tail -1 "$out/err.txt")"; exit 1; }
python3 - "$out/log.txt" "$dtype" "$size" <<'PY'
import collections, sys
path, dtype, size = sys.argv[1:]
phase = "text encoder"
tally = collections.OrderedDict()
for line in open(path, errors="replace"):
    if not line.startswith("onednn_verbose"):
        low = line.lower()
        if "step" in low or "denois" in low: phase = "UNet"
        elif "decod" in low: phase = "VAE decode"
        continue
    parts = line.rstrip("\n").split(",")
    # onednn_verbose,[timestamp,]exec,cpu,KIND,IMPL,PROP,...,TIME
    if "exec" not in parts[:3]:
        continue
    i = parts.index("exec")
    kind, impl, ms = parts[i + 2], parts[i + 3], float(parts[-1])
    entry = tally.setdefault(phase, collections.Counter()), tally.setdefault(phase + " ms", collections.Counter())
    entry[0][(kind, impl)] += 1
    entry[1][(kind, impl)] += ms
print(f"\n{dtype}, {size}x{size}: oneDNN primitives executed, per phase, kind and implementation\n")
print("| phase | primitive | implementation | calls | ms |")
print("|---|---|---|---:|---:|")
for phase in [p for p in tally if not p.endswith(" ms")]:
    counts, times = tally[phase], tally[phase + " ms"]
    for (kind, impl), n in sorted(counts.items(), key=lambda kv: -times[kv[0]]):
        print(f"| {phase} | {kind} | {impl} | {n} | {times[(kind, impl)]:.1f} |")
PY
