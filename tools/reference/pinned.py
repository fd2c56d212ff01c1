# The preamble every reference script in tools/reference shares: offline mode, the version
# pins (checked on import), seeding and threads, the VERSIONS record that goes into the
# fixtures, and the few helpers more than one script uses. Import it before anything that
# imports diffusers or huggingface_hub (they read the offline variables at import time):
#
#   import pinned
#   pinned.setup()
#   VERSIONS = pinned.versions("numpy")
#   transformers = pinned.import_transformers()   # only in the scripts that use transformers
#
# Shared helpers: seeded inputs (gen, randn, default_init), recording Diffusers' randn_tensor
# (NoiseRecorder), writing files (save_file_ordered, save_checked, add_text_model_prefix,
# write_json, save_scheduler_config, folder_bytes), comparing tensors (bits, tensor_equal,
# state_equal), and facts more than one generator uses (SD15_SCHEDULER_CONFIG,
# DIFFUSERS_TEST_UNET, bytes_to_unicode).
#
# Pinned versions (the fixtures in Tests/Fixtures were produced with exactly these):
#   python 3.11, torch==2.15.0, diffusers==0.42.1, transformers==5.24.0,
#   accelerate==1.15.0, safetensors==0.8.0, numpy (2.x),
#   huggingface_hub (2.x, as pulled in by diffusers)
# Set up a virtual environment with them:
#   python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.15.0 diffusers==0.42.1 \
#       transformers==5.24.0 accelerate==1.15.0 safetensors==0.8.0 numpy pillow

import importlib
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_OFFLINE", "1")

import torch
import safetensors
from safetensors.torch import load_file, save_file
import diffusers

assert sys.version_info[:2] == (3, 11), sys.version
assert torch.__version__.startswith("2.15"), torch.__version__
assert diffusers.__version__ == "0.42.1", diffusers.__version__
assert safetensors.__version__.startswith("0.8"), safetensors.__version__
TRANSFORMERS_VERSION = "5.24.0"  # checked by import_transformers()

# the repository root (this file is tools/reference/pinned.py)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def setup(threads=2, threads_env=None, deterministic=False):
    """Seeds torch's global generator with 0 and sets the intra-op thread count: `threads`,
    or the integer in the environment variable `threads_env` when that is set.
    deterministic=True also turns on torch.use_deterministic_algorithms."""
    torch.manual_seed(0)
    n = int(os.environ.get(threads_env, str(threads))) if threads_env else threads
    torch.set_num_threads(n)
    if deterministic:
        torch.use_deterministic_algorithms(True)


def versions(*extra, python_micro=False):
    """{"torch", "diffusers", "safetensors", *extra (module names), "python"} -> version
    strings, in that order; python as "3.11", or "3.11.7" with python_micro=True."""
    v = {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "safetensors": safetensors.__version__,
    }
    for name in extra:
        v[name] = importlib.import_module(name).__version__
    v["python"] = ("%d.%d.%d" % sys.version_info[:3]) if python_micro else ("%d.%d" % sys.version_info[:2])
    return v


def import_transformers():
    """transformers, after checking its pin (imported here, not above: most scripts do not use it)."""
    import transformers
    assert transformers.__version__ == TRANSFORMERS_VERSION, transformers.__version__
    return transformers


# ----------------------------------------------------------------------------- seeded inputs

def gen(name):
    """A torch.Generator seeded with crc32 of `name`: every input has its own stream, so adding
    one never changes the others."""
    g = torch.Generator()
    g.manual_seed(zlib.crc32(name.encode()))
    return g


def randn(name, *shape, scale=1.0):
    """float32 standard normal draws of `shape` from gen(name), times `scale`."""
    return torch.randn(*shape, generator=gen(name), dtype=torch.float32) * scale


def default_init(factory, *args, **kwargs):
    """factory(*args, **kwargs) under torch.manual_seed(0): the libraries' default
    initialisation, the same on every run."""
    torch.manual_seed(0)
    return factory(*args, **kwargs)


