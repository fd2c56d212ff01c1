#!/usr/bin/env python3
# Diffusers' own figures for the rows of BENCHMARKS.md's placement/offloading table, on a GPU:
# the SD 1.5-shaped pipeline (random weights, the real configurations of sd15_configs.py, CLIP
# text encoder included), 512x512, PNDM 2 steps (3 UNet calls on the CFG batch of 2), guidance
# 7.5, in float32 and bfloat16, for each technique: peak allocated GPU memory over a whole call
# (torch.cuda.max_memory_allocated), the last step's time, the VAE decode time and the whole call.
# One warm-up call before the measured one (group offloading traces its order then).
#
# Not pinned like the fixture generators: it runs where a GPU is (the device machine has torch
# 2.11 and takes diffusers 0.42.1 as a carried wheel). Usage:
#   python3 tools/reference/gpu_pipeline_offload.py --out results.json [--tiny] [--device cpu]
# --tiny shrinks the models to smoke-test the script on a CPU.
import argparse, copy, gc, json, os, sys, time
import torch
import diffusers
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.hooks import apply_group_offloading
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sd15_configs import SD15_CLIP, SD15_SCHEDULER_CONFIG, SD15_UNET, SD15_VAE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap = argparse.ArgumentParser()
ap.add_argument("--out", default="results.json")
ap.add_argument("--tiny", action="store_true")
ap.add_argument("--device", default="cuda")
ap.add_argument("--dtypes", default="float32,bfloat16")
args = ap.parse_args()
dev = torch.device(args.device)
cuda = dev.type == "cuda"

unet_cfg, vae_cfg, clip_cfg = dict(SD15_UNET), dict(SD15_VAE), dict(SD15_CLIP)
size = 512
if args.tiny:
    unet_cfg.update(block_out_channels=[32, 64, 64, 64], cross_attention_dim=32, attention_head_dim=2)
    vae_cfg.update(block_out_channels=[32, 32, 64, 64])
    clip_cfg.update(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, projection_dim=32)
    size = 128


def build(dtype):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_cfg).to(dtype).eval()
    vae = AutoencoderKL(**vae_cfg).to(dtype).eval()
    text = CLIPTextModel(CLIPTextConfig(**clip_cfg)).to(dtype).eval()
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(ROOT, "Tests", "Fixtures", "tiny-sd", "tokenizer"))
    scheduler = PNDMScheduler.from_config({k: v for k, v in SD15_SCHEDULER_CONFIG.items() if not k.startswith("_")})
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def group(kind, stream):
    def apply(pipe):
        kw = dict(offload_type=kind, use_stream=stream)
        if kind == "block_level": kw["num_blocks_per_group"] = 1
        for m in (pipe.text_encoder, pipe.unet, pipe.vae):
            apply_group_offloading(m, onload_device=dev, offload_device=torch.device("cpu"), **kw)
    return apply


CASES = [
    ("plain", lambda p: p.to(dev)),
    ("model offload", lambda p: p.enable_model_cpu_offload(device=dev)),
    ("sequential", lambda p: p.enable_sequential_cpu_offload(device=dev)),
    ("group leaf level", group("leaf_level", False)),
    ("group leaf level + stream", group("leaf_level", True)),
    ("group block level (1)", group("block_level", False)),
    ("group block level (1) + stream", group("block_level", True)),
]


def sync():
    if cuda: torch.cuda.synchronize()


def call(pipe):
    marks = []
    def on_step(p, i, t, kw):
        sync(); marks.append(time.perf_counter()); return kw
    decode = {}
    original = pipe.vae.decode
    def timed_decode(*a, **k):
        sync(); t0 = time.perf_counter(); r = original(*a, **k); sync(); decode["s"] = time.perf_counter() - t0; return r
    pipe.vae.decode = timed_decode
    try:
        sync(); t0 = time.perf_counter()
        pipe("a red circle on a blue background", num_inference_steps=2, guidance_scale=7.5, height=size, width=size,
             generator=torch.Generator("cpu").manual_seed(0), output_type="np", callback_on_step_end=on_step)
        sync(); total = time.perf_counter() - t0
    finally:
        pipe.vae.decode = original
    return {"last_step_s": marks[-1] - marks[-2] if len(marks) > 1 else None, "vae_decode_s": decode.get("s"), "total_s": total}


results = []
for dtype_name in args.dtypes.split(","):
    dtype = getattr(torch, dtype_name)
    base = build(dtype)
    weights = sum(p.numel() * p.element_size() for m in (base.unet, base.vae, base.text_encoder) for p in m.parameters())
    for name, apply in CASES:
        if "stream" in name and not cuda: continue
        pipe = copy.deepcopy(base)
        row = {"dtype": dtype_name, "case": name, "weights_gib": round(weights / 2**30, 3)}
        try:
            apply(pipe)
            with torch.inference_mode():
                call(pipe)  # warm-up: kernels, cuDNN plans, group offload's order trace
                if cuda: torch.cuda.reset_peak_memory_stats()
                row.update(call(pipe))
            row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        print(json.dumps(row), flush=True)
        results.append(row)
        del pipe; gc.collect()
        if cuda: torch.cuda.empty_cache()
    del base; gc.collect()

json.dump({"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
           "diffusers": diffusers.__version__, "size": size, "results": results}, open(args.out, "w"), indent=1)
print("DONE")
