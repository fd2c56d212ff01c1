#!/usr/bin/env bash
# Ours beside Diffusers on the CPU, same machine, threads, random-weight SD 1.5-size pipeline and
# settings (issue 6): fresh processes, alternating ours/theirs, REPS repetitions per dtype.
#   tools/bench/side-by-side.sh DIR [SIZE] [STEPS] [REPS]
# DIR is made with tools/reference/make_sd15_random.py when missing. PYTHON is the pinned
# environment's interpreter (tools/reference/pinned.py; default /work/venv/bin/python), THREADS
# the threads both sides use (default 2), DTYPES the precisions (default "f32 bf16"), BATCH the
# images per prompt (default 1). TOOLKIT="--offload group-block --blocks-per-group 1" (say) adds
# a third process per repetition: ours with those memory-toolkit options, its own column.
# SUMMARY=FILE also writes the medians as JSON (tools/bench/scaling.sh reads it).
# FLUX folders (tools/reference/make_flux_random.py): THEIRS=tools/bench/flux_bench.py runs Diffusers'
# side; EXTRA="--max-sequence-length 512" (say) goes to both sides; GUIDANCE=3.5.
# Prints one table per dtype: each figure ours, (ours with TOOLKIT,) Diffusers' and the ratios
# (medians over the repetitions).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?pipeline folder}; size=${2:-512}; steps=${3:-2}; reps=${4:-2}
python=${PYTHON:-/work/venv/bin/python}; threads=${THREADS:-2}; batch=${BATCH:-1}; toolkit=${TOOLKIT:-}
# GENERATOR makes DIR when missing (default tools/reference/make_sd15_random.py; make_sdxl_random.py
# for SDXL); GUIDANCE is the guidance scale both sides use (default 7.5).
guidance=${GUIDANCE:-7.5}
[[ -f "$model/model_index.json" ]] || "$python" "${GENERATOR:-tools/reference/make_sd15_random.py}" "$model" --no-check
swift build -c release --product diffuse >/dev/null
diffuse=${DIFFUSE:-.build/release/diffuse}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# ours SIDE DTYPE REP [OPTIONS...]: one `diffuse generate` process.
ours() {
  local side=$1 dtype=$2 rep=$3; shift 3
  date +%s.%N > "$out/$side-$dtype-$rep.launch"
  DIFFUSERS_NUM_THREADS=$threads "$diffuse" generate --model "$model" --prompt "a red circle" --steps "$steps" \
    --width "$size" --height "$size" --guidance "$guidance" --seed 0 --dtype "$dtype" --device cpu --batch "$batch" "$@" \
    ${EXTRA:-} --out "$out/$side-$dtype-$rep.png" --report "$out/$side-$dtype-$rep.json" >/dev/null 2>"$out/$side.err" \
    || { echo "ours ($side) failed: $(tail -1 "$out/$side.err")"; exit 1; }
}

for dtype in ${DTYPES:-f32 bf16}; do
  for rep in $(seq "$reps"); do
    ours ours "$dtype" "$rep"
    # shellcheck disable=SC2086
    [[ -z "$toolkit" ]] || ours toolkit "$dtype" "$rep" $toolkit --offload-dir "$out/groups"
    date +%s.%N > "$out/theirs-$dtype-$rep.launch"
    # shellcheck disable=SC2086
    if [[ -n "${THEIRS:-}" ]]; then set -- "$THEIRS" "$model"; else set -- tools/reference/make_sd15_random.py "$model" --bench; fi
    "$python" "$@" --threads "$threads" --size "$size" --steps "$steps" \
      --dtype "$dtype" --batch "$batch" --guidance "$guidance" ${EXTRA:-} > "$out/theirs-$dtype-$rep.json" 2>"$out/theirs.err" \
      || { echo "Diffusers failed: $(tail -1 "$out/theirs.err")"; exit 1; }
  done
done
TOOLKIT=$toolkit SUMMARY=${SUMMARY:-} python3 - "$out" "$size" "$steps" "$reps" "$threads" "$batch" ${DTYPES:-f32 bf16} <<'PY'
import json, statistics, sys, glob, os
out, size, steps, reps, threads, batch, *dtypes = sys.argv[1:]
toolkit = os.environ.get("TOOLKIT", "")
summary = []
def median(xs): return statistics.median(xs) if xs else float("nan")

def runs(side, dtype):
    """Each run's figures, named as in the table; start-up is from the harness launching the
    process to its first UNet call."""
    result = []
    for f in sorted(glob.glob(f"{out}/{side}-{dtype}-*.json")):
        r = json.load(open(f))
        launch = float(open(f[:-5] + ".launch").read())
        if side == "theirs":
            t, rss, call = r, r["process_peak_rss_bytes"], r["total_s"]
        else:
            t, rss = r["timings"], r["memory"]["process_peak_rss_bytes"]
            call = t["total_s"] - t["load_s"]
        result.append({
            # A denoising step after the first (UNet on the CFG batch + scheduler step).
            "UNet step (steps 2..N)": median(t["steps_s"][1:]),
            "text encoder": t["text_encoder_s"],
            "VAE decode": t["vae_decode_s"],
            # Converting weights to the compute dtype inside the call (ours, per phase; kept out
            # of the phase rows); Diffusers converts in from_pretrained, inside its load.
            "weight conversion in the call": t.get("weight_cast_s", 0.0),
            "load": t["load_s"],
            "start-up (process start to first UNet call)": t["first_step_at"] - launch,
            "pipeline call (load excluded)": call,
            "process peak RSS": rss / 2**30,
        })
    return result

for dtype in dtypes:
    sides = [("ours", "ours")] + ([("toolkit", "ours " + toolkit)] if toolkit else []) + [("theirs", "Diffusers")]
    figures = {side: runs(side, dtype) for side, _ in sides}
    v = json.load(open(sorted(glob.glob(f"{out}/theirs-{dtype}-*.json"))[0]))
    print(f"\n{dtype}, {size}x{size}, batch {batch}, {steps} steps, {threads} threads, {reps} runs each (Diffusers {v['diffusers']}, torch {v['torch']})\n")
    ours_sides = [s for s in sides if s[0] != "theirs"]
    print("| figure | " + " | ".join(label for _, label in sides) + " | " + " | ".join(f"{label} / Diffusers" for _, label in ours_sides) + " |")
    print("|---|" + "---:|" * (len(sides) + len(ours_sides)))
    for name in figures["ours"][0]:
        unit = "GiB" if "RSS" in name else "s"
        m = {side: median([r[name] for r in figures[side]]) for side, _ in sides}
        cells = [f"{m[side]:.2f} {unit}" for side, _ in sides] + [
            f"{m[side] / m['theirs']:.2f}" if m["theirs"] > 0 else "–" for side, _ in ours_sides]
        print(f"| {name} | " + " | ".join(cells) + " |")
        summary.append({"dtype": dtype, "size": int(size), "batch": int(batch), "figure": name, "ours": m["ours"],
                        "theirs": m["theirs"], "unit": unit, **({"toolkit": m["toolkit"]} if toolkit else {})})
if os.environ.get("SUMMARY"):
    json.dump(summary, open(os.environ["SUMMARY"], "w"), indent=1)
PY
