#!/usr/bin/env python3
# Generates the op-level reference fixtures for swift-diffusers.
#
# Pinned versions: see pinned.py (the fixtures in Tests/Fixtures/ops were produced with
# exactly those; numpy 2.x). Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_op_fixtures.py [--out Tests/Fixtures/ops]
#
# Layout: one safetensors file per group; tensor keys are "<case>.<tensor>"; the file's
# __metadata__ holds, for every case, a key "<case>" whose value is a JSON string with the
# case's parameters. The extra metadata key "_info" (leading underscore: not a case) holds
# generator/version information. dtypes.safetensors is the exception: it is one big
# conversion table whose tensors have plain names (src, to_bf16, ...), described in "_info".
#
# All inputs are drawn from torch.randn with a per-case generator seeded from
# crc32("<group>/<case>"), so adding a case never changes the others. All outputs are
# computed by PyTorch on CPU (float32 unless the group says otherwise) with 2 threads.
#
# Determinism: safetensors (Rust) writes __metadata__ from a HashMap, i.e. in a random key
# order on every run. Every file is written with pinned.save_file_ordered, metadata keys
# sorted, so that re-running this script produces byte-identical files. Readers must not
# depend on metadata key order.
#
# fp8 out-of-range behaviour of torch 2.15 (CPU, Tensor.to), checked by check_fp8_overflow()
# on every run (the script fails if PyTorch behaves differently):
#   float8_e4m3fn (no inf): SATURATES. Every finite value that rounds above 448, and +-inf,
#     becomes +-448 (0x7E / 0xFE); e.g. 449, 464, 465, 480, 500, 1e6, 3e38, inf -> 448.
#     NaN -> NaN with the sign kept (0x7F / 0xFF).
#   float8_e5m2 (has inf): does NOT saturate (IEEE-like). Values rounding above 57344 become
#     +-inf (0x7C / 0xFC): 61439.996 -> 57344, 61440 (a tie; 57344 has an odd mantissa) -> inf,
#     65536, 1e6, inf -> inf. NaN -> 0x7F / 0xFF (sign kept).
# Everything else (bf16, f16, both fp8) is exact IEEE round-to-nearest-even incl. denormals and
# ties; this is cross-checked against a pure-python reference (ref_round) below.
# NaN bit patterns: float32 -> bfloat16 on a vectorized (AVX512/AVX2) CPU path gives 0xFFFF for
# every NaN (both signs), whereas torch's scalar path gives 0x7FC0; float16 keeps the sign
# (0x7E00 / 0xFE00). Compare NaN-ness, not NaN bits.

import argparse
import json
import math
import os

import pinned  # first: offline mode and version pins before diffusers is imported
import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding

pinned.setup(threads=2, deterministic=True)

VERSIONS = pinned.versions("numpy")


# ----------------------------------------------------------------------------- helpers

def gen(group, case):
    return pinned.gen(f"{group}/{case}")


def randn(g, *shape, scale=1.0, shift=0.0):
    return torch.randn(*shape, generator=g, dtype=torch.float32) * scale + shift


def write(path, tensors, metadata):
    tensors = pinned.save_checked(tensors, path, dict(sorted(metadata.items())))
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


class Group:
    def __init__(self, name):
        self.name = name
        self.tensors = {}
        self.meta = {}

    def case(self, case, params, **tensors):
        assert case not in self.meta and "." not in case
        self.meta[case] = json.dumps(params, sort_keys=True)
        for k, v in tensors.items():
            key = f"{case}.{k}"
            assert key not in self.tensors
            self.tensors[key] = v.detach().clone()

    def save(self, outdir, info):
        meta = dict(self.meta)
        meta["_info"] = json.dumps(info, sort_keys=True)
        write(os.path.join(outdir, f"{self.name}.safetensors"), self.tensors, meta)


# ----------------------------------------------------------------------------- dtypes

