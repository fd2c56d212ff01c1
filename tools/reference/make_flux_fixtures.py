#!/usr/bin/env python3
# Tiny FLUX.1 models and pipelines, and Diffusers' outputs on them, for swift-diffusers' Flux tests.
#
# Pinned versions: pinned.py (torch 2.15.0, diffusers 0.42.1, transformers 5.24.0, safetensors 0.8,
# numpy 2.x, python 3.11). Needs the fixtures it reuses first: Tests/Fixtures/tiny-sd/text_encoder
# (make_sd_fixtures.py), Tests/Fixtures/tokenizer (CLIP) and Tests/Fixtures/t5-tokenizer/tokenizer
# (make_t5_tokenizer_fixtures.py). Run from anywhere (CPU, 2 threads, under a minute):
#   /var/tmp/venv-torch/bin/python tools/reference/make_flux_fixtures.py
#
# Writes (each folder gets a README.md listing its files, tensors and runs):
#   Tests/Fixtures/tiny-flux-models/
#     transformer-dev/, transformer-schnell/   FluxTransformer2DModel (save_pretrained, float32): patch_size 1,
#         in_channels 64, num_layers 2, num_single_layers 2, 2 heads of 16 (inner dim 32), joint_attention_dim 32,
#         pooled_projection_dim 32, axes_dims_rope [4, 6, 6]; guidance_embeds true (dev) / false (schnell).
#         The two share every weight they have in common (same seeded streams): schnell is dev without
#         time_text_embed.guidance_embedder.
#     outputs.safetensors   RoPE, the time/guidance/text embedding, one dual-stream block, one single-stream
#         block, norm_out, and full forwards of both models (float32, plus a bfloat16 forward of each).
#   Tests/Fixtures/tiny-flux-dev/      FluxPipeline as save_pretrained writes it: transformer (transformer-dev),
#         vae (AutoencoderKL, 16 latent channels, no quant convs, scaling 0.3611 / shift 0.1159, scale factor 2),
#         text_encoder (tiny-sd's CLIPTextModel, hidden 32: its pooler_output is the 32-wide pooled vector),
#         tokenizer (Tests/Fixtures/tokenizer), text_encoder_2 (T5EncoderModel v1.1 style, d_model 32, made here),
#         tokenizer_2 (Tests/Fixtures/t5-tokenizer/tokenizer), scheduler (FLUX.1-dev's scheduler_config).
#     outputs/calls.safetensors  the pipeline runs (see RUNS below; CPU float32, output_type "pt").
#     outputs/init.png           the img2img init image (8-bit RGB; decodes exactly to img2img.init_image * 255).
#     outputs/schedule.json      FluxPipeline's timestep preparation for the real models' sizes (vae scale 8).
#   Tests/Fixtures/tiny-flux-schnell/  the same with transformer-schnell and FLUX.1-schnell's scheduler_config;
#     outputs/calls.safetensors  one run.
#
# Weights: every parameter of the transformers, the VAE and the T5 encoder is re-drawn from its own seeded
# stream (pinned.gen("<prefix>/<parameter name>")): Linear and Conv weights randn / sqrt(fan_in), biases
# 0.1 randn, norm weights 1 + 0.1 randn (norm biases 0.1 randn), embeddings randn. Default initialisation
# is not used: it leaves the RMSNorm weights at exactly 1 and its scales do not keep activations O(1).
# `sensitivity` in tiny-flux-models' metadata records, for every parameter tensor of the dev transformer,
# how far scaling it by 0.9 moves the full forward's output (the minimum is asserted above 1e-4).
# The VAE decoder's conv_out weight is then scaled by VAE_DECODER_OUT_SCALE so that decoded images stay
# mostly inside [-1, 1] (few clamped pixels), and the encoder's conv_out bias on the log-variance half is
# lowered by VAE_LOGVAR_SHIFT so that the posterior's noise does not swamp its mean.
#
# Sizes: tiny-flux-models 1.16 MB, tiny-flux-dev 3.14 MB, tiny-flux-schnell 2.18 MB (6.5 MB in all; each README
# lists its files' sizes). Most of it is fixed by the configs: the transformer 0.55 MB (135k parameters: the
# 256-wide timestep projections and the 128-wide MLPs), the VAE 0.73 MB, CLIP 0.28 MB, the T5 tokenizer.json
# 0.37 MB, each stored once per folder; and 64 KB per 512-token prompt_embeds row in calls.safetensors.
#
# Determinism: seeded generators, safetensors metadata with one key (pinned.save_checked), PNG written by
# PIL at a fixed compression level, JSON with fixed key order; running twice gives byte-identical files.

import inspect
import json
import os
import shutil
import sys

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import NoiseRecorder, randn
import numpy as np
import torch
from PIL import Image
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxImg2ImgPipeline, FluxPipeline, FluxTransformer2DModel
from diffusers.models.transformers.transformer_flux import FluxPosEmbed
import diffusers.models.autoencoders.vae as vae_module
import diffusers.pipelines.flux.pipeline_flux as flux_module
import diffusers.pipelines.flux.pipeline_flux_img2img as flux_i2i_module

transformers = pinned.import_transformers()
from transformers import CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5TokenizerFast
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_flow_match_fixtures as flow  # noqa: E402  (FLUX_DEV, FLUX_SCHNELL: the Hub's scheduler configs)

