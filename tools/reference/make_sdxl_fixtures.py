#!/usr/bin/env python3
# Tiny Stable Diffusion XL pipelines and Diffusers' outputs on them, for swift-diffusers' SDXL
# pipeline tests.
#
# Pinned versions: pinned.py (torch 2.15.0, diffusers 0.42.1, transformers 5.24.0). Needs the
# model fixtures first (make_sd_fixtures.py, make_sdxl_model_fixtures.py,
# make_sdxl_tokenizer_fixtures.py). Run from anywhere:
#   /path/to/venv/bin/python tools/reference/make_sdxl_fixtures.py
#
# Writes (each folder as Diffusers' save_pretrained writes it, then outputs/ with the runs):
#   Tests/Fixtures/tiny-sdxl/          StableDiffusionXLPipeline: tokenizer (Tests/Fixtures/tokenizer),
#       tokenizer_2 (sdxl-tokenizer-2: pads with "!"), text_encoder (tiny-sd's CLIP, hidden 32),
#       text_encoder_2 (tiny-sdxl-models/text-encoder-2, hidden 32, projection 32), unet
#       (tiny-sdxl-models/unet-base, cross-attention 64 = 32 + 32), vae (tiny-sd's, with SDXL's
#       scaling_factor 0.13025 and force_upcast), scheduler: EulerDiscreteScheduler with SDXL
#       base's scheduler_config ("leading", steps_offset 1); force_zeros_for_empty_prompt true.
#   Tests/Fixtures/tiny-sdxl-refiner/  StableDiffusionXLImg2ImgPipeline like the SDXL refiner: no
#       tokenizer / text_encoder, tokenizer_2, a text_encoder_2 of hidden 48 (made here, weights
#       re-drawn as the other fixtures), unet (tiny-sdxl-models/unet-refiner: 5 time ids with the
#       aesthetic score), the same vae and scheduler; requires_aesthetics_score true,
#       force_zeros_for_empty_prompt false.
#   outputs/calls.safetensors in tiny-sdxl/: per run "<run>.latents_in" (text to image), the noise
#       Diffusers drew (recorded), "<run>.latents_out" and "<run>.image" ([B, 3, H, W] in [0, 1]);
#       the runs and their arguments are in the file's metadata and README.md.
# At 32x32 pixels (latents 16x16: the tiny VAE scales by 2; one run at 24x24), 3 steps, CPU
# float32, 2 threads.
# Watermarking is off (add_watermarker=False), as the Swift port has none.

import json
import os
import shutil
import sys

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import NoiseRecorder, randn
import torch
import numpy as np
from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
import diffusers.models.autoencoders.vae as vae_module
import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl as t2i_module
import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img as i2i_module

transformers = pinned.import_transformers()
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_sd_fixtures as sd  # noqa: E402  (redraw_constant_params)
import make_sdxl_model_fixtures as sdxl_models  # noqa: E402  (CLIP_CONFIG, shape_clip)

pinned.setup(threads=2)
VERSIONS = pinned.versions("transformers")
FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
BASE = os.path.join(FIXTURES, "tiny-sdxl")
REFINER = os.path.join(FIXTURES, "tiny-sdxl-refiner")

from sd15_configs import SDXL_SCHEDULER  # noqa: E402
SIZE = 32
STEPS = 3
PROMPT = "a red circle"
PROMPT_2 = "a blue square on a white background"
NEGATIVE = "blurry"


def models():
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(FIXTURES, "tokenizer"))
    tokenizer_2 = CLIPTokenizer.from_pretrained(os.path.join(FIXTURES, "sdxl-tokenizer-2", "tokenizer_2"))
    assert tokenizer_2.pad_token == "!" and tokenizer_2.pad_token_id == 0
    text_encoder = CLIPTextModel.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "text_encoder"))
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(os.path.join(FIXTURES, "tiny-sdxl-models", "text-encoder-2"))
    unet = UNet2DConditionModel.from_pretrained(os.path.join(FIXTURES, "tiny-sdxl-models", "unet-base"))
    refiner_unet = UNet2DConditionModel.from_pretrained(os.path.join(FIXTURES, "tiny-sdxl-models", "unet-refiner"))
    vae = AutoencoderKL.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "vae"), scaling_factor=0.13025, force_upcast=True)
    torch.manual_seed(0)
    refiner_text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(**dict(sdxl_models.CLIP_CONFIG, hidden_size=48)))
    sd.redraw_constant_params(refiner_text_encoder, "refiner_text_encoder_2")
    sdxl_models.shape_clip(refiner_text_encoder)
    scheduler = EulerDiscreteScheduler.from_config(SDXL_SCHEDULER)
    return tokenizer, tokenizer_2, text_encoder, text_encoder_2, unet, refiner_unet, refiner_text_encoder, vae, scheduler


