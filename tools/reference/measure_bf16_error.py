#!/usr/bin/env python3
# How far Diffusers/transformers themselves drift from their f32 outputs when the tiny SD
# components run in bfloat16 (weights .to(bfloat16), inputs bfloat16, CPU). Tests/ModelsTests/
# BF16Tests.swift holds these figures and asks the Swift port to stay within 1.25x of each.
#   <venv>/bin/python tools/reference/measure_bf16_error.py
# Printed on 2026-11-26 (torch 2.15.0, diffusers 0.42.1, transformers 5.24.0, 2 threads, Zen 4):
#   unet 0.0331286  text_encoder 0.0062845  vae_decode 0.0207605  vae_encode 0.0142681
import pinned  # noqa: F401  (version pins, offline mode)
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPTextModel

pinned.setup(threads=2)
root = pinned.REPO_ROOT + "/Tests/Fixtures/tiny-sd"


def rel(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm()).item()


with torch.no_grad():
    u = load_file(root + "/outputs/unet.safetensors")
    unet = UNet2DConditionModel.from_pretrained(root + "/unet").to(torch.bfloat16)
    out = unet(u["sample"].bfloat16(), torch.tensor(981), encoder_hidden_states=u["encoder_hidden_states"].bfloat16()).sample
    t = load_file(root + "/outputs/text_encoder.safetensors")
    clip = CLIPTextModel.from_pretrained(root + "/text_encoder").to(torch.bfloat16)
    v = load_file(root + "/outputs/vae.safetensors")
    vae = AutoencoderKL.from_pretrained(root + "/vae").to(torch.bfloat16)
    print("unet %.7f  text_encoder %.7f  vae_decode %.7f  vae_encode %.7f" % (
        rel(out, u["out_t981"]),
        rel(clip(t["input_ids"]).last_hidden_state, t["last_hidden_state"]),
        rel(vae.decode(v["latent"].bfloat16()).sample, v["decode"]),
        rel(vae.encode(v["image"].bfloat16()).latent_dist.mean, v["encode.mean"])))