pinned.setup(threads=2)
VERSIONS = pinned.versions("transformers", "numpy")
FIXTURES = os.path.join(pinned.REPO_ROOT, "Tests", "Fixtures")
MODELS = os.path.join(FIXTURES, "tiny-flux-models")
DEV = os.path.join(FIXTURES, "tiny-flux-dev")
SCHNELL = os.path.join(FIXTURES, "tiny-flux-schnell")

TRANSFORMER_CONFIG = dict(patch_size=1, in_channels=64, out_channels=None, num_layers=2, num_single_layers=2,
                          attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                          pooled_projection_dim=32, axes_dims_rope=[4, 6, 6])
VAE_CONFIG = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                  up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[16, 32], layers_per_block=1,
                  act_fn="silu", latent_channels=16, norm_num_groups=8, sample_size=32, scaling_factor=0.3611,
                  shift_factor=0.1159, force_upcast=True, use_quant_conv=False, use_post_quant_conv=False)
# T5 v1.1 as FLUX's text_encoder_2 (gated-gelu, no biases), tiny. The vocabulary is 532 rows for a 526-entry
# tokenizer, as the real model has 32128 rows for 32100 ids: a port must not take one for the other.
T5_CONFIG = dict(vocab_size=532, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128,
                 feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, is_encoder_decoder=False,
                 tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)
VAE_DECODER_OUT_SCALE = 0.5
VAE_LOGVAR_SHIFT = 3.0

L_TXT = 7            # text length of the model-level inputs
GRID = (3, 5)        # packed image grid (rows, columns) of the model-level inputs: 15 tokens
TIMESTEP = [0.7, 0.25]   # as the pipeline passes it (scheduler timestep / 1000)
GUIDANCE = [3.5, 2.0]

PROMPT = "a red fox in the snow"
PROMPT_B = "a small wooden boat on a calm lake"
PROMPT_2 = "a watercolor painting of a mountain village at dawn"
NEGATIVE = "blurry, low quality"
STEPS = 3
# (pipeline, run name, arguments); every run also gets generator=torch.Generator("cpu").manual_seed(seed),
# output_type "pt". Arguments not listed take FluxPipeline's defaults (guidance_scale 3.5, true_cfg_scale 1.0,
# max_sequence_length 512, num_images_per_prompt 1).
DEV_RUNS = [
    ("t2i", "square", dict(prompt=PROMPT, height=32, width=32, num_inference_steps=STEPS, seed=0)),
    ("t2i", "nonsquare", dict(prompt=PROMPT, height=40, width=24, num_inference_steps=STEPS, seed=1)),
    ("t2i", "odd_size", dict(prompt=PROMPT, height=30, width=42, num_inference_steps=STEPS, seed=2)),
    ("t2i", "true_cfg", dict(prompt=PROMPT, negative_prompt=NEGATIVE, true_cfg_scale=2.0, height=32, width=32,
                             num_inference_steps=STEPS, seed=3)),
    ("t2i", "prompt_2", dict(prompt=PROMPT, prompt_2=PROMPT_2, max_sequence_length=16, height=32, width=32,
                             num_inference_steps=STEPS, seed=4)),
    ("t2i", "batch2", dict(prompt=[PROMPT, PROMPT_B], height=32, width=32, num_inference_steps=STEPS, seed=5)),
    # FluxImg2ImgPipeline's own default guidance_scale is 7.0 (FluxPipeline's 3.5): 3.5 is passed
    ("i2i", "img2img", dict(prompt=PROMPT_B, image="img2img.init_image", strength=0.6, height=32, width=32,
                            num_inference_steps=4, guidance_scale=3.5, seed=6)),
]
SCHNELL_RUNS = [
    ("t2i", "square", dict(prompt=PROMPT, height=32, width=32, num_inference_steps=2, guidance_scale=0.0,
                           max_sequence_length=256, seed=0)),
]
# schedule.json: FluxPipeline's timestep preparation at the real models' sizes (height, width)
SCHEDULE_SIZES = [(256, 256), (512, 512), (1024, 1024), (768, 1360), (1360, 768)]
SCHEDULE_STEPS = [1, 4, 28]
REAL_VAE_SCALE = 8
# the arguments every run lists in full (the pipeline's default where a run does not set one)
EFFECTIVE_ARGS = ["prompt", "prompt_2", "negative_prompt", "height", "width", "num_inference_steps", "guidance_scale",
                  "true_cfg_scale", "max_sequence_length", "num_images_per_prompt", "strength"]


# ----------------------------------------------------------------------------- weights

def redraw_all(model, prefix):
    """Every parameter re-drawn from pinned.gen(f"{prefix}/{name}"): Linear / Conv weights randn / sqrt(fan_in),
    their biases 0.1 randn; Embedding weights randn; any other module's weight (a norm) 1 + 0.1 randn and
    bias 0.1 randn. Returns the names (all of them; asserted)."""
    done = set()
    with torch.no_grad():
        for mname, m in model.named_modules():
            for pname, p in m.named_parameters(recurse=False):
                name = f"{mname}.{pname}" if mname else pname
                if id(p) in done:
                    continue
                r = torch.randn(p.shape, generator=pinned.gen(f"{prefix}/{name}"), dtype=torch.float32)
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and pname == "weight":
                    fan_in = p[0].numel()
                    p.copy_(r / fan_in ** 0.5)
                elif isinstance(m, torch.nn.Embedding):
                    p.copy_(r)
                elif pname == "weight" and not isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                    p.copy_(1.0 + 0.1 * r)
                elif pname == "bias":
                    p.copy_(0.1 * r)
                else:
                    raise SystemExit(f"unhandled parameter {prefix}/{name}")
                done.add(id(p))
    assert len(done) == len(list(model.parameters())), prefix
    model.eval().requires_grad_(False)
    return model


