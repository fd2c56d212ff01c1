# The preamble every reference script in tools/reference shares: offline mode, the version
# pins (checked on import), seeding and threads, the VERSIONS record that goes into the
# fixtures, and the few helpers more than one script uses. Import it before anything that
# imports diffusers or huggingface_hub (they read the offline variables at import time):
#
#   import pinned
#   pinned.setup()
#   VERSIONS = pinned.versions("numpy")
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
import struct
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_OFFLINE", "1")

import torch
import safetensors
from safetensors.torch import save_file
import diffusers

assert sys.version_info[:2] == (3, 11), sys.version
assert torch.__version__.startswith("2.15"), torch.__version__
assert diffusers.__version__ == "0.42.1", diffusers.__version__
assert safetensors.__version__.startswith("0.8"), safetensors.__version__

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