# name: (mantissa bits, min normal exponent, max normal exponent, max finite, has inf)
# overflow policy of torch 2.15: e4m3fn saturates to +-448 (also +-inf), the others -> +-inf
FORMATS = {
    "bf16": (7, -126, 127, (2 - 2 ** -7) * 2.0 ** 127, True),
    "f16": (10, -14, 15, 65504.0, True),
    "f8e4m3fn": (3, -6, 8, 448.0, False),
    "f8e5m2": (2, -14, 15, 57344.0, True),
}
TORCH_DT = {
    "bf16": torch.bfloat16,
    "f16": torch.float16,
    "f8e4m3fn": torch.float8_e4m3fn,
    "f8e5m2": torch.float8_e5m2,
}


def f32_exact(v):
    assert np.float64(np.float32(v)) == v or math.isnan(v) or math.isinf(v), v
    return float(np.float32(v))


def next32(v, direction):
    return float(np.nextafter(np.float32(v), np.float32(direction)))


def format_probe_values(fmt):
    """Representable values, exact ties (lower neighbour even and odd), and the float32
    neighbours of each tie, in the denormal range, the lowest normal binade, [1,2), and the
    top binade of the format."""
    mbits, emin, emax, fmax, has_inf = FORMATS[fmt]
    vals = []
    m = 2 ** mbits
    regions = [("denorm", 2.0 ** (emin - mbits), 0.0),
               ("minnorm", 2.0 ** (emin - mbits), 2.0 ** emin),
               ("one", 2.0 ** -mbits, 1.0),
               ("top", 2.0 ** (emax - mbits), 2.0 ** emax)]
    for name, q, base in regions:
        kmax = m - 1 if (has_inf or name != "top") else m - 2  # e4m3fn: S.1111.111 is NaN
        for k in sorted({0, 1, kmax - 1, kmax}):
            lo = base + k * q
            tie = lo + 0.5 * q
            vals += [f32_exact(lo), f32_exact(tie), next32(tie, -np.inf), next32(tie, np.inf)]
    vals = sorted(set(vals))
    return vals + [-v for v in vals if v != 0]


def ref_round(x, fmt):
    """Pure-python IEEE round-to-nearest-even into fmt; returns a float (may be inf/nan).
    Overflow: e4m3fn saturates to +-448 (torch 2.15 behaviour, inf included); the formats
    that have inf overflow to +-inf."""
    mbits, emin, emax, fmax, has_inf = FORMATS[fmt]
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return x if has_inf else math.copysign(fmax, x)
    if x == 0:
        return x
    a = abs(x)
    e = max(math.frexp(a)[1] - 1, emin)
    q = 2.0 ** (e - mbits)
    r = float(np.rint(a / q)) * q  # a/q exact (power-of-two scaling); rint is RNE
    if r > fmax:
        r = math.inf if has_inf else fmax
    return math.copysign(r, x)


def check_fp8_overflow():
    probe = torch.tensor([448, 449, 463.9, 464, 464.1, 465, 479, 480, 500, 1e6, math.inf,
                          57344, 61439.996, 61440, 65504, 65536, 1e6, 3e38, math.inf],
                         dtype=torch.float32)
    probe = torch.cat([probe, -probe])
    e4 = probe.to(torch.float8_e4m3fn)
    e5 = probe.to(torch.float8_e5m2)
    print("fp8 out-of-range behaviour (torch %s, CPU):" % torch.__version__)
    for i, x in enumerate(probe.tolist()):
        b4 = e4.view(torch.uint8)[i].item()
        b5 = e5.view(torch.uint8)[i].item()
        print(f"  {x!r:>20} -> e4m3fn 0x{b4:02X} ({e4[i].float().item():g})"
              f"   e5m2 0x{b5:02X} ({e5[i].float().item():g})")
    e4v = e4.float()
    e5v = e5.float()
    p = probe.tolist()
    # assertions backing the header comment
    for i, x in enumerate(p):
        a = abs(x)
        if a >= 448:
            assert e4v[i].item() == math.copysign(448, x), (x, e4v[i])
        if a >= 61440:
            assert e5v[i].item() == math.copysign(math.inf, x), (x, e5v[i])
        if a in (57344, 61439.996):
            assert e5v[i].item() == math.copysign(57344, x), (x, e5v[i])
    nan8 = torch.tensor([math.nan, -math.nan])
    assert nan8.to(torch.float8_e4m3fn).view(torch.uint8).tolist() == [0x7F, 0xFF]
    assert nan8.to(torch.float8_e5m2).view(torch.uint8).tolist() == [0x7F, 0xFF]
    print("  -> e4m3fn saturates:", e4v[p.index(1e6)].item() == 448,
          "| e5m2 saturates:", e5v[p.index(1e6)].item() == 57344)
    return {
        "f8e4m3fn": "saturating: every value rounding above 448 and +-inf -> +-448 (0x7E/0xFE); "
                    "NaN -> 0x7F/0xFF (sign kept)",
        "f8e5m2": "non-saturating: values rounding above 57344 (|x| >= 61440, a tie that rounds "
                  "to even) and +-inf -> +-inf (0x7C/0xFC); NaN -> 0x7F/0xFF (sign kept)",
    }


