#!/usr/bin/env bash
# Per-op-class profile, ours beside Diffusers (issue 6): one `diffuse generate --profile` and one
# Diffusers run under torch.profiler (tools/reference/op_profile.py) on the same pipeline and
# settings, one after the other; prints per phase the seconds of each op class on both sides.
#   tools/bench/profile.sh DIR [SIZE] [DTYPE] [STEPS]
# PYTHON is the pinned environment's interpreter (default /work/venv/bin/python), THREADS the
# threads both sides use (default 2), DIFFUSE our binary (default: built here in release mode).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; dtype=${3:-f32}; steps=${4:-2}
python=${PYTHON:-/work/venv/bin/python}; threads=${THREADS:-2}
[[ -n "${DIFFUSE:-}" ]] || swift build -c release --product diffuse >/dev/null
diffuse=${DIFFUSE:-.build/release/diffuse}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
DIFFUSERS_NUM_THREADS=$threads "$diffuse" generate --model "$model" --prompt "a red circle" --steps "$steps" \
  --width "$size" --height "$size" --guidance 7.5 --seed 0 --dtype "$dtype" --device cpu --profile \
  --out "$out/ours.png" --report "$out/ours.json" >/dev/null 2>"$out/ours.err" \
  || { echo "ours failed: $(tail -1 "$out/ours.err")"; exit 1; }
"$python" tools/reference/make_sd15_random.py "$model" --bench --profile --threads "$threads" --size "$size" \
  --steps "$steps" --dtype "$dtype" > "$out/theirs.json" 2>"$out/theirs.err" \
  || { echo "Diffusers failed: $(tail -1 "$out/theirs.err")"; exit 1; }
python3 - "$out/ours.json" "$out/theirs.json" "$size" "$dtype" <<'PY'
import json, sys
ours_path, theirs_path, size, dtype = sys.argv[1:]
ours = json.load(open(ours_path))["profile"]
theirs = json.load(open(theirs_path))["profile"]
classes = ["convolution", "matmul", "attention", "normalization", "elementwise", "copy"]
print(f"\n{dtype}, {size}x{size}: seconds per phase entry (a denoising step after the first, the text encoder, "
      "the VAE decode), exclusive time per op class; other = the phase's wall time that no class claims\n")
print("| phase | " + " | ".join(f"{c} ours / Diffusers" for c in classes + ["other", "wall"]) + " |")
print("|---|" + "---:|" * (len(classes) + 2))
for phase in ["unet_step", "text_encoder", "vae_decode"]:
    if phase not in ours or phase not in theirs:
        continue
    o, t = ours[phase], theirs[phase]
    def fig(s, key):
        value = s["other_s"] if key == "other" else s["wall_s"] if key == "wall" else s["seconds"].get(key, 0.0)
        return value / s["entries"]
    cells = []
    for key in classes + ["other", "wall"]:
        a, b = fig(o, key), fig(t, key)
        cells.append(f"{a:.3f} / {b:.3f}")
    print(f"| {phase} | " + " | ".join(cells) + " |")
for phase in ["unet_step", "text_encoder", "vae_decode"]:
    if phase not in ours or phase not in theirs:
        continue
    print(f"\nheaviest operations, {phase} (seconds per entry):")
    for name, side in [("ours", ours[phase]), ("Diffusers", theirs[phase])]:
        top = sorted(side["operations"].items(), key=lambda kv: -kv[1])[:8]
        print(f"  {name}: " + ", ".join(f"{k} {v / side['entries']:.3f}" for k, v in top))
PY
