#!/usr/bin/env python3
# Writes a FLUX.1-dev-shaped pipeline folder with RANDOM bfloat16 weights, laid out as the hub's
# black-forest-labs/FLUX.1-dev is, for memory/speed benchmarks of the Swift port beside Diffusers.
# At full depth that is about 33.7 GB: transformer 11,901,408,320 parameters (schnell
# 11,891,178,560), T5-v1.1-XXL encoder 4,762,310,656, CLIP-L text encoder 123,060,480, VAE
# 83,819,683 (models-sdxl-flux.md sections 4-10). Not run in CI; its output is NOT committed.
#
# No model is ever held in memory. Each component is built by its Diffusers/transformers class on
# the meta device only to learn its tensor names and shapes (and, at full depth, to assert the
# parameter counts above); the safetensors files are then written by this script, header first
# and then the data chunk by chunk, straight from a shared pool of random bf16 values.
#
# Pinned versions: pinned.py. Run from the repository root (needs Tests/Fixtures/tokenizer and
# Tests/Fixtures/t5-tokenizer/tokenizer):
#   /path/to/venv/bin/python tools/reference/make_flux_random.py DIR [--schnell]
#       [--dual N --single M --t5-layers K] [--check [--check-whole]] [--check-only]
# e.g. the reduced-depth folder for side-by-side speed runs (both engines fit in RAM, 7.33 GB):
#   ... make_flux_random.py /var/tmp/flux-small --dual 4 --single 8 --t5-layers 4 --check
# and the full one (33.74 GB; its --check reads the headers and the small tensors only, the
# model does not fit a 24 GiB machine):  ... make_flux_random.py /var/tmp/flux-dev-random --check
# --check-only checks an existing DIR (the same arguments it was written with).
# Measured on the 2-core, 24 GiB development machine: peak RSS 1.1 GiB while writing (torch,
# Diffusers and transformers themselves, a 256 MiB pool and a 32 MiB chunk); the writing is bound
# by the disk: full folder 101 s (2 min with start-up and --check), reduced folder 25 s. --check
# on the reduced folder: 40 s, peak RSS 5.9 GiB, nearly all of it the checkpoint files that
# safetensors maps (clean file pages; anonymous memory peaks at 0.7 GiB).
#
# DIR gets (written into DIR.partial, renamed to DIR at the end; removed again on any failure;
# DIR must not exist):
#   model_index.json   FluxPipeline, the hub's entries (tokenizer_2 "T5TokenizerFast", an alias
#                      of T5Tokenizer in transformers 5) plus image_encoder/feature_extractor
#                      [null, null], which FluxPipeline.save_pretrained writes in Diffusers 0.42.1
#   transformer/       FLUX.1-dev's config.json (guidance_embeds false with --schnell; num_layers /
#                      num_single_layers from --dual / --single); shards of at most 10 GB in
#                      state_dict order, as Diffusers' save_pretrained splits them (huggingface_hub's
#                      split_state_dict_into_shards_factory): 3 files at full depth,
#                      diffusion_pytorch_model-0000i-of-00003.safetensors + .safetensors.index.json
#   text_encoder_2/    T5EncoderModel, FLUX's google/t5-v1_1-xxl config (d_model 4096, d_kv 64,
#                      64 heads, d_ff 10240, 24 layers or --t5-layers, gated-gelu, vocab 32128);
#                      shards of at most 5 GB (transformers 4's default, the hub's layout): 2 files
#                      at full depth, model-0000i-of-00002.safetensors + model.safetensors.index.json;
#                      transformers 5's keys: shared.weight only (encoder.embed_tokens.weight is tied)
#   text_encoder/      CLIPTextModel, CLIP ViT-L/14 text config; keys with the "text_model." prefix
#   vae/               FLUX's AutoencoderKL config (16 latent channels, no quant convs, scaling
#                      0.3611, shift 0.1159, sample_size 1024, force_upcast true)
#   tokenizer/         make_sd15_random.py's tokenizer padded to CLIP's 49408 entries
#   tokenizer_2/       a copy of Tests/Fixtures/t5-tokenizer/tokenizer (the repository's trained
#                      Unigram T5 tokenizer; its ids are below 32128)
#   scheduler/         FLUX.1-dev's FlowMatchEulerDiscreteScheduler config (schnell: shift 1.0,
#                      use_dynamic_shifting false)
# A component whose weights fit one shard gets a single model.safetensors /
# diffusion_pytorch_model.safetensors and no index, as save_pretrained writes it (at reduced depth
# the transformer and T5 do). Configs are the hub's files as data (sorted keys), as
# models-sdxl-flux.md and third-party copies of FLUX.1-dev's files give them (no hub access here).
#
# Values (deterministic: the same arguments give identical bytes). A pool of 2^27 bf16 values is
# drawn once from numpy's PCG64 (a fixed seed) as float32 uniform on [-1, 1) and rounded to bf16
# (round to nearest even, torch's conversion). Every tensor reads the pool from its own offset
# (crc32 of "component/name" mod 2^27, wrapping round), times its own bf16 scale (a bf16 x bf16
# product rounded to bf16, the same on every machine):
#   Linear and Conv2d weights and biases   scale 1/sqrt(fan_in), i.e. uniform(+-1/sqrt(fan_in)):
#                                          PyTorch's default initialisation of those layers
#   Embedding tables (T5 shared and relative_attention_bias, CLIP token/position)   scale sqrt(3):
#                                          uniform with std 1
#   LayerNorm / GroupNorm / RMSNorm / T5LayerNorm   weights 1.0, biases 0.0
# Any other tensor stops the script. The pool (134M values) is larger than the largest tensor
# (T5's shared.weight, 131.6M), so no tensor repeats a value pattern within itself.
#
# --check then, for each component, opens every shard with safetensors.safe_open: the keys,
# shapes and dtype equal the meta model's (tied duplicates dropped), the index's weight_map names
# the shard that holds each key, metadata.total_size is the bytes of all tensors, each file's
# size is its header plus its data; every tensor of at most 4M values is read back and checked
# (finite, inside its bound, norms exactly 1 and 0). At reduced depth only (never the full
# folder: it does not fit in RAM), it runs FluxPipeline in bf16: 1 step at 256x256 with
# max_sequence_length 64, asserting finite latents and image, after checking that each loaded
# component holds the files' tensors (CLIP's prefixed keys and T5's tied embedding taken). To stay inside ~6 GB of RAM it loads
# the pipeline twice from DIR: text encoders and tokenizers only, for encode_prompt; then
# transformer, VAE and scheduler, called with those prompt embeddings. --check-whole loads the
# whole pipeline at once and calls it with the prompt instead (peak RSS 7.5 GiB, 6.8 GiB of it
# mapped file pages; the same latents and image as the two loads).

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import time
import zlib