def make_dtypes(outdir):
    g = gen("dtypes", "src")
    vals = [0.0, -0.0, math.inf, -math.inf, math.nan]
    # float32 denormals
    d = 2.0 ** -149
    vals += [d, 2 * d, 3 * d, 2.0 ** -127, 2.0 ** -126 - d, 2.0 ** -126, -d, -3 * d,
             -(2.0 ** -126 - d)]
    for fmt in FORMATS:
        vals += format_probe_values(fmt)
    big = [1.0, 2.0, 448, 449, 464, 465, 479, 480, 500, 57344, 61439.996, 61440, 65504,
           65519, 65520, 65536, 1e6, 3e38, 3.3895314e38, 3.4028235e38]
    vals += big + [-v for v in big]
    vals = [f32_exact(float(np.float32(v))) for v in vals]
    # 200 random normals at scales 1e-6 .. 1e4
    scales = 10.0 ** (torch.rand(200, generator=g, dtype=torch.float64) * 10 - 6)
    rnd = (torch.randn(200, generator=g, dtype=torch.float64) * scales).float()
    src = torch.cat([torch.tensor(vals, dtype=torch.float32), rnd])
    # -NaN (sign bit set) as the very last special value
    neg_nan = torch.tensor([0xFFC00000], dtype=torch.int64).to(torch.int32).view(torch.float32)
    src = torch.cat([src, neg_nan])

    t = {"src": src}
    mismatches = {}
    for fmt, dt in TORCH_DT.items():
        conv = src.to(dt)
        t[f"to_{fmt}"] = conv
        back = conv.to(torch.float32)
        t[f"{fmt}_to_f32"] = back
        # cross-check PyTorch against an independent RNE reference
        bad = []
        for x, y in zip(src.tolist(), back.tolist()):
            r = ref_round(x, fmt)
            same = (math.isnan(r) and math.isnan(y)) or (r == y and math.copysign(1, r) == math.copysign(1, y))
            if not same:
                bad.append((x, y, r))
        mismatches[fmt] = bad
        nan_bits = sorted({hex(b) for b, v in zip(conv.view(torch.uint8 if dt.itemsize == 1 else torch.int16).tolist(),
                                                 back.tolist()) if math.isnan(v)})
        print(f"  {fmt}: {len(bad)} mismatches vs pure-python RNE reference; NaN bit patterns {nan_bits}")
        for b in bad[:10]:
            print("     src=%r torch=%r ref=%r" % b)
    # fp32 -> fp32 via the narrow type is also exactly (to_X).to(float32); as a sanity check
    assert all(len(v) == 0 for v in mismatches.values()), "torch disagrees with RNE reference"

    i64 = [0, 1, -1, 2, 255, 256, -256, 2 ** 24, 2 ** 24 + 1, 2 ** 24 + 2, 2 ** 24 + 3,
           -(2 ** 24 + 1), -(2 ** 24 + 3), 2 ** 25 + 2, 2 ** 25 + 6, 2 ** 31 - 1, -(2 ** 31),
           2 ** 32 + 1, 2 ** 40, -(2 ** 40), 2 ** 40 + 2 ** 16 + 1, 2 ** 53 + 1, -(2 ** 53 + 1),
           2 ** 62, -(2 ** 62), 2 ** 63 - 1, -(2 ** 63), 123456789, -987654321, 9007199254740993]
    i64_src = torch.tensor(i64, dtype=torch.int64)
    t["i64_src"] = i64_src
    t["i64_to_f32"] = i64_src.to(torch.float32)

    fin = [v for v in src.tolist() if math.isfinite(v) and abs(v) < 2.0 ** 31]
    fin += [0.5, -0.5, 0.999999, -0.999999, 1.5, -1.5, 2.5, -2.5, 1e9, -1e9, 2147483520.0,
            -2147483648.0, 16777217.0, 123.875, -123.875]
    f32_finite_src = torch.tensor(fin, dtype=torch.float32)
    t["f32_finite_src"] = f32_finite_src
    t["f32_to_i64"] = f32_finite_src.to(torch.int64)
    t["f32_to_i32"] = f32_finite_src.to(torch.int32)
    u8 = torch.arange(256, dtype=torch.int64).to(torch.uint8)
    t["u8_src"] = u8
    t["u8_to_f32"] = u8.to(torch.float32)
    bsrc = torch.rand(24, generator=g) > 0.5
    t["bool_src"] = bsrc
    t["bool_to_f32"] = bsrc.to(torch.float32)
    t["f32_to_bool"] = src.to(torch.bool)
    # sanity: truncation toward zero
    assert t["f32_to_i64"].tolist() == [int(v) for v in f32_finite_src.tolist()]
    assert t["f32_to_i32"].tolist() == [int(v) for v in f32_finite_src.tolist()]

    fp8_note = check_fp8_overflow()
    info = {
        "versions": VERSIONS,
        "generator": "tools/reference/make_op_fixtures.py",
        "layout": "plain tensor names (no cases). to_X = src.to(X); X_to_f32 = to_X.to(float32); "
                  "i64_to_f32 = i64_src.to(float32); f32_to_i64/f32_to_i32 = f32_finite_src.to(...) "
                  "(truncation toward zero, all |x| < 2**31); u8_to_f32, bool_to_f32, "
                  "f32_to_bool = src.to(bool). The last element of src is a NaN with the sign "
                  "bit set (0xFFC00000); the other NaN is 0x7FC00000.",
        "fp8_out_of_range": fp8_note,
        "nan_bits": "to_bf16 NaNs are 0xFFFF here (ATen vectorized CPU path; torch's scalar path "
                    "gives 0x7FC0); to_f16 keeps the sign (0x7E00/0xFE00); fp8 0x7F/0xFF. "
                    "Compare NaN-ness, not NaN bits.",
        "rounding": "all float narrowing conversions agree with IEEE round-to-nearest-even "
                    "(checked against a pure-python reference when generating)",
    }
    meta = {"_info": json.dumps(info, sort_keys=True)}
    write(os.path.join(outdir, "dtypes.safetensors"), t, meta)
    print(f"  dtypes: src has {src.numel()} values")