def make_transformer(guidance_embeds):
    torch.manual_seed(0)
    model = FluxTransformer2DModel(**TRANSFORMER_CONFIG, guidance_embeds=guidance_embeds)
    # one prefix for both: schnell gets exactly dev's weights, without the guidance embedder
    return redraw_all(model, "tiny-flux/transformer")


def make_vae():
    torch.manual_seed(0)
    vae = redraw_all(AutoencoderKL(**VAE_CONFIG), "tiny-flux/vae")
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(VAE_DECODER_OUT_SCALE)
        vae.encoder.conv_out.bias[VAE_CONFIG["latent_channels"]:] -= VAE_LOGVAR_SHIFT
    return vae


def make_t5():
    torch.manual_seed(0)
    return redraw_all(T5EncoderModel(T5Config(**T5_CONFIG)), "tiny-flux/text_encoder_2")


def fresh_folder(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def save_model(model, folder):
    fresh_folder(folder)
    model.save_pretrained(folder, safe_serialization=True)
    for fn in os.listdir(folder):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(folder, fn), "pt") as f:
                assert len(f.metadata() or {}) <= 1, fn  # deterministic header


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


# ----------------------------------------------------------------------------- tiny-flux-models

def image_ids(rows, cols):
    ids = torch.zeros(rows, cols, 3)
    ids[..., 1] = torch.arange(rows, dtype=torch.float32)[:, None]
    ids[..., 2] = torch.arange(cols, dtype=torch.float32)[None, :]
    return ids.reshape(rows * cols, 3)