import pinned  # first: offline mode and version pins before diffusers is imported
import numpy as np
import torch
from diffusers import AutoencoderKL, FluxPipeline, FluxTransformer2DModel
from huggingface_hub.serialization import split_state_dict_into_shards_factory
from safetensors import safe_open

pinned.import_transformers()
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from make_sd15_random import padded_tokenizer
from sd15_configs import SD15_CLIP

T5_TOKENIZER = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures", "t5-tokenizer", "tokenizer")
HUB_VERSION = "0.30.0.dev0"  # the _diffusers_version of FLUX.1-dev's files

# black-forest-labs/FLUX.1-dev transformer/config.json
FLUX_TRANSFORMER = {
    "_class_name": "FluxTransformer2DModel", "_diffusers_version": HUB_VERSION, "attention_head_dim": 128,
    "guidance_embeds": True, "in_channels": 64, "joint_attention_dim": 4096, "num_attention_heads": 24,
    "num_layers": 19, "num_single_layers": 38, "patch_size": 1, "pooled_projection_dim": 768,
}
# FLUX.1-dev text_encoder_2/config.json (google/t5-v1_1-xxl, as a transformers 4.43 save writes it)
FLUX_T5 = {
    "_name_or_path": "google/t5-v1_1-xxl", "architectures": ["T5EncoderModel"], "classifier_dropout": 0.0,
    "d_ff": 10240, "d_kv": 64, "d_model": 4096, "decoder_start_token_id": 0, "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0,
    "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
    "num_decoder_layers": 24, "num_heads": 64, "num_layers": 24, "output_past": True, "pad_token_id": 0,
    "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "transformers_version": "4.43.3", "use_cache": True, "vocab_size": 32128,
}
# FLUX.1-dev text_encoder/config.json: openai/clip-vit-large-patch14's text config (= SD 1.5's)
FLUX_CLIP = dict(SD15_CLIP, _name_or_path="openai/clip-vit-large-patch14", architectures=["CLIPTextModel"],
                 model_type="clip_text_model", torch_dtype="bfloat16", transformers_version="4.43.3")