# ----------------------------------------------------------------------------- elementwise

def unary_input(g, specials):
    x = randn(g, 3, 100, scale=3.0)
    s = torch.tensor(specials, dtype=torch.float32)
    x.view(-1)[: s.numel()] = s
    return x


def make_elementwise(outdir):
    G = Group("elementwise")
    sp_wide = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 5.5, -5.5, 10.0, -10.0, 20.0, -20.0, 40.0,
               -40.0, 88.0, -88.0, 1e-4, -1e-4]
    sp_exp = [0.0, -0.0, 1.0, -1.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0, 1e-4, -1e-4]

    def un(case, fn, specials=sp_wide, params=None):
        x = unary_input(gen("elementwise", case), specials)
        p = {"formula": fn.__doc__} if fn.__doc__ and not (params or {}).get("formula") else {}
        G.case(case, dict(p, **(params or {})), x=x, out=fn(x))

    def silu(x):
        "x * sigmoid(x)"
        return F.silu(x)

    def gelu(x):
        "0.5 * x * (1 + erf(x / sqrt(2)))"
        return F.gelu(x)

    def gelu_tanh(x):
        "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))"
        return F.gelu(x, approximate="tanh")

    def quick_gelu(x):
        "x * sigmoid(1.702 * x)"
        return x * torch.sigmoid(1.702 * x)

    un("silu", silu)
    un("gelu", gelu, params={"approximate": "none"})
    un("gelu_tanh", gelu_tanh, params={"approximate": "tanh"})
    un("quick_gelu", quick_gelu)
    un("sigmoid", torch.sigmoid, params={"formula": "1 / (1 + exp(-x))"})
    un("tanh", torch.tanh, params={"formula": "tanh(x)"})
    un("exp", torch.exp, specials=sp_exp, params={"formula": "exp(x)"})

    g = gen("elementwise", "add_bcast")
    a, b = randn(g, 2, 3, 4, 5), randn(g, 3, 1, 1)
    G.case("add_bcast", {"op": "a + b"}, a=a, b=b, out=a + b)
    g = gen("elementwise", "mul_bcast")
    a, b = randn(g, 2, 3, 4, 5), randn(g, 1, 4, 1)
    G.case("mul_bcast", {"op": "a * b"}, a=a, b=b, out=a * b)
    g = gen("elementwise", "div_bcast")
    a = randn(g, 2, 3, 4, 5)
    b = randn(g, 5)
    b = torch.sign(b) * (b.abs() + 0.5)
    G.case("div_bcast", {"op": "a / b"}, a=a, b=b, out=a / b)
    g = gen("elementwise", "sub_scalar")
    x = randn(g, 2, 3, 7)
    G.case("sub_scalar", {"op": "x - scalar", "scalar": 0.75}, x=x, out=x - 0.75)

    g = gen("elementwise", "softmax_last")
    x = randn(g, 3, 7, 33, scale=2.0)
    x[0, 0, 5] = 50.0
    x[0, 1, :] = 50.0
    x[1, 2, 0] = 49.5
    x[1, 2, 1] = 50.0
    x[2, 3, 7] = -50.0
    x[2, 4, :] = randn(g, 33, scale=30.0)
    G.case("softmax_last", {"dim": -1}, x=x, out=torch.softmax(x, dim=-1))
    g = gen("elementwise", "softmax_dim1")
    x = randn(g, 2, 5, 3, 4, scale=2.0)
    G.case("softmax_dim1", {"dim": 1}, x=x, out=torch.softmax(x, dim=1))

    g = gen("elementwise", "concat_dim1")
    a, b = randn(g, 2, 3, 4), randn(g, 2, 5, 4)
    G.case("concat_dim1", {"dim": 1}, a=a, b=b, out=torch.cat([a, b], dim=1))
    g = gen("elementwise", "upsample_nearest2x")
    x = randn(g, 2, 3, 5, 7)
    G.case("upsample_nearest2x", {"scale_factor": 2, "mode": "nearest"}, x=x,
           out=F.interpolate(x, scale_factor=2, mode="nearest"))
    # Explicit sizes, as Diffusers' Upsample2D with output_size (UNet sizes that are not
    # multiples of its downsampling): larger, odd, equal, smaller. (These four were added to the
    # committed file alone: regenerating everything on the 2026-12-01 Xeon changed the last bits
    # of exp.out, tanh.out and timestep_embedding_c.out and of other files, PyTorch picking other
    # vector code there.)
    for h, w in [(9, 13), (11, 3), (5, 7), (4, 5)]:
        G.case(f"upsample_nearest_{h}x{w}", {"size": [h, w], "mode": "nearest"}, x=x,
               out=F.interpolate(x, size=(h, w), mode="nearest"))
    g = gen("elementwise", "embedding")
    w = randn(g, 10, 8)
    ids = torch.randint(0, 10, (2, 5), generator=g, dtype=torch.int64)
    ids[0, 0], ids[1, 4] = 0, 9
    G.case("embedding", {"num_embeddings": 10, "embedding_dim": 8}, weight=w, ids=ids,
           out=F.embedding(ids, w))

    ts = torch.tensor([0, 1, 17, 500, 999], dtype=torch.float32)
    for name, dim, flip, shift in [("timestep_embedding_a", 32, True, 0),
                                   ("timestep_embedding_b", 33, False, 1),
                                   ("timestep_embedding_c", 320, True, 0)]:
        params = {"embedding_dim": dim, "flip_sin_to_cos": flip, "downscale_freq_shift": shift,
                  "scale": 1, "max_period": 10000,
                  "function": "diffusers.models.embeddings.get_timestep_embedding"}
        out = get_timestep_embedding(ts, dim, flip_sin_to_cos=flip, downscale_freq_shift=shift,
                                     scale=1, max_period=10000)
        G.case(name, params, timesteps=ts, out=out)

    g = gen("elementwise", "permute_contiguous")
    x = randn(g, 2, 3, 4, 5)
    G.case("permute_contiguous", {"permute": [0, 2, 3, 1]}, x=x,
           out=x.permute(0, 2, 3, 1).contiguous())
    g = gen("elementwise", "transpose_slice")
    x = randn(g, 2, 4, 5, 6)
    G.case("transpose_slice", {"op": "x[:, 1:3].transpose(1, 2).contiguous()",
                               "slice_dim": 1, "start": 1, "end": 3, "transpose": [1, 2]},
           x=x, out=x[:, 1:3].transpose(1, 2).contiguous())
    g = gen("elementwise", "expand")
    x = randn(g, 3, 1, 5)
    G.case("expand", {"shape": [2, 3, 4, 5]}, x=x, out=x.expand(2, 3, 4, 5).contiguous())
    G.save(outdir, {"versions": VERSIONS, "generator": "tools/reference/make_op_fixtures.py"})


