#!/usr/bin/env bash
# Op throughput of swift-diffusers beside PyTorch's, on this machine, in one run.
# Runs both benchmarks in fresh processes, alternating, ROUNDS times, with the roof beside them
# (tools/bench/onednn_roof.cpp: oneDNN called directly from C++ on the same shapes, layouts
# left to the library), and prints a markdown table of the best median per op (GFLOP/s) and
# the ratios. CXX is the C++ compiler (default c++; the Swift toolchain's clang++ serves).
#
#   TORCH_PYTHON=/path/to/venv/bin/python tools/bench/ops-vs-torch.sh [ROUNDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
reps=${2:-3}
python=${TORCH_PYTHON:-python3}
if ! "$python" -c "import torch" 2>/dev/null; then
    echo "error: $python cannot import torch; set TORCH_PYTHON to a Python with torch 2.15 (see BENCHMARKS.md)." >&2
    exit 1
fi
threads=${BENCH_THREADS:-$(nproc)}
swift build -c release --product OpsBenchmark >/dev/null
onednn=.deps/onednn
${CXX:-c++} -O2 -std=c++17 tools/bench/onednn_roof.cpp -I"$onednn/include" -L"$onednn/lib" -ldnnl \
    -Wl,-rpath,"$PWD/$onednn/lib" -o .build/onednn-roof
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
    DIFFUSERS_NUM_THREADS=$threads .build/release/OpsBenchmark --reps "$reps" > "$out/swift-$round.json"
    BENCH_THREADS=$threads "$python" tools/bench/torch_ops_bench.py --reps "$reps" > "$out/torch-$round.json"
    OMP_NUM_THREADS=$threads .build/onednn-roof "$reps" > "$out/roof-$round.json"
done
python3 tools/bench/ops_table.py "$out"