# FLUX.1-dev vae/config.json
FLUX_VAE = {
    "_class_name": "AutoencoderKL", "_diffusers_version": HUB_VERSION, "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True, "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None,
    "layers_per_block": 2, "mid_block_add_attention": True, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 1024, "scaling_factor": 0.3611, "shift_factor": 0.1159, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "use_post_quant_conv": False, "use_quant_conv": False,
}
# FLUX.1-dev scheduler/scheduler_config.json; schnell: shift 1.0, use_dynamic_shifting false
FLUX_SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": HUB_VERSION,
    "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15,
    "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True,
}
FLUX_MODEL_INDEX = {
    "_class_name": "FluxPipeline", "_diffusers_version": HUB_VERSION,
    "feature_extractor": [None, None], "image_encoder": [None, None],
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
EXPECTED_PARAMS = {"transformer": 11_901_408_320, "text_encoder_2": 4_762_310_656, "text_encoder": 123_060_480,
                   "vae": 83_819_683}
EXPECTED_PARAMS_SCHNELL_TRANSFORMER = 11_891_178_560

POOL_BITS = 27
POOL = 1 << POOL_BITS
POOL_SEED = zlib.crc32(b"make_flux_random pool")
CHUNK = 1 << 24  # values per write (32 MiB of bf16)
NORMS = ("LayerNorm", "GroupNorm", "RMSNorm", "T5LayerNorm")


# ----------------------------------------------------------------------------- the components

def transformer_config(args):
    return dict(FLUX_TRANSFORMER, guidance_embeds=not args.schnell, num_layers=args.dual, num_single_layers=args.single)


def t5_config(args):
    return dict(FLUX_T5, num_layers=args.t5_layers, num_decoder_layers=args.t5_layers)


def meta_models(args):
    """The four models built on the meta device from the configs."""
    with torch.device("meta"):
        transformer = FluxTransformer2DModel.from_config(transformer_config(args))
        text_encoder_2 = T5EncoderModel(T5Config.from_dict(t5_config(args)))
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_CLIP))
        vae = AutoencoderKL.from_config(FLUX_VAE)
    return {"transformer": transformer, "text_encoder_2": text_encoder_2, "text_encoder": text_encoder, "vae": vae}


def tensor_plan(component, model):
    """[(file key, shape, kind, scale)] in state_dict order, tied duplicates dropped (the first name
    of a shared parameter stays, as transformers 5 saves it: T5 keeps shared.weight)."""
    modules = dict(model.named_modules())
    seen = {}
    plan = []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            continue
        seen[id(tensor)] = name
        module_name, _, leaf = name.rpartition(".")
        kind_of = type(modules[module_name]).__name__
        shape = tuple(tensor.shape)
        if kind_of in ("Linear", "Conv2d"):
            fan_in = int(np.prod(modules[module_name].weight.shape[1:]))
            kind, scale = "uniform", 1.0 / fan_in ** 0.5
        elif kind_of == "Embedding":
            kind, scale = "uniform", 3.0 ** 0.5
        elif kind_of in NORMS and leaf == "weight":
            kind, scale = "ones", None
        elif kind_of in NORMS and leaf == "bias":
            kind, scale = "zeros", None
        else:
            raise ValueError(f"{component}: no rule for {name} ({kind_of}, {shape})")
        key = ("text_model." + name) if component == "text_encoder" else name
        plan.append((key, shape, kind, scale))
    if component == "text_encoder_2":
        tied = set(getattr(model, "_tied_weights_keys", None) or {})
        assert {k for k, *_ in plan} == set(model.state_dict()) - tied, "T5: tied keys"
    return plan


SHARDING = {  # component -> (weights file pattern, max shard size)
    "transformer": ("diffusion_pytorch_model{suffix}.safetensors", "10GB"),
    "vae": ("diffusion_pytorch_model{suffix}.safetensors", "10GB"),
    "text_encoder_2": ("model{suffix}.safetensors", "5GB"),
    "text_encoder": ("model{suffix}.safetensors", "5GB"),
}


