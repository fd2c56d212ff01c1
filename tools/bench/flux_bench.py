#!/usr/bin/env python3
# Diffusers' side of the FLUX benchmarks (tools/bench/flux-side-by-side.sh, BENCHMARKS.md): one
# FluxPipeline call on a folder written by tools/reference/make_flux_random.py, timed as
# `diffuse generate --report` times ours, printed as one JSON object (the keys of
# make_sd15_random.py --bench). Pins in tools/reference/pinned.py. Run from the repository root:
#   PYTHON tools/bench/flux_bench.py DIR [--size N] [--steps N] [--dtype f32|bf16] [--threads N]
#       [--max-sequence-length N] [--profile] [--offload MODE --budget SIZE --offload-dir DIR]
# --offload, for a model larger than memory (the headline's comparison):
#   accelerate-disk  the transformer and T5 loaded with device_map="auto", max_memory={"cpu": SIZE}
#                    and offload_folder (Accelerate's disk offload: what does not fit the budget is
#                    written to the folder and read back for each forward), the rest in memory
#   group-disk       Diffusers' group offload of the transformer and T5 onto the CPU with
#                    offload_to_disk_path (leaf level), the rest in memory
import argparse
import contextlib
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import pinned  # noqa: E402  (offline mode and version pins before diffusers is imported)
import torch  # noqa: E402
import diffusers  # noqa: E402
import op_profile  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-sequence-length", type=int, default=512)
    ap.add_argument("--guidance", type=float, default=3.5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--offload", choices=["none", "accelerate-disk", "group-disk"], default="none")
    ap.add_argument("--budget", default="6GiB")
    ap.add_argument("--offload-dir", default="/var/tmp/flux-offload")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    sections = op_profile.Sections()
    t0 = time.time()
    extra = {}
    if a.offload == "accelerate-disk":
        from transformers import T5EncoderModel
        budget = {"cpu": a.budget}
        extra["transformer"] = diffusers.FluxTransformer2DModel.from_pretrained(
            a.dir, subfolder="transformer", torch_dtype=dtype, device_map="auto", max_memory=budget,
            offload_folder=os.path.join(a.offload_dir, "transformer"))
        extra["text_encoder_2"] = T5EncoderModel.from_pretrained(
            a.dir, subfolder="text_encoder_2", torch_dtype=dtype, device_map="auto", max_memory=budget,
            offload_folder=os.path.join(a.offload_dir, "text_encoder_2"))
    pipe = diffusers.FluxPipeline.from_pretrained(a.dir, torch_dtype=dtype, **extra)
    if a.offload == "group-disk":
        for name in ["transformer", "text_encoder_2"]:
            getattr(pipe, name).enable_group_offload(onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                                                     offload_type="leaf_level", offload_to_disk_path=os.path.join(a.offload_dir, name))
    pipe.set_progress_bar_config(disable=True)
    load_s = time.time() - t0
    marks, encoded, decoded, first = [], [], [], []
    orig_encode, orig_decode = pipe.encode_prompt, pipe.vae.decode

    def timed(store, section, fn):
        def run(*args, **kwargs):
            s0 = time.time()
            sections.enter(section)
            out = fn(*args, **kwargs)
            sections.enter(None)
            store.append(time.time() - s0)
            return out
        return run

    pipe.encode_prompt = timed(encoded, "text_encoder", orig_encode)
    pipe.vae.decode = timed(decoded, "vae_decode", orig_decode)
    pipe.transformer.register_forward_pre_hook(lambda m, args: first.append(time.time()) if not first else None)
    pipe.transformer.register_forward_pre_hook(lambda m, args: sections.enter("unet_step" if marks else "unet_first_step"))

    def on_step(p, i, t, kw):
        sections.enter(None)
        marks.append(time.time())
        return kw

    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if a.profile else contextlib.nullcontext()
    with torch.no_grad(), profiler:
        t1 = time.time()
        img = pipe("a red circle", height=a.size, width=a.size, num_inference_steps=a.steps, guidance_scale=a.guidance,
                   max_sequence_length=a.max_sequence_length, num_images_per_prompt=a.batch, generator=torch.Generator().manual_seed(0), output_type="np",
                   callback_on_step_end=on_step).images
        total = time.time() - t1
    starts = [first[0]] + marks[:-1]
    print(json.dumps({"diffusers": diffusers.__version__, "torch": torch.__version__, "threads": a.threads, "size": a.size, "batch": a.batch,
                      "steps": a.steps, "dtype": a.dtype, "offload": a.offload, "budget": a.budget if a.offload != "none" else None,
                      "load_s": round(load_s, 3), "steps_s": [round(b - s, 3) for s, b in zip(starts, marks)],
                      "text_encoder_s": round(encoded[0], 3), "vae_decode_s": round(decoded[0], 3), "total_s": round(total, 3),
                      "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "image_shape": list(img.shape), "first_step_at": first[0],
                      **({"profile": op_profile.summarise(profiler)} if a.profile else {})}, indent=1))


if __name__ == "__main__":
    main()