# ----------------------------------------------------------------------------- norms

NORM_INPUTS = {}


def make_norms(outdir):
    G = Group("norms")
    g = gen("norms", "group_norm")
    x, w, b = randn(g, 2, 32, 5, 6), randn(g, 32, scale=0.2, shift=1.0), randn(g, 32, scale=0.2)
    NORM_INPUTS["group_norm"] = (x, w, b)
    G.case("group_norm", {"num_groups": 8, "eps": 1e-6, "affine": True}, x=x, weight=w, bias=b,
           out=F.group_norm(x, 8, w, b, 1e-6))
    g = gen("norms", "group_norm_b")
    x = randn(g, 1, 64, 3, 3, scale=2.0, shift=3.0)
    G.case("group_norm_b", {"num_groups": 32, "eps": 1e-5, "affine": False}, x=x,
           out=F.group_norm(x, 32, None, None, 1e-5))
    g = gen("norms", "layer_norm")
    x, w, b = randn(g, 2, 7, 32), randn(g, 32, scale=0.2, shift=1.0), randn(g, 32, scale=0.2)
    G.case("layer_norm", {"normalized_shape": [32], "eps": 1e-5}, x=x, weight=w, bias=b,
           out=F.layer_norm(x, (32,), w, b, 1e-5))
    g = gen("norms", "rms_norm")
    x, w = randn(g, 2, 7, 32), randn(g, 32, scale=0.2, shift=1.0)
    G.case("rms_norm", {"normalized_shape": [32], "eps": 1e-6}, x=x, weight=w,
           out=F.rms_norm(x, (32,), w, 1e-6))
    G.save(outdir, {"versions": VERSIONS, "generator": "tools/reference/make_op_fixtures.py"})


