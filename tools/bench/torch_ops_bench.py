#!/usr/bin/env python3
# PyTorch CPU throughput baseline for swift-diffusers' kernels.
#
# Pinned versions: python 3.11, torch==2.15.0 (diffusers==0.42.1, transformers==5.24.0,
#   accelerate==1.15.0, safetensors==0.8.0 in the same venv; not used here).
#
# Usage:  python tools/bench/torch_ops_bench.py [--reps 3] [--only matmul,linear,conv2d,attention]
#         BENCH_THREADS=4 python tools/bench/torch_ops_bench.py    (default: 2 threads)
#
# Prints ONE JSON object on stdout (progress goes to stderr):
#   {"torch": "2.15.0...", "threads": 2, "reps": 3, "cpu_capability": "AVX512",
#    "results": {"matmul_f32": {"seconds": median, "gflops": ..., "times": [...], "flops": ...,
#                               "shape": ...}, "matmul_bf16": ..., "conv2d_f32": ..., ...}}
# Workloads (each for float32 and bfloat16):
#   matmul    [4096,4096] @ [4096,4096]                       flops = 2*N^3
#   linear    x [2,4096,320] @ w [2560,320]^T + bias            flops = 2*8192*320*2560
#   conv2d    x [2,320,64,64], w [320,320,3,3], b [320], pad 1  flops = 2*N*Cout*H*W*Cin*9
#   attention F.scaled_dot_product_attention, q,k,v [2,8,4096,40]  flops = 4*B*H*S*S*D
#   cross_attention  q [2,8,4096,40], k,v [2,8,77,40]              flops = 4*B*H*S*77*D
# Each workload is run once to warm up, then timed --reps times; "seconds" is the median.

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

assert sys.version_info[:2] == (3, 11), sys.version
assert torch.__version__.startswith("2.15"), torch.__version__

torch.manual_seed(0)
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
torch.set_num_threads(THREADS)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def workloads(dtype):
    g = torch.Generator().manual_seed(0)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(dtype)

    N = 4096
    a, b = r(N, N), r(N, N, scale=N ** -0.5)
    yield "matmul", {"shape": "[4096,4096]@[4096,4096]"}, 2 * N ** 3, lambda: torch.matmul(a, b)

    # the SD 1.5 UNet's first-level GEGLU projection: 2 x 4096 tokens, 320 -> 2560 (a weight)
    tokens, proj, proj_bias = r(2, 4096, 320), r(2560, 320, scale=320 ** -0.5), r(2560, scale=0.1)
    yield ("linear", {"shape": "x[2,4096,320] w[2560,320] + bias"}, 2 * 2 * 4096 * 320 * 2560,
           lambda: F.linear(tokens, proj, proj_bias))

    n, c, h, w = 2, 320, 64, 64
    x, wt, bias = r(n, c, h, w), r(c, c, 3, 3, scale=(c * 9) ** -0.5), r(c, scale=0.1)
    yield ("conv2d", {"shape": "x[2,320,64,64] w[320,320,3,3] pad 1"}, 2 * n * c * h * w * c * 9,
           lambda: F.conv2d(x, wt, bias, padding=1))

    B, H, S, D = 2, 8, 4096, 40
    q, k, v = r(B, H, S, D), r(B, H, S, D), r(B, H, S, D)
    yield ("attention", {"shape": "q,k,v [2,8,4096,40]"}, 4 * B * H * S * S * D,
           lambda: F.scaled_dot_product_attention(q, k, v))

    # the UNet's cross-attention: 4096 image tokens over 77 text tokens
    ck, cv = r(B, H, 77, D), r(B, H, 77, D)
    yield ("cross_attention", {"shape": "q [2,8,4096,40], k,v [2,8,77,40]"}, 4 * B * H * S * 77 * D,
           lambda: F.scaled_dot_product_attention(q, ck, cv))

    # layerwise casting's upcast; "flops" counts elements converted
    stored = r(N, N).to(torch.float8_e4m3fn)
    yield "upcast_f8e4m3", {"shape": f"[4096,4096] float8_e4m3fn -> {dtype}"}, N * N, lambda: stored.to(dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated subset of matmul,linear,conv2d,attention,cross_attention")
    ap.add_argument("--dtypes", default="f32,bf16")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    dts = {"f32": torch.float32, "bf16": torch.bfloat16}
    results = {}
    with torch.inference_mode():
        for tag in args.dtypes.split(","):
            dtype = dts[tag]
            for name, info, flops, fn in workloads(dtype):
                if only and name not in only:
                    continue
                key = f"{name}_{tag}"
                t0 = time.perf_counter()
                out = fn()  # warm-up
                warm = time.perf_counter() - t0
                assert out.dtype == dtype
                times = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                med = statistics.median(times)
                results[key] = {"seconds": med, "gflops": flops / med / 1e9, "times": times,
                                "warmup_seconds": warm, "flops": flops, "dtype": str(dtype), **info}
                log(f"{key}: {med:.3f} s  {flops / med / 1e9:.1f} GFLOP/s  (times {['%.3f' % t for t in times]})")
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "reps": args.reps,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: None)()),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
