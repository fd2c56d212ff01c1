#!/usr/bin/env python3
# Writes a Stable Diffusion 1.5-shaped pipeline folder with RANDOM float32 weights: the real SD 1.5
# component configurations (UNet 859.5M, VAE 83.7M, CLIP ViT-L/14 text encoder 123.1M parameters,
# about 1.07B in all, ~4.3 GB on disk) for memory/speed benchmarks of the Swift port. Not run in CI;
# its output is NOT committed.
#
# Pinned versions: see pinned.py (the same environment as the other scripts in tools/reference).
# Run from the repository root (needs Tests/Fixtures/tokenizer from make_tokenizer_fixtures.py):
#   /path/to/venv/bin/python tools/reference/make_sd15_random.py DIR [--no-check]
# Peak RSS about 5 GB (1.2x the weights); writing takes under a minute.
#
# DIR gets, like runwayml/stable-diffusion-v1-5 (minus safety_checker/feature_extractor):
#   model_index.json                  StableDiffusionPipeline, safety_checker/feature_extractor null
#   unet/config.json, diffusion_pytorch_model.safetensors   SD 1.5's UNet config
#   vae/config.json,  diffusion_pytorch_model.safetensors   SD 1.5's VAE config
#   text_encoder/config.json, model.safetensors             CLIP ViT-L/14 text config (vocab 49408),
#                                     keys with the "text_model." prefix as on the hub
#   tokenizer/ vocab.json (49408 entries), merges.txt (48894 merges), tokenizer_config.json,
#              special_tokens_map.json: the small generated tokenizer of Tests/Fixtures/tokenizer
#              padded to CLIP-L's size: ids 0..511 the byte tokens, 512..997 the 486 real merges,
#              then 48408 filler merges built only from the byte characters of ASCII control bytes
#              and space (0x00-0x20, 0x7F: they never fire on text without control characters), then
#              <|startoftext|> 49406 and <|endoftext|> 49407 -- CLIP-L's special ids.
#   scheduler/scheduler_config.json   SD 1.5's PNDM config exactly as on the hub
# Weights: the libraries' default initialisation under torch.manual_seed(0) (no rescaling).
# Then (unless --no-check) it loads DIR with StableDiffusionPipeline.from_pretrained and runs one
# step at 64x64 to prove the folder works. --bench (a separate process is best: peak RSS is the
# process's) instead only loads DIR and times Diffusers on it, 512x512, 2 steps, guidance 7.5,
# printing load time, each step's time (UNet on the CFG batch of 2 + scheduler step), VAE decode
# time and the process's peak RSS -- the Diffusers side of BENCHMARKS.md:
#   python tools/reference/make_sd15_random.py DIR --bench [--threads N] [--size PX] [--steps N] [--dtype f32|bf16]

import argparse
import json
import os
import shutil
import time

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import SD15_SCHEDULER_CONFIG as SD15_SCHEDULER, bytes_to_unicode, default_init
import torch
import diffusers
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

pinned.import_transformers()
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

SMALL_TOKENIZER = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures", "tokenizer")

from sd15_configs import EXPECTED_PARAMS, SD15_CLIP, SD15_UNET, SD15_VAE
CLIP_VOCAB = 49408