# ----------------------------------------------------------------------------- linalg

LINALG_INPUTS = {}


def make_linalg(outdir):
    G = Group("linalg")
    g = gen("linalg", "linear")
    x, w, b = randn(g, 2, 5, 16), randn(g, 24, 16, scale=0.25), randn(g, 24, scale=0.1)
    LINALG_INPUTS["linear"] = (x, w, b)
    G.case("linear", {"op": "F.linear(x, weight, bias)"}, x=x, weight=w, bias=b,
           out=F.linear(x, w, b))
    g = gen("linalg", "linear_nobias")
    x, w = randn(g, 2, 5, 16), randn(g, 24, 16, scale=0.25)
    G.case("linear_nobias", {"op": "F.linear(x, weight)"}, x=x, weight=w, out=F.linear(x, w))
    g = gen("linalg", "matmul_batched")
    a, b = randn(g, 3, 7, 9), randn(g, 3, 9, 5)
    LINALG_INPUTS["matmul_batched"] = (a, b)
    G.case("matmul_batched", {"op": "a @ b"}, a=a, b=b, out=a @ b)
    g = gen("linalg", "matmul_bcast")
    a, b = randn(g, 2, 3, 7, 9), randn(g, 9, 5)
    G.case("matmul_bcast", {"op": "a @ b"}, a=a, b=b, out=a @ b)
    g = gen("linalg", "matmul_transposed")
    a, b = randn(g, 4, 6, 8), randn(g, 4, 10, 8)
    G.case("matmul_transposed", {"op": "a @ b.transpose(-1, -2)", "b_transposed": True,
                                 "note": "b is stored untransposed, shape [4,10,8]"},
           a=a, b=b, out=a @ b.transpose(-1, -2))

    def conv(case, wshape, stride, padding, bias=True):
        g = gen("linalg", case)
        x = randn(g, 2, 6, 9, 11)
        fan_in = wshape[1] * wshape[2] * wshape[3]
        w = randn(g, *wshape, scale=fan_in ** -0.5)
        b = randn(g, wshape[0], scale=0.1) if bias else None
        out = F.conv2d(x, w, b, stride=stride, padding=padding)
        params = {"stride": stride, "padding": padding, "dilation": 1, "groups": 1, "bias": bias}
        extra = {"bias": b} if bias else {}
        if case == "conv_s1p1":
            LINALG_INPUTS[case] = (x, w, b)
        G.case(case, params, x=x, weight=w, out=out, **extra)

    conv("conv_s1p1", (8, 6, 3, 3), 1, 1)
    conv("conv_s2p1", (8, 6, 3, 3), 2, 1)
    conv("conv_1x1", (8, 6, 1, 1), 1, 0)
    conv("conv_p0", (8, 6, 3, 3), 1, 0)
    conv("conv_nobias", (8, 6, 3, 3), 1, 1, bias=False)
    G.save(outdir, {"versions": VERSIONS, "generator": "tools/reference/make_op_fixtures.py"})


