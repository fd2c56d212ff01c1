#!/usr/bin/env python3
# Writes a Stable Diffusion XL base-shaped pipeline folder with RANDOM weights, stored in float16
# as the hub's fp16 files are (about 7 GB): SDXL base 1.0's component configurations — UNet
# 2.57B parameters, CLIP ViT-L text encoder 123M, OpenCLIP ViT-bigG text encoder with projection
# 695M, VAE 83.7M (models-sdxl-flux.md sections 1-3) — for memory/speed benchmarks of the Swift
# port beside Diffusers (tools/bench/side-by-side.sh with GENERATOR=this script). Not run in CI;
# its output is NOT committed.
#
# Pinned versions: pinned.py. Run from the repository root (needs Tests/Fixtures/tokenizer):
#   /path/to/venv/bin/python tools/reference/make_sdxl_random.py DIR [--no-check]
# Peak RSS about 8 GB (the models are built in float16); writing takes a few minutes on 2 cores.
#
# DIR gets, like stabilityai/stable-diffusion-xl-base-1.0:
#   model_index.json   StableDiffusionXLPipeline, force_zeros_for_empty_prompt true
#   unet/, vae/, text_encoder/, text_encoder_2/   the configs above, default initialisation under
#                      torch.manual_seed(0) in float16 (no rescaling); CLIP keys with "text_model."
#   tokenizer/, tokenizer_2/   make_sd15_random.py's tokenizer padded to CLIP's 49408 entries;
#                      tokenizer_2 pads with "!" (id 0), as SDXL's second tokenizer does
#   scheduler/         SDXL base's EulerDiscreteScheduler config ("leading", steps_offset 1)
# Then (unless --no-check) it loads DIR with Diffusers and runs one step at 64x64. Diffusers'
# side of the benchmark: make_sd15_random.py DIR --bench (it loads any pipeline class).

import argparse
import json
import os
import shutil
import time

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import default_init
import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from safetensors import safe_open

pinned.import_transformers()
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from make_sd15_random import count, padded_tokenizer
from sd15_configs import SD15_CLIP, SD15_VAE, SDXL_SCHEDULER

# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (the fields that differ from the defaults)
SDXL_UNET = {
    "addition_embed_type": "text_time", "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280], "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "in_channels": 4,
    "layers_per_block": 2, "out_channels": 4, "projection_class_embeddings_input_dim": 2816, "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10], "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}
SDXL_VAE = dict(SD15_VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True)
SDXL_CLIP_L = dict(SD15_CLIP)                       # text_encoder: CLIP ViT-L/14, quick_gelu
SDXL_CLIP_G = dict(SD15_CLIP, hidden_act="gelu", hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                   num_hidden_layers=32, projection_dim=1280)   # text_encoder_2: OpenCLIP ViT-bigG/14
EXPECTED_PARAMS = {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--no-check", action="store_true", help="skip loading the folder and running one step")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    pinned.setup(threads=args.threads)
    t0 = time.time()
    tokenizer = padded_tokenizer(os.path.join(args.dir, "tokenizer.tmp"))
    torch.set_default_dtype(torch.float16)
    unet = default_init(UNet2DConditionModel, **SDXL_UNET)
    vae = default_init(AutoencoderKL, **SDXL_VAE)
    text_encoder = default_init(CLIPTextModel, CLIPTextConfig(**SDXL_CLIP_L))
    text_encoder_2 = default_init(CLIPTextModelWithProjection, CLIPTextConfig(**SDXL_CLIP_G))
    torch.set_default_dtype(torch.float32)
    params = {"unet": count(unet), "vae": count(vae), "text_encoder": count(text_encoder), "text_encoder_2": count(text_encoder_2)}
    print("parameters:", params, "total", sum(params.values()))
    assert params == EXPECTED_PARAMS, params
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer, unet=unet, scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
                                     force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.save_pretrained(args.dir, safe_serialization=True)
    del pipe, unet, vae, text_encoder, text_encoder_2
    # tokenizers: the padded files (not transformers 5's re-serialisation); tokenizer_2 pads with "!"
    for name in ["tokenizer", "tokenizer_2"]:
        shutil.rmtree(os.path.join(args.dir, name))
        shutil.copytree(os.path.join(args.dir, "tokenizer.tmp"), os.path.join(args.dir, name))
    shutil.rmtree(os.path.join(args.dir, "tokenizer.tmp"))
    config_path = os.path.join(args.dir, "tokenizer_2", "tokenizer_config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["pad_token"] = "!"
    config.setdefault("added_tokens_decoder", {})["0"] = {"content": "!", "lstrip": False, "normalized": False, "rstrip": False,
                                                          "single_word": False, "special": True}
    pinned.write_json(config_path, config)
    special_path = os.path.join(args.dir, "tokenizer_2", "special_tokens_map.json")
    if os.path.exists(special_path):
        with open(special_path) as f:
            special = json.load(f)
        special["pad_token"] = "!"
        pinned.write_json(special_path, special)
    tok2 = CLIPTokenizer.from_pretrained(os.path.join(args.dir, "tokenizer_2"))
    assert tok2.pad_token == "!" and tok2.pad_token_id == 0, (tok2.pad_token, tok2.pad_token_id)
    pinned.write_json(os.path.join(args.dir, "scheduler", "scheduler_config.json"),
                      dict({"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0"}, **SDXL_SCHEDULER))
    for name in ["text_encoder", "text_encoder_2"]:
        path = os.path.join(args.dir, name, "model.safetensors")
        if not any(k.startswith("text_model.") for k in safe_open(path, "pt").keys()):
            pinned.add_text_model_prefix(path)
    print(f"wrote {args.dir}: {pinned.folder_bytes(args.dir) / 1e9:.2f} GB in {time.time() - t0:.0f} s")

    if not args.no_check:
        t1 = time.time()
        pipe = StableDiffusionXLPipeline.from_pretrained(args.dir, add_watermarker=False, torch_dtype=torch.float32)
        assert {k: count(getattr(pipe, k)) for k in params} == params
        with torch.no_grad():
            img = pipe("a red circle", height=64, width=64, num_inference_steps=1, guidance_scale=5.0,
                       generator=torch.Generator().manual_seed(0), output_type="np").images
        assert img.shape == (1, 64, 64, 3)
        print(f"check: 1 step at 64x64 in {time.time() - t1:.1f} s (load included); image mean {img.mean():.4f}")


if __name__ == "__main__":
    main()