def padded_tokenizer(out):
    """The small tokenizer padded to CLIP-L's 49408 entries with merges that never fire on text
    without control characters."""
    with open(os.path.join(SMALL_TOKENIZER, "vocab.json"), encoding="utf-8") as f:
        small = json.load(f)
    with open(os.path.join(SMALL_TOKENIZER, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[0].startswith("#version")
    merges = [tuple(l.split(" ")) for l in lines[1:] if l]
    specials = ["<|startoftext|>", "<|endoftext|>"]
    tokens = [t for t, _ in sorted(small.items(), key=lambda kv: kv[1]) if t not in specials]
    assert len(tokens) == 512 + len(merges)
    have = set(tokens)
    b2u = bytes_to_unicode()
    # ASCII control bytes and space: never inside UTF-8 multi-byte sequences, and the pre-tokenizer
    # drops whitespace, so these merges only ever fire on text with control characters
    rare = [b2u[b] for b in list(range(0x00, 0x21)) + [0x7F]]
    need = CLIP_VOCAB - 2 - len(tokens)
    grow = list(rare)  # tokens that filler merges extend
    i = 0
    while need > 0:
        left = grow[i]
        for c in rare:
            for right in (c, c + "</w>"):
                new = left + right
                if need > 0 and new not in have:
                    merges.append((left, right))
                    tokens.append(new)
                    have.add(new)
                    if not right.endswith("</w>"):
                        grow.append(new)
                    need -= 1
        i += 1
    tokens += specials
    assert len(tokens) == CLIP_VOCAB and len(set(tokens)) == CLIP_VOCAB
    assert len(merges) == CLIP_VOCAB - 256 * 2 - 2 == 48894
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(tokens)}, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    for fn in ["tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copyfile(os.path.join(SMALL_TOKENIZER, fn), os.path.join(out, fn))
    tok = CLIPTokenizer.from_pretrained(out)
    assert len(tok) == CLIP_VOCAB and tok.bos_token_id == 49406 and tok.eos_token_id == 49407, (
        len(tok), tok.bos_token_id, tok.eos_token_id)
    small_tok = CLIPTokenizer.from_pretrained(SMALL_TOKENIZER)
    remap = {998: 49406, 999: 49407}
    for text in ["a red circle", "A painting of a squirrel eating a burger!", "caf\u00e9 \u5706 2024 \U0001F431"]:
        assert tok(text).input_ids == [remap.get(i, i) for i in small_tok(text).input_ids], text
    return tok


def count(m):
    return sum(p.numel() for p in m.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--no-check", action="store_true", help="skip loading the folder and running one step")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bench", action="store_true", help="only time Diffusers on an existing DIR (512x512, 2 steps)")
    ap.add_argument("--size", type=int, default=512, help="--bench: image side in pixels")
    ap.add_argument("--steps", type=int, default=2, help="--bench: denoising steps")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32", help="--bench: torch_dtype of the pipeline")
    ap.add_argument("--batch", type=int, default=1, help="--bench: images per prompt")
    ap.add_argument("--profile", action="store_true", help="--bench: add a per-op-class profile (op_profile.py)")
    ap.add_argument("--guidance", type=float, default=7.5, help="--bench: guidance scale")
    args = ap.parse_args()
    pinned.setup(threads=args.threads)
    if args.bench:
        return bench(args.dir, args.threads, size=args.size, steps=args.steps, dtype=args.dtype, batch=args.batch,
                     profile=args.profile, guidance=args.guidance)
    t0 = time.time()

    tokenizer = padded_tokenizer(os.path.join(args.dir, "tokenizer.tmp"))
    unet = default_init(UNet2DConditionModel, **SD15_UNET)
    vae = default_init(AutoencoderKL, **SD15_VAE)
    text_encoder = default_init(CLIPTextModel, CLIPTextConfig(**SD15_CLIP))
    params = {"unet": count(unet), "vae": count(vae), "text_encoder": count(text_encoder)}
    print("parameters:", params, "total", sum(params.values()))
    assert params == EXPECTED_PARAMS, params
    scheduler = PNDMScheduler.from_config(SD15_SCHEDULER)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(args.dir, safe_serialization=True)
    del pipe, unet, vae
    # tokenizer/: the padded files (not transformers 5's re-serialisation, which adds tokenizer.json)
    shutil.rmtree(os.path.join(args.dir, "tokenizer"))
    os.rename(os.path.join(args.dir, "tokenizer.tmp"), os.path.join(args.dir, "tokenizer"))
    # scheduler/: the hub file itself (no timestep_spacing / prediction_type keys)
    pinned.write_json(os.path.join(args.dir, "scheduler", "scheduler_config.json"), SD15_SCHEDULER)
    del text_encoder
    # text_encoder/: keys with the hub's "text_model." prefix
    pinned.add_text_model_prefix(os.path.join(args.dir, "text_encoder", "model.safetensors"))
    print(f"wrote {args.dir}: {pinned.folder_bytes(args.dir) / 1e9:.2f} GB in {time.time() - t0:.0f} s")

    if not args.no_check:
        t1 = time.time()
        pipe = StableDiffusionPipeline.from_pretrained(args.dir, safety_checker=None)
        assert isinstance(pipe.scheduler, PNDMScheduler)
        assert {k: count(getattr(pipe, k)) for k in params} == params
        t2 = time.time()
        with torch.no_grad():
            img = pipe("a red circle", height=64, width=64, num_inference_steps=1, guidance_scale=7.5,
                       generator=torch.Generator().manual_seed(0), output_type="np").images
        assert img.shape == (1, 64, 64, 3) and bool(((img >= 0) & (img <= 1)).all())
        print(f"check: loaded in {t2 - t1:.1f} s; 1 step at 64x64 (PNDM timesteps {pipe.scheduler.timesteps.tolist()}) "
              f"in {time.time() - t2:.1f} s; image {img.shape}, mean {img.mean():.4f}")


def bench(folder, threads, size=512, steps=2, dtype="f32", batch=1, profile=False, guidance=7.5):
    import contextlib
    import resource
    import op_profile
    sections = op_profile.Sections()
    t0 = time.time()
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    # The folder's own pipeline class (SD here; make_sdxl_random.py's SDXL folders bench through
    # this too), without a safety checker or a watermark.
    with open(os.path.join(folder, "model_index.json")) as f:
        class_name = json.load(f)["_class_name"]
    extra = {"add_watermarker": False} if "XL" in class_name else {"safety_checker": None}
    pipe = diffusers.DiffusionPipeline.from_pretrained(folder, torch_dtype=torch_dtype, **extra)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.time() - t0
    marks = []
    encoded = []
    orig_encode = pipe.encode_prompt

    def timed_encode(*a, **k):
        s0 = time.time()
        sections.enter("text_encoder")
        out = orig_encode(*a, **k)
        sections.enter(None)
        encoded.append(time.time() - s0)
        return out

    pipe.encode_prompt = timed_encode

    def on_step(p, i, t, kw):
        sections.enter(None)
        marks.append(time.time())
        return kw

    decoded = []
    orig_decode = pipe.vae.decode

    def timed_decode(*a, **k):
        s0 = time.time()
        sections.enter("vae_decode")
        out = orig_decode(*a, **k)
        sections.enter(None)
        decoded.append(time.time() - s0)
        return out

    pipe.vae.decode = timed_decode
    # Start-up figure: the wall-clock instant the first UNet call begins (the harness subtracts
    # the instant it launched this process).
    first_unet = []
    pipe.unet.register_forward_pre_hook(lambda module, args: first_unet.append(time.time()) if not first_unet else None)
    # A step's section runs from its UNet call to the end of its scheduler step, as ours.
    pipe.unet.register_forward_pre_hook(lambda module, args: sections.enter("unet_step" if marks else "unet_first_step"))
    profiler = (torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile
                else contextlib.nullcontext())
    with torch.no_grad(), profiler:
        t1 = time.time()
        img = pipe("a red circle", height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
                   num_images_per_prompt=batch, generator=torch.Generator().manual_seed(0), output_type="np", callback_on_step_end=on_step).images
        total = time.time() - t1
    starts = [t1] + marks[:-1]
    steps_s = [round(b - a, 3) for a, b in zip(starts, marks)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"diffusers": diffusers.__version__, "torch": torch.__version__, "threads": threads,
                      "size": size, "steps": steps, "batch": batch, "timesteps": pipe.scheduler.timesteps.tolist(),
                      "load_s": round(load_s, 3), "steps_s": steps_s,
                      "note": "steps_s[0] includes encode_prompt; one entry per scheduler timestep",
                      "text_encoder_s": round(encoded[0], 3), "dtype": dtype,
                      "vae_decode_s": round(decoded[0], 3), "total_s": round(total, 3),
                      "process_peak_rss_bytes": peak, "image_shape": list(img.shape),
                      "first_step_at": first_unet[0],
                      **({"profile": op_profile.summarise(profiler)} if profile else {})}, indent=1))


if __name__ == "__main__":
    main()