# ----------------------------------------------------------------------------- attention

ATTN_INPUTS = {}


def sdpa_ref64(q, k, v, mask=None, scale=None, causal=False):
    q, k, v = q.double(), k.double(), v.double()
    s = q.shape[-1] ** -0.5 if scale is None else scale
    logits = q @ k.transpose(-1, -2) * s
    if mask is not None:
        logits = logits + mask.double()
    if causal:
        L, S = logits.shape[-2:]
        logits = logits.masked_fill(torch.ones(L, S, dtype=torch.bool).tril().logical_not(), -math.inf)
    return torch.softmax(logits, -1) @ v


def make_attention(outdir):
    G = Group("attention")

    def add(case, q, k, v, params, mask=None, scale=None, causal=False):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, is_causal=causal)
        ref = sdpa_ref64(q, k, v, mask, scale, causal)
        err = (out.double() - ref).abs().max().item()
        print(f"  attention/{case}: max |torch - float64 math| = {err:.3g}")
        assert err < 1e-4
        extra = {"mask": mask} if mask is not None else {}
        p = dict(params, scale=scale, is_causal=causal, dropout_p=0.0,
                 default_scale="1/sqrt(head_dim) when scale is null")
        G.case(case, p, q=q, k=k, v=v, out=out, **extra)

    g = gen("attention", "sdpa")
    q, k, v = randn(g, 2, 4, 37, 16), randn(g, 2, 4, 29, 16), randn(g, 2, 4, 29, 16)
    add("sdpa", q, k, v, {})
    g = gen("attention", "sdpa_mask")
    q, k, v = randn(g, 2, 4, 37, 16), randn(g, 2, 4, 29, 16), randn(g, 2, 4, 29, 16)
    i = torch.arange(37).view(37, 1)
    j = torch.arange(29).view(1, 29)
    masked = j > (i * 29) // 37 + 2
    mask = randn(g, 1, 1, 37, 29, scale=0.5)
    mask = mask.masked_fill(masked, torch.finfo(torch.float32).min)
    add("sdpa_mask", q, k, v, {"mask": "additive float32, shape [1,1,37,29], masked entries = "
                                        "torch.finfo(float32).min, others small random values"},
        mask=mask)
    g = gen("attention", "sdpa_scale")
    q, k, v = randn(g, 2, 4, 37, 16), randn(g, 2, 4, 29, 16), randn(g, 2, 4, 29, 16)
    add("sdpa_scale", q, k, v, {}, scale=0.3)
    g = gen("attention", "sdpa_d40")
    q, k, v = randn(g, 1, 2, 300, 40), randn(g, 1, 2, 300, 40), randn(g, 1, 2, 300, 40)
    ATTN_INPUTS["sdpa_d40"] = (q, k, v)
    add("sdpa_d40", q, k, v, {})
    g = gen("attention", "sdpa_causal")
    q, k, v = randn(g, 1, 2, 77, 64), randn(g, 1, 2, 77, 64), randn(g, 1, 2, 77, 64)
    add("sdpa_causal", q, k, v, {"causal_alignment": "top-left (square, so same as bottom-right)"},
        causal=True)
    G.save(outdir, {"versions": VERSIONS, "generator": "tools/reference/make_op_fixtures.py"})