class NoiseRecorder:
    """Context manager: wraps randn_tensor in each of the given modules (Diffusers' scheduler or
    pipeline modules; None entries are skipped) and records every tensor it returns, in order:
    `drawn` holds the tensors, `sources` the name of the module that drew each."""

    def __init__(self, *modules):
        self.modules = [m for m in modules if m is not None]
        self.drawn = []
        self.sources = []

    def __enter__(self):
        self.origs = [m.randn_tensor for m in self.modules]
        for m, orig in zip(self.modules, self.origs):
            def wrapped(*args, _orig=orig, _name=m.__name__, **kwargs):
                t = _orig(*args, **kwargs)
                self.drawn.append(t.detach().clone())
                self.sources.append(_name)
                return t
            m.randn_tensor = wrapped
        return self

    def __exit__(self, *exc):
        for m, orig in zip(self.modules, self.origs):
            m.randn_tensor = orig


# ----------------------------------------------------------------------------- safetensors files

def read_header(path):
    """(header length in bytes, parsed header dict in file order) of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


def save_file_ordered(tensors, path, metadata):
    """safetensors' save_file, then the header rewritten with the __metadata__ keys in the
    order of `metadata` (same bytes, same length; tensor entries and data untouched).
    safetensors (Rust) writes __metadata__ from a HashMap, i.e. in a random key order on
    every run, so without this a file with two or more metadata keys is not reproducible.
    Readers must not depend on metadata key order."""
    save_file(tensors, path, metadata=metadata)
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    stripped = data[8:8 + n].rstrip(b" ")
    header = json.loads(stripped)  # dict keeps file order of the tensor entries
    meta = header.pop("__metadata__", None)
    new = {}
    if meta is not None:
        assert set(meta) == set(metadata), (sorted(meta), sorted(metadata))
        new["__metadata__"] = {k: meta[k] for k in metadata}
    new.update(header)
    s = json.dumps(new, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert len(s) == len(stripped), (len(s), len(stripped))
    with open(path, "wb") as f:
        f.write(data[:8] + s + b" " * (n - len(s)) + data[8 + n:])


def save_checked(tensors, path, metadata):
    """Writes `tensors` (made contiguous) with save_file_ordered and reads the file back: the
    same names and bit-identical tensors, or AssertionError. Returns the tensors as written."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file_ordered(tensors, path, metadata)
    assert state_equal(load_file(path), tensors), path
    return tensors


def add_text_model_prefix(path):
    """Rewrites a CLIPTextModel model.safetensors with the "text_model." key prefix. transformers 5
    writes the keys without it; every SD 1.x/2.x checkpoint on the hub has it (and transformers 4
    wrote it); transformers 5 loads both layouts."""
    sd = load_file(path)
    assert not any(k.startswith("text_model.") for k in sd)
    save_file({"text_model." + k: v for k, v in sd.items()}, path, metadata={"format": "pt"})


# ----------------------------------------------------------------------------- other files

def write_json(path, obj, indent=2, sort_keys=False):
    """json.dump (ASCII) with a final newline."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=sort_keys)
        f.write("\n")


def save_scheduler_config(sched, folder):
    """folder/scheduler_config.json: Diffusers' save_config of the scheduler, written into a
    temporary folder and copied from there."""
    with tempfile.TemporaryDirectory() as d:
        sched.save_config(d)
        shutil.copyfile(os.path.join(d, "scheduler_config.json"), os.path.join(folder, "scheduler_config.json"))


def folder_bytes(folder):
    """Total size in bytes of the files below `folder`."""
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


# ----------------------------------------------------------------------------- comparing tensors

def bits(t):
    """The tensor's bytes as uint8 (bool tensors as they are), for bit-exact comparison."""
    t = t.contiguous()
    return t if t.dtype == torch.bool else t.view(torch.uint8)


def tensor_equal(a, b):
    """Same dtype, same shape and the same bytes."""
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and torch.equal(bits(a), bits(b))


def state_equal(a, b):
    """Two name -> tensor dicts with the same names and bit-identical tensors."""
    return set(a) == set(b) and all(tensor_equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- shared facts

# SD 1.5's scheduler config lives with the other SD 1.5 configs; re-exported for the generators.
from sd15_configs import SD15_SCHEDULER_CONFIG  # noqa: E402,F401

# The UNet2DConditionModel of Diffusers' older unit tests (1.43M parameters); the tiny fixture
# UNets are this with a few arguments changed: dict(DIFFUSERS_TEST_UNET, layers_per_block=1, ...)
DIFFUSERS_TEST_UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
)


def bytes_to_unicode():
    """GPT-2's / CLIP's reversible byte -> unicode character table, in CLIP's order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))