def save(pipe, folder):
    if os.path.exists(folder):
        shutil.rmtree(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    # The hub's files carry "text_model." (transformers 5 writes CLIPTextModel's keys without it).
    for name in ["text_encoder", "text_encoder_2"]:
        path = os.path.join(folder, name, "model.safetensors")
        if os.path.exists(path) and not any(k.startswith("text_model.") for k in safe_open(path, "pt").keys()):
            pinned.add_text_model_prefix(path)


def jsonable(args):
    """The arguments as the metadata records them (tuples as lists; tensors by name elsewhere)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items() if not isinstance(v, torch.Tensor)}


class Runs:
    """Collects each run's recorded noise and outputs; the call runs twice (latents, image)."""

    def __init__(self):
        self.tensors, self.info = {}, {}

    def run(self, key, pipe, modules, info, seed=0, **kwargs):
        with torch.no_grad(), NoiseRecorder(*modules) as rec:
            lat = pipe(**kwargs, generator=torch.Generator().manual_seed(seed), output_type="latent").images
        with torch.no_grad():
            img = pipe(**kwargs, generator=torch.Generator().manual_seed(seed), output_type="np").images
        for i, noise in enumerate(rec.drawn):
            self.tensors[f"{key}.noise.{i}"] = noise
        self.tensors[f"{key}.latents_out"] = lat
        self.tensors[f"{key}.image"] = torch.from_numpy(img).permute(0, 3, 1, 2)
        self.info[key] = dict(jsonable(info), seed=seed, noise_sources=rec.sources)
        return lat


def main():
    tokenizer, tokenizer_2, text_encoder, text_encoder_2, unet, refiner_unet, refiner_te, vae, scheduler = models()
    base = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True,
                                     add_watermarker=False)
    save(base, BASE)
    refiner = StableDiffusionXLImg2ImgPipeline(vae=vae, text_encoder=None, text_encoder_2=refiner_te, tokenizer=None,
                                               tokenizer_2=tokenizer_2, unet=refiner_unet, scheduler=scheduler,
                                               requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
                                               add_watermarker=False)
    save(refiner, REFINER)
    # Reload as the Swift side will, from the folders.
    base = StableDiffusionXLPipeline.from_pretrained(BASE, add_watermarker=False)
    refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(REFINER, add_watermarker=False)
    base_i2i = StableDiffusionXLImg2ImgPipeline(**base.components, add_watermarker=False)
    for p in (base, refiner, base_i2i):
        p.set_progress_bar_config(disable=True)

    runs = Runs()
    t = runs.tensors
    # encode_prompt, both encoders, the negative encoded
    with torch.no_grad():
        pe, npe, ppe, nppe = base.encode_prompt(PROMPT, prompt_2=PROMPT_2, device="cpu", num_images_per_prompt=1,
                                                do_classifier_free_guidance=True, negative_prompt=NEGATIVE)
    t["encode_prompt.prompt_embeds"], t["encode_prompt.negative_prompt_embeds"] = pe, npe
    t["encode_prompt.pooled_prompt_embeds"], t["encode_prompt.negative_pooled_prompt_embeds"] = ppe, nppe
    runs.info["encode_prompt"] = {"prompt": PROMPT, "prompt_2": PROMPT_2, "negative_prompt": NEGATIVE}

    latents = randn("sdxl/latents", 1, 4, SIZE // 2, SIZE // 2)
    t["latents_in"] = latents
    latents2 = randn("sdxl/latents2", 2, 4, SIZE // 2, SIZE // 2)
    t["latents_in_batch2"] = latents2
    common = dict(height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=5.0)

    def t2i(key, lat=latents, **kw):
        args = dict(common, prompt=PROMPT)
        args.update(kw)
        return runs.run(key, base, [t2i_module], dict(args, latents="latents_in" if lat is latents else "latents_in_batch2"),
                        latents=lat.clone(), **args)

    t2i("t2i", negative_prompt=NEGATIVE)
    t2i("t2i_zero_negative")                                        # negative_prompt None: zeros
    t2i("t2i_empty_negative", negative_prompt="")                   # "" is encoded
    t2i("t2i_prompt_2", prompt_2=PROMPT_2, negative_prompt=NEGATIVE, negative_prompt_2="ugly")
    t2i("t2i_guidance_rescale", negative_prompt=NEGATIVE, guidance_rescale=0.7)
    t2i("t2i_micro", negative_prompt=NEGATIVE, original_size=(512, 768), target_size=(1024, 1024), crops_coords_top_left=(16, 32),
        negative_original_size=(256, 256), negative_target_size=(512, 512), negative_crops_coords_top_left=(8, 0))
    t2i("t2i_batch2", lat=latents2, prompt=[PROMPT, PROMPT_2], negative_prompt=[NEGATIVE, ""])
    base.scheduler = DPMSolverMultistepScheduler.from_config(base.scheduler.config)
    t2i("t2i_dpm", negative_prompt=NEGATIVE)
    base.scheduler = EulerDiscreteScheduler.from_config(SDXL_SCHEDULER)
    # base -> refiner ensemble: the base stops at 0.8, the refiner continues from its latents
    handed = t2i("ensemble_base", negative_prompt=NEGATIVE, denoising_end=0.8, num_inference_steps=10)
    kw = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=10, denoising_start=0.8, guidance_scale=5.0)
    runs.run("ensemble_refiner", refiner, [i2i_module], dict(kw, image="ensemble_base.latents_out"), image=handed.clone(), **kw)

    # image to image from an image, with the base (no aesthetic score) and the refiner (with it)
    g = torch.Generator().manual_seed(7)
    image = torch.rand(1, 3, SIZE, SIZE, generator=g) * 2 - 1
    t["image_in"] = image
    kw = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=5.0, strength=0.6)
    runs.run("i2i", base_i2i, [vae_module, i2i_module], dict(kw, image="image_in"), seed=3, image=image.clone(), **kw)
    kw = dict(kw, aesthetic_score=7.0, negative_aesthetic_score=2.0)
    runs.run("refiner_i2i", refiner, [vae_module, i2i_module], dict(kw, image="image_in"), seed=3, image=image.clone(), **kw)
    # VAE tiling on image to image (the guide's example): 16 px tiles (8 latent px), overlap 0.25,
    # on a 40x56 image, so that the encode and the decode both really tile.
    t["image_in_40x56"] = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(8)) * 2 - 1
    base_i2i.vae.enable_tiling()
    base_i2i.vae.tile_sample_min_size, base_i2i.vae.tile_latent_min_size, base_i2i.vae.tile_overlap_factor = 16, 8, 0.25
    kw_tiled = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=5.0, strength=0.6)
    runs.run("i2i_tiled", base_i2i, [vae_module, i2i_module], dict(kw_tiled, image="image_in_40x56", vae_tiling=[16, 8, 0.25]),
             seed=3, image=t["image_in_40x56"].clone(), **kw_tiled)
    base_i2i.vae.disable_tiling()
    # 24x24 pixels: latents 12x12, not a multiple of the refiner UNet's downsampling (8), which
    # Diffusers runs by handing each upsampler its skip's size (forward_upsample_size)
    t["image_in_24"] = image[:, :, :24, :24].clone()
    runs.run("refiner_i2i_24", refiner, [vae_module, i2i_module], dict(kw, image="image_in_24"), seed=3, image=t["image_in_24"].clone(), **kw)

    # f16: the base in torch_dtype=float16 on the "t2i" run's arguments; the VAE decodes in f32
    # (force_upcast). Its drift from the f32 run is the bound the Swift f16 run is held to.
    half = StableDiffusionXLPipeline.from_pretrained(BASE, torch_dtype=torch.float16, add_watermarker=False)
    half.set_progress_bar_config(disable=True)
    kw = dict(common, prompt=PROMPT, negative_prompt=NEGATIVE)
    with torch.no_grad():
        lat16 = half(**kw, latents=latents.clone().half(), output_type="latent").images.float()
        img16 = torch.from_numpy(half(**kw, latents=latents.clone().half(), output_type="np").images).permute(0, 3, 1, 2).float()

    def rel(a, b):
        return float((a - b).norm() / b.norm())
    runs.info["t2i_f16"] = dict(jsonable(kw), torch_dtype="float16", latents_rel_l2_vs_f32=rel(lat16, t["t2i.latents_out"]),
                                image_rel_l2_vs_f32=rel(img16, t["t2i.image"]))
    print("f16 drift:", runs.info["t2i_f16"])

    os.makedirs(os.path.join(BASE, "outputs"), exist_ok=True)
    path = os.path.join(BASE, "outputs", "calls.safetensors")
    tensors = {k: v.detach().contiguous().to(torch.float32) for k, v in t.items()}
    pinned.save_checked(tensors, path, {"info": json.dumps({"versions": VERSIONS, "runs": runs.info}, sort_keys=True)})
    with open(os.path.join(BASE, "README.md"), "w") as f:
        f.write("# tiny-sdxl\n\nMade by `tools/reference/make_sdxl_fixtures.py` (its header says how). Runs in "
                "`outputs/calls.safetensors` (32x32 px, CPU float32; the metadata holds these arguments):\n\n")
        for key, args in sorted(runs.info.items()):
            f.write(f"- `{key}`: `{json.dumps(args, sort_keys=True)}`\n")
        f.write("\nTensors:\n\n")
        for k in sorted(tensors):
            f.write(f"- `{k}` {list(tensors[k].shape)}\n")
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes; folders {pinned.folder_bytes(BASE)} and "
          f"{pinned.folder_bytes(REFINER)} bytes")


if __name__ == "__main__":
    main()