# ----------------------------------------------------------------------------- bf16

def make_bf16(outdir):
    G = Group("bf16")
    bf = torch.bfloat16

    def add(case, params, fn, **inputs):
        ib = {k: v.to(bf) for k, v in inputs.items()}
        out = fn(**ib)
        ref = fn(**{k: v.float() for k, v in ib.items()})
        assert out.dtype == bf and ref.dtype == torch.float32
        err = (out.float() - ref).abs().max().item()
        ndiff = (out.float() != ref.to(bf).float()).sum().item()
        print(f"  bf16/{case}: max |bf16 out - f32 ref| = {err:.3g} (max |ref| {ref.abs().max().item():.3g});"
              f" {ndiff}/{out.numel()} elements differ from round_bf16(f32 ref)")
        G.case(case, dict(params, dtype="bfloat16",
                          out_f32ref="float32 computation on the bf16-rounded inputs"),
               out=out, out_f32ref=ref, **ib)

    x, w, b = LINALG_INPUTS["linear"]
    add("linear", {"op": "F.linear(x, weight, bias)", "source": "linalg/linear"},
        lambda x, weight, bias: F.linear(x, weight, bias), x=x, weight=w, bias=b)
    a, b2 = LINALG_INPUTS["matmul_batched"]
    add("matmul_batched", {"op": "a @ b", "source": "linalg/matmul_batched"},
        lambda a, b: a @ b, a=a, b=b2)
    x, w, b = LINALG_INPUTS["conv_s1p1"]
    add("conv_s1p1", {"stride": 1, "padding": 1, "dilation": 1, "groups": 1, "bias": True,
                      "source": "linalg/conv_s1p1"},
        lambda x, weight, bias: F.conv2d(x, weight, bias, stride=1, padding=1), x=x, weight=w, bias=b)
    q, k, v = ATTN_INPUTS["sdpa_d40"]
    add("sdpa_d40", {"scale": None, "is_causal": False, "source": "attention/sdpa_d40"},
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v), q=q, k=k, v=v)
    x, w, b = NORM_INPUTS["group_norm"]
    add("group_norm", {"num_groups": 8, "eps": 1e-6, "affine": True, "source": "norms/group_norm"},
        lambda x, weight, bias: F.group_norm(x, 8, weight, bias, 1e-6), x=x, weight=w, bias=b)
    x = unary_input(gen("elementwise", "silu"), [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 5.5, -5.5,
                                                 10.0, -10.0, 20.0, -20.0, 40.0, -40.0, 88.0,
                                                 -88.0, 1e-4, -1e-4])
    add("silu", {"formula": "x * sigmoid(x)", "source": "elementwise/silu"}, lambda x: F.silu(x), x=x)
    G.save(outdir, {"versions": VERSIONS, "generator": "tools/reference/make_op_fixtures.py",
                    "cpu_capability": torch.backends.cpu.get_cpu_capability()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/ops")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("versions:", VERSIONS, "cpu:", torch.backends.cpu.get_cpu_capability())
    make_dtypes(args.out)
    make_elementwise(args.out)
    make_norms(args.out)
    make_linalg(args.out)
    make_attention(args.out)
    make_bf16(args.out)


if __name__ == "__main__":
    main()