def shard(component, plan):
    pattern, max_size = SHARDING[component]
    split = split_state_dict_into_shards_factory(
        {key: shape for key, shape, *_ in plan}, get_storage_size=lambda shape: 2 * int(np.prod(shape)),
        filename_pattern=pattern, max_shard_size=max_size)
    return split


# ----------------------------------------------------------------------------- writing

class Pool:
    """2^27 bf16 values, uniform on [-1, 1), from numpy's PCG64 with a fixed seed."""

    def __init__(self):
        rng = np.random.Generator(np.random.PCG64(POOL_SEED))
        self.values = torch.empty(POOL, dtype=torch.bfloat16)
        for start in range(0, POOL, CHUNK):
            draw = rng.random(CHUNK, dtype=np.float32)
            draw *= 2
            draw -= 1
            self.values[start:start + CHUNK] = torch.from_numpy(draw).to(torch.bfloat16)
        self.buffer = torch.empty(CHUNK, dtype=torch.bfloat16)
        self.ones = torch.ones(CHUNK, dtype=torch.bfloat16)
        self.zeros = torch.zeros(CHUNK, dtype=torch.bfloat16)

    def chunks(self, component, key, numel, kind, scale):
        """The tensor's values as bf16 tensors of at most CHUNK values, in order."""
        offset = zlib.crc32(f"{component}/{key}".encode()) % POOL
        factor = None if scale is None else torch.tensor(scale, dtype=torch.bfloat16)
        done = 0
        while done < numel:
            start = (offset + done) % POOL
            n = min(CHUNK, numel - done, POOL - start)
            if kind == "ones":
                yield self.ones[:n]
            elif kind == "zeros":
                yield self.zeros[:n]
            else:
                out = self.buffer[:n]
                torch.mul(self.values[start:start + n], factor, out=out)
                yield out
            done += n