def model_outputs(dev, schnell):
    t, info = {}, {"versions": VERSIONS}
    n_img = GRID[0] * GRID[1]
    txt_ids = torch.zeros(L_TXT, 3)
    img_ids = image_ids(*GRID)
    assert torch.equal(img_ids, FluxPipeline._prepare_latent_image_ids(1, GRID[0], GRID[1], "cpu", torch.float32))
    ids = torch.cat([txt_ids, img_ids])
    cos, sin = dev.pos_embed(ids)
    ref_cos, ref_sin = FluxPosEmbed(10000, TRANSFORMER_CONFIG["axes_dims_rope"])(ids)
    assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin)
    t["rope.ids"], t["rope.cos"], t["rope.sin"] = ids, cos, sin
    info["rope"] = (f"rope.ids [{L_TXT + n_img}, 3] float32: {L_TXT} text rows of zeros, then the image ids of a "
                    f"{GRID[0]}x{GRID[1]} packed grid, row r col c -> (0, r, c) row-major; rope.cos / rope.sin "
                    "[N, 16] = transformer.pos_embed(ids) (FluxPosEmbed, theta 10000, axes [4, 6, 6], float64 "
                    "angles, repeat-interleaved, returned as float32)")

    with torch.no_grad():
        # time / guidance / text embedding, fed as FluxTransformer2DModel.forward feeds it
        ts = torch.tensor(TIMESTEP)
        gs = torch.tensor(GUIDANCE)
        pooled = randn("tiny-flux/embed.pooled", 2, 32)
        t["embed.timestep"], t["embed.guidance"], t["embed.pooled"] = ts, gs, pooled
        t["embed.temb.dev"] = dev.time_text_embed(ts.to(torch.float32) * 1000, gs.to(torch.float32) * 1000, pooled)
        t["embed.temb.schnell"] = schnell.time_text_embed(ts.to(torch.float32) * 1000, pooled)
        info["embed"] = ("embed.timestep [2] (the pipeline's t/1000) and embed.guidance [2] (guidance_scale); "
                         "embed.temb.dev = dev.time_text_embed(timestep.float() * 1000, guidance.float() * 1000, "
                         "embed.pooled); embed.temb.schnell = schnell.time_text_embed(timestep.float() * 1000, "
                         "embed.pooled) (no guidance embedder). The x1000 is done in float32 after the cast, as "
                         "the model's forward does")

        rope = (cos, sin)
        # dual-stream block 0
        h = randn("tiny-flux/dual.hidden_in", 2, n_img, 32)
        e = randn("tiny-flux/dual.encoder_in", 2, L_TXT, 32)
        temb = randn("tiny-flux/dual.temb", 2, 32)
        eo, ho = dev.transformer_blocks[0](hidden_states=h, encoder_hidden_states=e, temb=temb, image_rotary_emb=rope)
        t.update({"dual.hidden_in": h, "dual.encoder_in": e, "dual.temb": temb, "dual.hidden_out": ho,
                  "dual.encoder_out": eo})
        info["dual"] = ("dev.transformer_blocks[0](hidden_states=dual.hidden_in, encoder_hidden_states=dual.encoder_in, "
                        "temb=dual.temb, image_rotary_emb=(rope.cos, rope.sin)) returns (encoder_hidden_states, "
                        "hidden_states) = (dual.encoder_out, dual.hidden_out)")
        # single-stream block 0: in diffusers 0.42.1 it takes the two streams separately, concatenates them
        # text first, and returns them split again, like the dual block
        h = randn("tiny-flux/single.hidden_in", 2, n_img, 32)
        e = randn("tiny-flux/single.encoder_in", 2, L_TXT, 32)
        temb = randn("tiny-flux/single.temb", 2, 32)
        eo, ho = dev.single_transformer_blocks[0](hidden_states=h, encoder_hidden_states=e, temb=temb,
                                                  image_rotary_emb=rope)
        t.update({"single.hidden_in": h, "single.encoder_in": e, "single.temb": temb, "single.hidden_out": ho,
                  "single.encoder_out": eo})
        info["single"] = ("dev.single_transformer_blocks[0](hidden_states=single.hidden_in, encoder_hidden_states="
                          "single.encoder_in, temb=single.temb, image_rotary_emb=(rope.cos, rope.sin)): the 0.42.1 "
                          "block concatenates [encoder; hidden] along the sequence (text first), runs, and returns "
                          "(encoder_hidden_states, hidden_states) = (single.encoder_out, single.hidden_out) split at "
                          f"the text length {L_TXT}")
        x = randn("tiny-flux/norm_out.in", 2, n_img, 32)
        temb = randn("tiny-flux/norm_out.temb", 2, 32)
        t.update({"norm_out.in": x, "norm_out.temb": temb, "norm_out.out": dev.norm_out(x, temb)})
        info["norm_out"] = ("dev.norm_out(norm_out.in, norm_out.temb): AdaLayerNormContinuous, "
                            "m = linear(silu(temb)), scale, shift = chunk(m, 2) (scale first), LN(x)(1 + scale) + shift")

        # full forwards
        def inputs(cfg):
            d = {"hidden_states": randn(f"tiny-flux/{cfg}.hidden_states", 2, n_img, 64),
                 "encoder_hidden_states": randn(f"tiny-flux/{cfg}.encoder_hidden_states", 2, L_TXT, 32),
                 "pooled_projections": randn(f"tiny-flux/{cfg}.pooled_projections", 2, 32),
                 "timestep": torch.tensor(TIMESTEP)}
            if cfg == "dev":
                d["guidance"] = torch.tensor(GUIDANCE)
            d["txt_ids"], d["img_ids"] = txt_ids.clone(), img_ids.clone()
            return d

        for cfg, model in (("dev", dev), ("schnell", schnell)):
            d = inputs(cfg)
            for k, v in d.items():
                t[f"{cfg}.{k}"] = v
            out = model(**d, return_dict=False)[0]
            t[f"{cfg}.output"] = out
            low = FluxTransformer2DModel.from_pretrained(os.path.join(MODELS, f"transformer-{cfg}"),
                                                         torch_dtype=torch.bfloat16).eval()
            assert all(p.dtype == torch.bfloat16 for p in low.parameters())
            out16 = low(**{k: v.to(torch.bfloat16) for k, v in d.items()}, return_dict=False)[0]
            assert out16.dtype == torch.bfloat16
            t[f"{cfg}.output_bf16"] = out16
            info[f"{cfg}.output_bf16_rel_l2_vs_f32"] = rel(out16, out)
            info[f"{cfg}.output_bf16_rel_l2_per_sample"] = [rel(out16[i], out[i]) for i in range(2)]
            info[f"{cfg}.output_rms"] = float(out.pow(2).mean().sqrt())
        info["forward"] = ("<cfg>.output = transformer-<cfg>(hidden_states, encoder_hidden_states, pooled_projections, "
                           "timestep, img_ids, txt_ids, guidance (dev only)).sample, float32; <cfg>.output_bf16: "
                           "from_pretrained(torch_dtype=torch.bfloat16) (every weight bf16) run on every input cast "
                           "to bf16 (ids too, as the pipeline's bf16 ids), stored as bf16")
        assert rel(t["dev.output"], t["schnell.output"]) > 1e-2
        bf = torch.bfloat16
        info["bf16_note"] = (
            "in bf16 the forward casts before the x1000: timestep bf16(0.7) = 0.69921875, x1000 = 699.21875 rounds "
            f"to {(torch.tensor(TIMESTEP).to(bf) * 1000).tolist()}; guidance bf16(3.5) x 1000 = 3500 rounds to "
            f"{(torch.tensor(GUIDANCE).to(bf) * 1000).tolist()}: the guidance sinusoids then see 3504, so dev's "
            "sample 0 drifts far more than sample 1 or schnell (Diffusers' own bf16 behaviour, not noise)")

        # every parameter matters: scale each by 0.9 and see the dev output move
        d = inputs("dev")
        ref = t["dev.output"]
        sens = {}
        for name, p in dev.named_parameters():
            saved = p.detach().clone()
            p.mul_(0.9)
            sens[name] = rel(dev(**d, return_dict=False)[0], ref)
            p.copy_(saved)
        assert torch.equal(dev(**d, return_dict=False)[0], ref)
        worst = min(sens, key=sens.get)
        assert sens[worst] > 1e-4, (worst, sens[worst])
        info["sensitivity"] = {"rule": "relative L2 change of dev.output when one parameter tensor is scaled by 0.9",
                               "min": sens[worst], "min_parameter": worst,
                               "median": float(np.median(list(sens.values())))}
    return t, info


def write_outputs(path, tensors, info):
    """float tensors as they are (float32, or bf16 where stored so), with one metadata key."""
    tensors = pinned.save_checked({k: v.detach() for k, v in tensors.items()}, path,
                                  {"info": json.dumps(info, sort_keys=True)})
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")
    return {k: (str(v.dtype).replace("torch.", ""), list(v.shape)) for k, v in tensors.items()}


def files_list(folder):
    rows = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(root, fn)
            if fn != "README.md":
                rows.append((os.path.relpath(p, folder), os.path.getsize(p)))
    return rows


