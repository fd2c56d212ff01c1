#!/usr/bin/env bash
# Which oneDNN kernel runs each op class of a pipeline call: one `diffuse generate` with
# ONEDNN_VERBOSE=1, its primitive executions tallied per phase (text encoder, UNet steps, VAE
# decode), primitive kind and implementation, with call counts and milliseconds (STEPS ≥ 2 to
# see a step after the first, whose primitives exist already).
#   tools/bench/kernels.sh DIR [SIZE] [DTYPE] [STEPS]
# DIFFUSE is our binary (default: built here in release mode), THREADS its threads (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; dtype=${3:-f32}; steps=${4:-2}
[[ -n "${DIFFUSE:-}" ]] || swift build -c release --product diffuse >/dev/null
diffuse=${DIFFUSE:-.build/release/diffuse}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
# Progress lines of a non-terminal run go to stdout beside oneDNN's: they mark the phases.
ONEDNN_VERBOSE=1 DIFFUSERS_NUM_THREADS=${THREADS:-2} "$diffuse" generate --model "$model" --prompt "a red circle" \
  --steps "$steps" --width "$size" --height "$size" --seed 0 --dtype "$dtype" --device cpu --out "$out/image.png" \
  > "$out/log.txt" 2>"$out/err.txt" || { echo "diffuse failed: $(tail -1 "$out/err.txt")"; exit 1; }
python3 - "$out/log.txt" "$dtype" "$size" <<'PY'
import collections, re, sys
path, dtype, size = sys.argv[1:]
# A non-terminal run prints "step k/N ..." when step k ends (on the same stdout as oneDNN):
# before the first marker run the text encoder and the first step (primitives created then),
# between markers one step after the first, after the last the VAE decode.
segments, current, markers = [], collections.defaultdict(lambda: [0, 0.0]), 0
for line in open(path, errors="replace"):
    if re.match(r"step \d+/\d+", line):
        segments.append(current); current = collections.defaultdict(lambda: [0, 0.0]); markers += 1
        continue
    parts = line.rstrip("\n").split(",")
    if not line.startswith("onednn_verbose") or "exec" not in parts[:3]:
        continue
    i = parts.index("exec")
    entry = current[(parts[i + 2], parts[i + 3])]
    entry[0] += 1
    entry[1] += float(parts[-1])
segments.append(current)
named = [("text encoder and the first UNet step", segments[0])]
if markers >= 2:
    named.append(("a UNet step after the first", segments[1]))
named.append(("VAE decode", segments[-1]))
print(f"\n{dtype}, {size}x{size}: oneDNN primitives executed, per phase, kind and implementation\n")
print("| phase | primitive | implementation | calls | ms |")
print("|---|---|---|---:|---:|")
for phase, tally in named:
    for (kind, impl), (n, ms) in sorted(tally.items(), key=lambda kv: -kv[1][1]):
        print(f"| {phase} | {kind} | {impl} | {n} | {ms:.1f} |")
PY