def header_bytes(entries):
    """The safetensors header as safetensors writes it: tensors sorted by name with their data in
    that order, compact JSON, __metadata__ first, padded with spaces to a multiple of 8."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape, *_ in entries:
        size = 2 * int(np.prod(shape))
        header[key] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return len(text).to_bytes(8, "little") + text, offset


def write_safetensors(path, component, entries, pool):
    entries = sorted(entries, key=lambda e: e[0].encode())
    head, size = header_bytes(entries)
    with open(path, "wb") as f:
        f.write(head)
        for key, shape, kind, scale in entries:
            for chunk in pool.chunks(component, key, int(np.prod(shape)), kind, scale):
                f.write(memoryview(chunk.view(torch.uint8).numpy()))
        f.flush()
        os.fsync(f.fileno())
        # the data is on disk: drop it from the page cache rather than evict other work's files
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert os.path.getsize(path) == len(head) + size, path
    return size


def write_component(folder, component, plan, pool):
    split = shard(component, plan)
    by_key = {e[0]: e for e in plan}
    total = 0
    for filename, keys in split.filename_to_tensors.items():
        total += write_safetensors(os.path.join(folder, filename), component, [by_key[k] for k in keys], pool)
        print(f"  {component}/{filename}: {len(keys)} tensors", flush=True)
    assert total == split.metadata["total_size"]
    if split.is_sharded:
        index_name = SHARDING[component][0].format(suffix="") + ".index.json"
        with open(os.path.join(folder, index_name), "w", encoding="utf-8") as f:
            # as save_pretrained writes it (indent 2, sorted keys)
            f.write(json.dumps({"metadata": split.metadata, "weight_map": split.tensor_to_filename},
                               indent=2, sort_keys=True) + "\n")
    return total


def write_folder(out, args, plans):
    pool = Pool()
    print(f"pool of {POOL} bf16 values ready", flush=True)
    os.makedirs(out)
    pinned.write_json(os.path.join(out, "model_index.json"), FLUX_MODEL_INDEX, sort_keys=True)
    configs = {"transformer": transformer_config(args), "vae": FLUX_VAE, "text_encoder": FLUX_CLIP,
               "text_encoder_2": t5_config(args)}
    written = {}
    for component in ["text_encoder", "text_encoder_2", "transformer", "vae"]:
        folder = os.path.join(out, component)
        os.makedirs(folder)
        pinned.write_json(os.path.join(folder, "config.json"), configs[component], sort_keys=True)
        written[component] = write_component(folder, component, plans[component], pool)
    os.makedirs(os.path.join(out, "scheduler"))
    scheduler = dict(FLUX_SCHEDULER, shift=1.0, use_dynamic_shifting=False) if args.schnell else FLUX_SCHEDULER
    pinned.write_json(os.path.join(out, "scheduler", "scheduler_config.json"), scheduler, sort_keys=True)
    padded_tokenizer(os.path.join(out, "tokenizer"))
    shutil.copytree(T5_TOKENIZER, os.path.join(out, "tokenizer_2"))
    return written


# ----------------------------------------------------------------------------- checking

def check_files(folder, plans):
    for component, plan in plans.items():
        pattern, _ = SHARDING[component]
        path = os.path.join(folder, component)
        index_path = os.path.join(path, pattern.format(suffix="") + ".index.json")
        expected = {key: (shape, kind, scale) for key, shape, kind, scale in plan}
        total = sum(2 * int(np.prod(s)) for s, *_ in expected.values())
        if os.path.exists(index_path):
            with open(index_path) as f:
                index = json.load(f)
            assert set(index["weight_map"]) == set(expected), f"{component}: weight_map keys"
            assert index["metadata"]["total_size"] == total, (component, index["metadata"], total)
            files = sorted(set(index["weight_map"].values()))
        else:
            index = None
            files = [pattern.format(suffix="")]
        found = {}
        read = 0
        for filename in files:
            file_path = os.path.join(path, filename)
            header_length, head = pinned.read_header(file_path)
            with safe_open(file_path, "pt") as f:
                for key in f.keys():
                    assert key not in found, f"{component}: {key} twice"
                    tensor_slice = f.get_slice(key)
                    assert tensor_slice.get_dtype() == "BF16", (component, key)
                    found[key] = filename
                    shape, kind, scale = expected[key]
                    assert tuple(tensor_slice.get_shape()) == shape, (component, key)
                    if index is not None:
                        assert index["weight_map"][key] == filename, (component, key)
                    if int(np.prod(shape)) <= 4 << 20:
                        t = f.get_tensor(key).float()
                        assert bool(torch.isfinite(t).all()), (component, key)
                        if kind == "ones":
                            assert bool((t == 1).all()), (component, key)
                        elif kind == "zeros":
                            assert bool((t == 0).all()), (component, key)
                        else:
                            assert float(t.abs().max()) <= scale * 1.01, (component, key)
                        read += 1
            end = max(v["data_offsets"][1] for k, v in head.items() if k != "__metadata__")
            assert os.path.getsize(file_path) == 8 + header_length + end, file_path
        assert set(found) == set(expected), f"{component}: keys"
        print(f"check {component}: {len(found)} tensors in {len(files)} file(s), {total} bytes; "
              f"{read} small tensors read back", flush=True)


def file_tensor(folder, component, key):
    """One tensor as the files hold it (through the index when there is one)."""
    pattern, _ = SHARDING[component]
    index_path = os.path.join(folder, component, pattern.format(suffix="") + ".index.json")
    filename = pattern.format(suffix="")
    if os.path.exists(index_path):
        with open(index_path) as f:
            filename = json.load(f)["weight_map"][key]
    with safe_open(os.path.join(folder, component, filename), "pt") as f:
        return f.get_tensor(key)


def check_loaded(folder, pipe):
    """The loaded components hold the files' tensors: CLIP's "text_model." keys and T5's tied
    embedding (shared.weight only in the file) were taken, not initialised afresh."""
    pairs = []
    if pipe.text_encoder is not None:
        pairs += [(pipe.text_encoder.get_input_embeddings().weight, "text_encoder", "text_model.embeddings.token_embedding.weight"),
                  (pipe.text_encoder.state_dict()["final_layer_norm.weight"], "text_encoder", "text_model.final_layer_norm.weight")]
    if pipe.text_encoder_2 is not None:
        pairs += [(pipe.text_encoder_2.encoder.embed_tokens.weight, "text_encoder_2", "shared.weight"),
                  (pipe.text_encoder_2.shared.weight, "text_encoder_2", "shared.weight")]
    if pipe.transformer is not None:
        pairs += [(pipe.transformer.proj_out.weight, "transformer", "proj_out.weight")]
    if pipe.vae is not None:
        pairs += [(pipe.vae.decoder.conv_in.weight, "vae", "decoder.conv_in.weight")]
    for loaded, component, key in pairs:
        assert loaded.dtype == torch.bfloat16 and torch.equal(loaded, file_tensor(folder, component, key)), (component, key)


def check_pipeline(folder, whole):
    dtype = torch.bfloat16
    prompt = "a red circle on a blue square"
    t0 = time.time()
    latents_seen = []

    def on_step(p, i, t, kw):
        latents_seen.append(kw["latents"].detach().float().clone())
        return kw

    call = dict(height=256, width=256, num_inference_steps=1, guidance_scale=3.5, max_sequence_length=64,
                generator=torch.Generator().manual_seed(0), output_type="np", callback_on_step_end=on_step)
    with torch.no_grad():
        if whole:
            pipe = FluxPipeline.from_pretrained(folder, dtype=dtype)
            check_loaded(folder, pipe)
            img = pipe(prompt, **call).images
        else:
            text = FluxPipeline.from_pretrained(folder, transformer=None, vae=None, dtype=dtype)
            check_loaded(folder, text)
            prompt_embeds, pooled, _ = text.encode_prompt(prompt, prompt_2=None, max_sequence_length=64)
            assert prompt_embeds.shape == (1, 64, 4096) and pooled.shape == (1, 768), (prompt_embeds.shape, pooled.shape)
            assert bool(torch.isfinite(prompt_embeds.float()).all() and torch.isfinite(pooled.float()).all())
            del text
            pipe = FluxPipeline.from_pretrained(folder, text_encoder=None, text_encoder_2=None, tokenizer=None,
                                                tokenizer_2=None, dtype=dtype)
            check_loaded(folder, pipe)
            img = pipe(prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled, **call).images
    assert len(latents_seen) == 1 and bool(torch.isfinite(latents_seen[0]).all()), "latents"
    assert img.shape == (1, 256, 256, 3) and bool(np.isfinite(img).all()), img.shape
    print(f"check pipeline ({'whole' if whole else 'in two loads'}): 1 step at 256x256, max_sequence_length 64, "
          f"in {time.time() - t0:.1f} s (loads included); latents std {float(latents_seen[0].std()):.4f}, "
          f"image mean {img.mean():.4f}", flush=True)


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--schnell", action="store_true", help="FLUX.1-schnell: no guidance embedder, shift 1.0")
    ap.add_argument("--dual", type=int, default=19, help="transformer num_layers (dual-stream blocks)")
    ap.add_argument("--single", type=int, default=38, help="transformer num_single_layers")
    ap.add_argument("--t5-layers", type=int, default=24, help="T5 encoder num_layers")
    ap.add_argument("--check", action="store_true", help="check the files; at reduced depth also run one step")
    ap.add_argument("--check-whole", action="store_true", help="with --check: load the pipeline at once")
    ap.add_argument("--check-only", action="store_true", help="check an existing DIR written with the same arguments")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    pinned.setup(threads=args.threads)
    out = os.path.abspath(args.dir)
    full = (args.dual, args.single, args.t5_layers) == (19, 38, 24)
    t0 = time.time()

    models = meta_models(args)
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    print("parameters:", params, "total", sum(params.values()), flush=True)
    if full:
        expected = dict(EXPECTED_PARAMS)
        if args.schnell:
            expected["transformer"] = EXPECTED_PARAMS_SCHNELL_TRANSFORMER
        assert params == expected, (params, expected)
    plans = {name: tensor_plan(name, m) for name, m in models.items()}
    for name, plan in plans.items():
        assert sum(int(np.prod(s)) for _, s, *_ in plan) == params[name], name
    del models

    if not args.check_only:
        if os.path.exists(out):
            sys.exit(f"{out} exists; remove it first")
        partial = out + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        # SIGTERM (and SIGINT, which a background job may have ignored) raise, so the cleanup runs
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            written = write_folder(partial, args, plans)
            os.rename(partial, out)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        total = pinned.folder_bytes(out)
        print(f"wrote {out}: {total / 1e9:.2f} GB ({', '.join(f'{k} {v / 1e9:.3f} GB' for k, v in written.items())}) "
              f"in {time.time() - t0:.1f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB",
              flush=True)

    if args.check or args.check_only:
        t1 = time.time()
        check_files(out, plans)
        print(f"file checks in {time.time() - t1:.1f} s", flush=True)
        if not full:
            check_pipeline(out, args.check_whole)
        else:
            print("full depth: no pipeline run (it does not fit in RAM here)")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