def write_models_readme(spec, info):
    lines = ["# tiny-flux-models", "",
             "Tiny random-weight FluxTransformer2DModel fixtures and the outputs Diffusers computes for them (CPU).",
             "Generated by `tools/reference/make_flux_fixtures.py` (its header says how and how the weights are drawn).",
             "", "Versions: " + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()) + ".", "",
             "## Models", "",
             f"- `transformer-dev/`: FluxTransformer2DModel(`{json.dumps(TRANSFORMER_CONFIG)}`, guidance_embeds=true)",
             "- `transformer-schnell/`: the same with guidance_embeds=false; its weights are dev's (same seeded streams),",
             "  without `time_text_embed.guidance_embedder.*`.",
             "- Inner dim 32 = 2 heads x 16; RoPE axes 4 + 6 + 6 = 16 = head dim; FF / proj_mlp width 128; the",
             "  single blocks' proj_out takes 32 + 128 = 160.", "",
             "## Files", ""]
    for fn, size in files_list(MODELS):
        lines.append(f"- `{fn}` ({size} bytes)")
    lines += ["", "## outputs.safetensors", "", "Float32 unless marked bf16. Model-level inputs: text length "
              f"{L_TXT}, a {GRID[0]}x{GRID[1]} packed image grid (15 tokens), batch 2.", ""]
    for k, (dtype, shape) in spec.items():
        lines.append(f"- `{k}` {dtype} {shape}")
    lines += ["", "What they are:", ""]
    for k, v in info.items():
        if k not in ("versions", "sensitivity"):
            lines.append(f"- {k}: {v}")
    s = info["sensitivity"]
    lines += ["", f"Sensitivity ({s['rule']}): minimum {s['min']:.3g} (`{s['min_parameter']}`), median "
              f"{s['median']:.3g}.", ""]
    with open(os.path.join(MODELS, "README.md"), "w") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------- pipelines

def save_pipeline(pipe, folder):
    if os.path.exists(folder):
        shutil.rmtree(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    # The hub's CLIP files carry "text_model." (transformers 5 writes CLIPTextModel's keys without it).
    path = os.path.join(folder, "text_encoder", "model.safetensors")
    if not any(k.startswith("text_model.") for k in safe_open(path, "pt").keys()):
        pinned.add_text_model_prefix(path)


def make_init_image():
    """A smooth deterministic colour pattern, [1, 3, 32, 32] in [0, 1], exactly k / 255."""
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    r = 0.5 + 0.4 * np.sin(xx / 31 * np.pi)
    g = 0.2 + 0.6 * yy / 31
    b = 0.5 + 0.35 * np.cos((xx + yy) / 62 * 2 * np.pi)
    u8 = np.round(np.stack([r, g, b], -1) * 255).astype(np.uint8)
    return u8


class Recorder:
    """Collects each run's tensors and arguments."""

    def __init__(self):
        self.tensors, self.info = {}, {}

    def run(self, key, pipe, kind, args, image=None):
        args = dict(args)
        seed = args.pop("seed")
        call = {k: v for k, v in args.items() if k != "image"}
        if image is not None:
            call["image"] = image
        encoded, unpacked, image_latents, started = [], [], [], []
        orig_encode = pipe.encode_prompt

        def encode(*a, **k):
            r = orig_encode(*a, **k)
            encoded.append(r)
            return r

        def unpack(*a, **k):
            r = type(pipe)._unpack_latents(*a, **k)
            unpacked.append(r.detach().clone())
            return r
        pipe.encode_prompt, pipe._unpack_latents = encode, unpack
        if kind == "i2i":
            orig_vae_enc = pipe._encode_vae_image
            orig_scale = pipe.scheduler.scale_noise

            def vae_enc(*a, **k):
                r = orig_vae_enc(*a, **k)
                image_latents.append(r.detach().clone())
                return r

            def scale(*a, **k):
                r = orig_scale(*a, **k)
                started.append(r.detach().clone())
                return r
            pipe._encode_vae_image, pipe.scheduler.scale_noise = vae_enc, scale
        modules = [flux_module] if kind == "t2i" else [vae_module, flux_i2i_module]
        try:
            with torch.no_grad(), NoiseRecorder(*modules) as rec:
                img = pipe(**call, generator=torch.Generator("cpu").manual_seed(seed), output_type="pt").images
        finally:
            for name in ("encode_prompt", "_unpack_latents", "_encode_vae_image"):
                pipe.__dict__.pop(name, None)
            pipe.scheduler.__dict__.pop("scale_noise", None)
        t = self.tensors
        # the call's arguments with the pipeline's defaults filled in from its signature
        defaults = {k: v.default for k, v in inspect.signature(type(pipe).__call__).parameters.items()}
        effective = {k: args.get(k, defaults.get(k)) for k in EFFECTIVE_ARGS}
        effective["seed"] = seed
        if kind == "t2i":
            effective["strength"] = None  # FluxPipeline has none
        info = {"pipeline": type(pipe).__name__, "args": dict(args, seed=seed), "effective_args": effective,
                "generator": 'torch.Generator("cpu").manual_seed(seed)', "output_type": "pt",
                "noise_sources": rec.sources,
                "guidance_to_transformer": (f"full([B], {effective['guidance_scale']})"
                                            if pipe.transformer.config.guidance_embeds else None)}
        if kind == "t2i":
            assert len(rec.drawn) == 1
            t[f"{key}.latents_in"] = rec.drawn[0]
        else:
            assert len(rec.drawn) == 2 and rec.sources[0] == vae_module.__name__, rec.sources
            t[f"{key}.encode_noise"] = rec.drawn[0]
            t[f"{key}.latents_in"] = rec.drawn[1]
            t[f"{key}.image_latents"] = image_latents[0]
            t[f"{key}.latents_start"] = started[0]
            n = effective["num_inference_steps"]
            t_start = int(max(n - min(n * effective["strength"], n), 0))
            info.update(t_start=t_start, begin_index=pipe.scheduler.begin_index,
                        timesteps_used=pipe.scheduler.timesteps[t_start:].tolist())
            assert pipe.scheduler.begin_index == t_start
        assert len(unpacked) == 1
        t[f"{key}.latents_out"] = unpacked[0]
        with torch.no_grad():  # "pt" is the postprocessed decode: (decode(z / scale + shift) / 2 + 0.5).clamp(0, 1)
            z = unpacked[0] / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
            assert torch.equal(img, (pipe.vae.decode(z).sample / 2 + 0.5).clamp(0, 1))
        assert img.dtype == torch.float32 and float(img.min()) >= 0 and float(img.max()) <= 1
        t[f"{key}.image"] = img
        pe, ppe, text_ids = encoded[0]
        t[f"{key}.prompt_embeds"], t[f"{key}.pooled_prompt_embeds"] = pe, ppe
        info["text_ids"] = f"zeros {list(text_ids.shape)} {str(text_ids.dtype).replace('torch.', '')}"
        if len(encoded) > 1:
            npe, nppe, _ = encoded[1]
            t[f"{key}.negative_prompt_embeds"], t[f"{key}.negative_pooled_prompt_embeds"] = npe, nppe
        assert len(encoded) == (2 if effective["true_cfg_scale"] > 1 and effective["negative_prompt"] is not None else 1)
        for which in ("prompt", "prompt_2"):
            if effective[which] is not None:
                texts = [effective[which]] if isinstance(effective[which], str) else effective[which]
                info[f"t5_length_of_{which}"] = [len(pipe.tokenizer_2(x).input_ids) for x in texts]
        if effective["max_sequence_length"] <= 16:  # the truncated T5 ids (eos kept as the last id)
            info["t5_input_ids"] = pipe.tokenizer_2(effective["prompt_2"] or effective["prompt"], padding="max_length",
                                                    max_length=effective["max_sequence_length"],
                                                    truncation=True).input_ids
        t[f"{key}.sigmas"] = pipe.scheduler.sigmas.clone()
        t[f"{key}.timesteps"] = pipe.scheduler.timesteps.clone()
        h, w = effective["height"], effective["width"]
        info["latent_size"] = [2 * (h // (pipe.vae_scale_factor * 2)), 2 * (w // (pipe.vae_scale_factor * 2))]
        info["image_size"] = list(img.shape[2:])
        info["mu"] = flux_module.calculate_shift(
            (info["latent_size"][0] // 2) * (info["latent_size"][1] // 2),
            pipe.scheduler.config.get("base_image_seq_len", 256), pipe.scheduler.config.get("max_image_seq_len", 4096),
            pipe.scheduler.config.get("base_shift", 0.5), pipe.scheduler.config.get("max_shift", 1.15))
        info["clamped_pixel_fraction"] = float(((img == 0) | (img == 1)).float().mean())
        self.info[key] = info
        return img


def pipeline_runs(pipe, runs, out_folder, init_u8=None):
    rec = Recorder()
    i2i = None
    for kind, key, args in runs:
        if kind == "t2i":
            rec.run(key, pipe, kind, args)
        else:
            if i2i is None:
                i2i = FluxImg2ImgPipeline(**pipe.components)
                i2i.set_progress_bar_config(disable=True)
            png = os.path.join(out_folder, "init.png")
            Image.fromarray(init_u8, "RGB").save(png, optimize=False, compress_level=9)
            pil = Image.open(png).convert("RGB")
            decoded = np.asarray(pil)
            assert np.array_equal(decoded, init_u8)
            init = torch.from_numpy(decoded.astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
            rec.tensors[f"{key}.init_image"] = init
            # what the pipeline's image processor makes of the PNG equals the stored tensor
            assert np.array_equal(i2i.image_processor.pil_to_numpy(pil), init.permute(0, 2, 3, 1).numpy())
            rec.run(key, i2i, kind, args, image=pil)
            rec.info[key]["image"] = "outputs/init.png (= img2img.init_image), passed as a PIL image"
    return rec


def write_calls(folder, rec):
    path = os.path.join(folder, "outputs", "calls.safetensors")
    tensors = {k: v.detach().contiguous().to(torch.float32) for k, v in rec.tensors.items()}
    return write_outputs(path, tensors, {"versions": VERSIONS, "runs": rec.info})


def schedule():
    """FluxPipeline's timestep preparation (real VAE scale 8) for both configs at the real sizes."""
    def f32(x):
        return [float(np.float32(v)) for v in x]
    cases = []
    for cfg_name, cfg in (("flux-dev", flow.FLUX_DEV), ("flux-schnell", flow.FLUX_SCHNELL)):
        for h, w in SCHEDULE_SIZES:
            lh, lw = 2 * (h // (REAL_VAE_SCALE * 2)), 2 * (w // (REAL_VAE_SCALE * 2))
            seq = (lh // 2) * (lw // 2)
            for n in SCHEDULE_STEPS:
                sched = FlowMatchEulerDiscreteScheduler.from_config(cfg)
                sigmas = np.linspace(1.0, 1 / n, n)
                mu = flux_module.calculate_shift(seq, sched.config.get("base_image_seq_len", 256),
                                                 sched.config.get("max_image_seq_len", 4096),
                                                 sched.config.get("base_shift", 0.5), sched.config.get("max_shift", 1.15))
                timesteps, steps = flux_module.retrieve_timesteps(sched, n, "cpu", sigmas=sigmas, mu=mu)
                assert steps == n and sched.sigmas.dtype == torch.float32 and timesteps.dtype == torch.float32
                cases.append({"config": cfg_name, "height": h, "width": w, "steps": n, "image_seq_len": seq, "mu": mu,
                              "sigmas": f32(sched.sigmas.tolist()), "timesteps": f32(timesteps.tolist())})
    return cases


def write_pipeline_readme(folder, title, cls_note, scheduler_cfg, spec, info, extra=()):
    lines = [f"# {title}", "",
             f"A tiny {cls_note} folder as Diffusers' save_pretrained writes it, and Diffusers' runs on it.",
             "Generated by `tools/reference/make_flux_fixtures.py` (its header says how and how the weights are drawn).",
             "", "Versions: " + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()) + ".", "",
             "## Components", "",
             "- transformer: `tiny-flux-models/transformer-" + ("dev" if "dev" in title else "schnell") + "`",
             f"- vae: AutoencoderKL(`{json.dumps(VAE_CONFIG)}`), weights re-drawn; decoder conv_out weight x"
             f"{VAE_DECODER_OUT_SCALE}, encoder conv_out log-variance bias -{VAE_LOGVAR_SHIFT}; vae_scale_factor 2, so "
             "the pipeline floors sizes to multiples of 4",
             "- text_encoder: `tiny-sd/text_encoder` (CLIPTextModel, hidden 32, eos 999: its `pooler_output` [B, 32] is "
             "the pooled vector), saved with the `text_model.` key prefix",
             "- tokenizer: `Tests/Fixtures/tokenizer` (CLIPTokenizer, 77 tokens, pads with <|endoftext|>)",
             f"- text_encoder_2: T5EncoderModel(T5Config(`{json.dumps(T5_CONFIG)}`)), weights re-drawn",
             "- tokenizer_2: `Tests/Fixtures/t5-tokenizer/tokenizer` (426-piece Unigram + 100 extra ids = 526; pad 0, eos 1)",
             f"- scheduler: FlowMatchEulerDiscreteScheduler(`{json.dumps(scheduler_cfg)}`)", "",
             "## Files", ""]
    for fn, size in files_list(folder):
        lines.append(f"- `{fn}` ({size} bytes)")
    lines += ["", "## Runs (`outputs/calls.safetensors`)", "",
              "CPU float32, `generator=torch.Generator(\"cpu\").manual_seed(seed)`, `output_type=\"pt\"` (the "
              "postprocessed image in [0, 1], [B, 3, H, W]); the table below lists every argument. The img2img run "
              "uses FluxImg2ImgPipeline built from this folder's components (`FluxImg2ImgPipeline(**pipe.components)`). "
              "Per run `<run>.`:", "",
              "- `latents_in`: the unpacked noise [B, 16, h, w] Diffusers drew (randn_tensor, recorded)",
              "- `latents_out`: the final latents, unpacked (what `_unpack_latents` returns, before "
              "`/scaling_factor + shift_factor` and the decode)",
              "- `image`: the output",
              "- `prompt_embeds` [B, S, 32] (T5), `pooled_prompt_embeds` [B, 32] (CLIP pooler_output), as encode_prompt "
              "returned them (`negative_*` too where true CFG ran)",
              "- `sigmas` [N + 1], `timesteps` [N]: the scheduler's state after set_timesteps",
              "- img2img only: `init_image` [1, 3, 32, 32] (= outputs/init.png / 255), `encode_noise` (the VAE "
              "posterior sample's randn, drawn from the generator first), `image_latents` ((sample - shift) * scale), "
              "`latents_start` (scale_noise(image_latents, timesteps[t_start], latents_in), unpacked)", ""]
    lines += ["Each run's arguments with the defaults filled in (`effective_args` in the file's metadata; `args` "
              "there holds exactly what was passed):", "",
              "| run | " + " | ".join(EFFECTIVE_ARGS + ["seed"]) + " |",
              "|---" * (len(EFFECTIVE_ARGS) + 2) + "|"]
    for key, run in info["runs"].items():
        eff = run["effective_args"]
        lines.append(f"| `{key}` | " + " | ".join(json.dumps(eff[k]) for k in EFFECTIVE_ARGS + ["seed"]) + " |")
    lines += ["", "What else the metadata records per run:", ""]
    for key, run in info["runs"].items():
        rest = {k: v for k, v in run.items() if k not in ("args", "effective_args")}
        lines.append(f"- `{key}`: `{json.dumps(rest, sort_keys=True)}`")
    lines += ["", "Tensors:", ""]
    for k, (dtype, shape) in spec.items():
        lines.append(f"- `{k}` {dtype} {shape}")
    lines += list(extra)
    lines.append("")
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    # ------------------------------------------------------------------ models
    dev = make_transformer(True)
    schnell = make_transformer(False)
    sd_dev, sd_schnell = dev.state_dict(), schnell.state_dict()
    assert set(sd_dev) - set(sd_schnell) == {k for k in sd_dev if k.startswith("time_text_embed.guidance_embedder.")}
    assert all(torch.equal(sd_schnell[k], sd_dev[k]) for k in sd_schnell)
    if os.path.isdir(MODELS):
        shutil.rmtree(MODELS)
    for name, model in (("transformer-dev", dev), ("transformer-schnell", schnell)):
        save_model(model, os.path.join(MODELS, name))
    # the outputs come from the saved folders; the pipelines get the in-memory models (a loaded model's
    # save_pretrained would write its absolute source path into config.json as _name_or_path)
    loaded_dev = FluxTransformer2DModel.from_pretrained(os.path.join(MODELS, "transformer-dev")).eval()
    loaded_schnell = FluxTransformer2DModel.from_pretrained(os.path.join(MODELS, "transformer-schnell")).eval()
    assert pinned.state_equal(loaded_dev.state_dict(), sd_dev) and pinned.state_equal(loaded_schnell.state_dict(), sd_schnell)
    t, info = model_outputs(loaded_dev, loaded_schnell)
    spec = write_outputs(os.path.join(MODELS, "outputs.safetensors"), t, info)
    write_models_readme(spec, info)

    # ------------------------------------------------------------------ pipelines
    vae = make_vae()
    t5 = make_t5()
    text_encoder = CLIPTextModel.from_pretrained(os.path.join(FIXTURES, "tiny-sd", "text_encoder")).eval()
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(FIXTURES, "tokenizer"))
    tokenizer_2 = T5TokenizerFast.from_pretrained(os.path.join(FIXTURES, "t5-tokenizer", "tokenizer"))
    assert len(tokenizer_2) == 526 and len(tokenizer_2) <= T5_CONFIG["vocab_size"]
    assert text_encoder.config.hidden_size == TRANSFORMER_CONFIG["pooled_projection_dim"]
    for folder, transformer, cfg in ((DEV, dev, flow.FLUX_DEV), (SCHNELL, schnell, flow.FLUX_SCHNELL)):
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(cfg)
        pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                            text_encoder_2=t5, tokenizer_2=tokenizer_2, transformer=transformer)
        save_pipeline(pipe, folder)

    extra_info = {}
    for folder, runs, cfg, title in ((DEV, DEV_RUNS, flow.FLUX_DEV, "tiny-flux-dev"),
                                     (SCHNELL, SCHNELL_RUNS, flow.FLUX_SCHNELL, "tiny-flux-schnell")):
        # reloaded as the Swift side will load it, from the folder
        pipe = FluxPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)
        assert type(pipe.tokenizer_2).__name__ in ("T5TokenizerFast", "T5Tokenizer"), type(pipe.tokenizer_2)
        ids = pipe.tokenizer_2(PROMPT, padding="max_length", max_length=16, truncation=True).input_ids
        assert ids == tokenizer_2(PROMPT, padding="max_length", max_length=16, truncation=True).input_ids
        assert pinned.state_equal(pipe.text_encoder_2.state_dict(), t5.state_dict())
        assert pinned.state_equal(pipe.vae.state_dict(), vae.state_dict())
        os.makedirs(os.path.join(folder, "outputs"), exist_ok=True)
        rec = pipeline_runs(pipe, runs, os.path.join(folder, "outputs"), make_init_image())
        extra_info[title] = {"tokenizer_2_class": type(pipe.tokenizer_2).__name__,
                             "t5_ids_for_prompt_len16": ids}
        if title == "tiny-flux-dev":
            # a cross-check of the hook: output_type "latent" returns the packed latents
            with torch.no_grad():
                a = dict(DEV_RUNS[0][2])
                seed = a.pop("seed")
                packed = pipe(**a, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
            unpacked = FluxPipeline._unpack_latents(packed, a["height"], a["width"], pipe.vae_scale_factor)
            assert torch.equal(unpacked, rec.tensors["square.latents_out"])
            pinned.write_json(os.path.join(folder, "outputs", "schedule.json"),
                              {"versions": VERSIONS,
                               "how": "per case: scheduler = FlowMatchEulerDiscreteScheduler.from_config(config); "
                                      "sigmas = np.linspace(1.0, 1/steps, steps); latent h = 2*(height//16), w = "
                                      "2*(width//16); image_seq_len = (h/2)*(w/2); mu = pipeline_flux.calculate_shift("
                                      "image_seq_len, base_image_seq_len, max_image_seq_len, base_shift, max_shift) "
                                      "(Python float64, written as is); pipeline_flux.retrieve_timesteps(scheduler, "
                                      "steps, 'cpu', sigmas=sigmas, mu=mu); sigmas (steps + 1, with the final 0) and "
                                      "timesteps are the scheduler's float32 values written as "
                                      "float(np.float32(x))",
                               "configs": {"flux-dev": flow.FLUX_DEV, "flux-schnell": flow.FLUX_SCHNELL},
                               "cases": schedule()})
        spec = write_calls(folder, rec)
        cls_note = "FluxPipeline (FLUX.1-" + ("dev" if title.endswith("dev") else "schnell") + " layout)"
        extra = []
        if title == "tiny-flux-dev":
            extra = ["", "`outputs/init.png`: the img2img init image (32x32 8-bit RGB, written by PIL); it decodes to "
                     "exactly `img2img.init_image` x 255.",
                     "", "`outputs/schedule.json`: FluxPipeline's timestep preparation with the real models' VAE scale "
                     "8, for both scheduler configs at 256x256, 512x512, 1024x1024, 768x1360 and 1360x768 (height x "
                     "width) and 1, 4 and 28 steps: a list of {config, height, width, steps, image_seq_len, mu, sigmas, "
                     "timesteps}; its `how` field says exactly how."]
        write_pipeline_readme(folder, title, cls_note, cfg, spec, {"runs": rec.info}, extra)
    for folder in (MODELS, DEV, SCHNELL):
        print(f"{folder}: {pinned.folder_bytes(folder)} bytes")
    print(json.dumps(extra_info))


if __name__ == "__main__":
    main()
