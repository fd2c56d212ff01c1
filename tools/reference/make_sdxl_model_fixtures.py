#!/usr/bin/env python3
# Generates tiny SDXL-style models and their reference outputs for swift-diffusers' model tests.
#
# Pinned versions: see pinned.py (torch 2.15.0, diffusers 0.42.1, transformers 5.24.0,
# safetensors 0.8, python 3.11); the fixtures in Tests/Fixtures/tiny-sdxl-models were produced
# with exactly those. Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_sdxl_model_fixtures.py
#
# Writes Tests/Fixtures/tiny-sdxl-models/ (README.md lists every file and tensor):
#   unet-base/      UNet2DConditionModel as Diffusers' SDXL pipeline tests build it (get_dummy_components
#                   of tests/pipelines/stable_diffusion_xl/test_stable_diffusion_xl.py): layers_per_block 2,
#                   transformer_layers_per_block (1, 2), attention_head_dim (2, 4), cross_attention_dim 64,
#                   use_linear_projection, addition_embed_type "text_time", addition_time_embed_dim 8,
#                   projection_class_embeddings_input_dim 80 = 32 + 6*8; but block_out_channels (16, 32) with
#                   norm_num_groups 8 instead of (32, 64): the tests' size is 8 MB of weights, this 2 MB.
#   unet-refiner/   refiner-like: four levels Down, CrossAttnDown, CrossAttnDown, Down (plain first and last),
#                   int transformer_layers_per_block 2, cross_attention_dim 48, 5 time ids (with the aesthetic
#                   score): projection_class_embeddings_input_dim 72 = 32 + 5*8.
#   unet-asymmetric/ nested transformer_layers_per_block lists with reverse_transformer_layers_per_block
#                   (the up blocks' own depths), no addition embedding.
#   text-encoder-2/ CLIPTextModelWithProjection, hidden 32, projection_dim 32, hidden_act "gelu" (exact erf),
#                   eos_token_id 2 (SDXL's legacy value: the pooled position is argmax(input_ids)).
#   outputs/*.safetensors  inputs and Diffusers'/transformers' outputs for each model.
# Sizes: about 3.9 MB in all (2.2 MB of it the base UNet's weights; the README states each file's size).
#
# Weights: default initialisation under torch.manual_seed(0), then every constant-initialised
# parameter re-drawn and the attention query/key and first feed-forward weights scaled, exactly as
# make_sd_fixtures.py does (its redraw_constant_params and scale factors are reused), so that a
# dropped bias or a wrong activation cannot pass the 1e-4 relative-L2 contract.
#
# Determinism: seeded generators, safetensors metadata with at most one key, CPU float32 with
# 2 threads; re-running gives byte-identical files.

import argparse
import json
import os
import shutil
import sys

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import default_init, randn
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

transformers = pinned.import_transformers()
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_sd_fixtures as sd  # noqa: E402  (redraw_constant_params, write_safetensors, the scale factors)

pinned.setup(threads=2)
VERSIONS = pinned.versions("transformers")

# Diffusers' older test UNet ((32, 64), layers_per_block 2, Down + CrossAttnDown) with the SDXL test's
# arguments, at (16, 32) channels.
UNET_BASE_CONFIG = dict(
    pinned.DIFFUSERS_TEST_UNET,
    block_out_channels=(16, 32),
    sample_size=16,
    attention_head_dim=(2, 4),
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    transformer_layers_per_block=(1, 2),
    projection_class_embeddings_input_dim=80,  # 32 pooled + 6 time ids * 8
    cross_attention_dim=64,
    norm_num_groups=8,
)
UNET_REFINER_CONFIG = dict(
    UNET_BASE_CONFIG,
    block_out_channels=(8, 16, 16, 16),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(1, 2, 4, 4),   # heads of 8, 8 and 4 wide at the attention levels
    transformer_layers_per_block=2,
    projection_class_embeddings_input_dim=72,  # 32 pooled + 5 time ids * 8
    cross_attention_dim=48,
    norm_num_groups=4,
)
UNET_ASYMMETRIC_CONFIG = {k: v for k, v in UNET_BASE_CONFIG.items() if not k.startswith(("addition_", "projection_"))}
UNET_ASYMMETRIC_CONFIG.update(
    block_out_channels=(8, 8),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    transformer_layers_per_block=[[1, 2], [2, 1]],   # per down block, per resnet; the mid block takes [-1][0]
    reverse_transformer_layers_per_block=[[1, 2, 1], [2, 1, 1]],   # per up block, per resnet
    cross_attention_dim=24,
    norm_num_groups=4,
)
# make_sd_fixtures' CLIP (hidden 32, 5 layers, vocabulary 1000) as SDXL's text_encoder_2 is configured.
CLIP_CONFIG = dict(sd.CLIP_CONFIG, bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_act="gelu", projection_dim=32)

UNETS = {"unet-base": (UNET_BASE_CONFIG, 6), "unet-refiner": (UNET_REFINER_CONFIG, 5), "unet-asymmetric": (UNET_ASYMMETRIC_CONFIG, 0)}
# Micro-conditioning as the pipelines build it: (orig_h, orig_w, crop_top, crop_left, target_h, target_w)
# for the base, (orig_h, orig_w, crop_top, crop_left, aesthetic_score) for the refiner.
TIME_IDS = {6: [[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0], [768.0, 1344.0, 32.0, 16.0, 1024.0, 1024.0]],
            5: [[1024.0, 1024.0, 0.0, 0.0, 6.0], [512.0, 768.0, 8.0, 0.0, 2.5]]}


def shape_unet(unet):
    """make_sd_fixtures.shape_activations' scaling for one UNet."""
    with torch.no_grad():
        for m in unet.modules():
            if isinstance(m, Attention):
                m.to_q.weight.mul_(sd.QK_SCALE_UNET_VAE)
                m.to_k.weight.mul_(sd.QK_SCALE_UNET_VAE)
        for n, p in unet.named_parameters():
            if n.endswith("ff.net.0.proj.weight"):
                p.mul_(sd.FF_SCALE_UNET)


def shape_clip(model):
    with torch.no_grad():
        for layer in model.text_model.encoder.layers:
            layer.self_attn.q_proj.weight.mul_(sd.QK_SCALE_CLIP)
            layer.self_attn.k_proj.weight.mul_(sd.QK_SCALE_CLIP)
            layer.mlp.fc1.weight.mul_(sd.FF_SCALE_CLIP)


def fresh_folder(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def check_metadata(folder):
    import safetensors
    for fn in os.listdir(folder):
        if fn.endswith(".safetensors"):
            with safetensors.safe_open(os.path.join(folder, fn), "pt") as f:
                assert len(f.metadata() or {}) <= 1, fn  # deterministic header


# ----------------------------------------------------------------------------- UNets

def build_and_save(cls, name, shape, out, *args, **kwargs):
    """cls(*args, **kwargs) with default init, constant parameters re-drawn and `shape` applied, saved
    to out/name and loaded back from there (checked bit-identical): (loaded model, re-drawn names, size)."""
    model = default_init(cls, *args, **kwargs)
    redrawn = sd.redraw_constant_params(model, name)
    shape(model)
    model.eval().requires_grad_(False)
    folder = os.path.join(out, name)
    fresh_folder(folder)
    model.save_pretrained(folder, safe_serialization=True)
    check_metadata(folder)
    loaded = cls.from_pretrained(folder).eval()
    assert pinned.state_equal(loaded.state_dict(), model.state_dict())
    return loaded, redrawn, sum(p.numel() for p in model.parameters())


def make_unet(name, config, n_ids, out):
    loaded, redrawn, params = build_and_save(UNet2DConditionModel, name, shape_unet, out, **config)

    size = config["sample_size"]
    sample = randn(f"{name}/sample", 2, 4, size, size)
    ehs = randn(f"{name}/encoder_hidden_states", 2, 77, config["cross_attention_dim"])
    t = {"sample": sample, "encoder_hidden_states": ehs}
    info = {"model": f"tiny-sdxl-models/{name}", "sample": f"[2,4,{size},{size}] randn",
            "encoder_hidden_states": f"[2,77,{config['cross_attention_dim']}] randn", "versions": VERSIONS}
    added = None
    if n_ids:
        t["text_embeds"] = randn(f"{name}/text_embeds", 2, 32)
        t["time_ids"] = torch.tensor(TIME_IDS[n_ids], dtype=torch.float32)
        added = {"text_embeds": t["text_embeds"], "time_ids": t["time_ids"]}
        info["text_embeds"] = "[2,32] randn (the pooled, projected text_encoder_2 output)"
        info["time_ids"] = f"[2,{n_ids}] micro-conditioning: " + json.dumps(TIME_IDS[n_ids])
    captured = {}
    hooks = []

    def capture(mod):
        def hook(module, args, output):
            captured[mod] = output.detach().clone()  # returns None: the output is left as it is
        return hook

    if n_ids:
        for mod in ("add_time_proj", "add_embedding", "time_embedding"):
            hooks.append(loaded.get_submodule(mod).register_forward_hook(capture(mod)))
    with torch.no_grad():
        for ts in (981, 1):
            t[f"out_t{ts}"] = loaded(sample, torch.tensor(ts), encoder_hidden_states=ehs, added_cond_kwargs=added).sample
            if n_ids and ts == 981:
                t["t981.add_time_proj"] = captured["add_time_proj"]
                t["t981.add_embedding"] = captured["add_embedding"]
                t["t981.emb"] = captured["time_embedding"] + captured["add_embedding"]
        # one timestep per sample
        t["timesteps_per_sample"] = torch.tensor([981, 1])
        t["out_per_sample"] = loaded(sample, t["timesteps_per_sample"], encoder_hidden_states=ehs,
                                     added_cond_kwargs=added).sample
        assert torch.equal(t["out_per_sample"][0], t["out_t981"][0]) and torch.equal(t["out_per_sample"][1], t["out_t1"][1])
    for h in hooks:
        h.remove()
    info["out_t{T}"] = ("unet(sample, torch.tensor(T) (0-d int64), encoder_hidden_states" +
                        (", added_cond_kwargs={text_embeds, time_ids}" if n_ids else "") + ").sample")
    info["out_per_sample"] = "the same with timestep = timesteps_per_sample [981, 1]"
    if n_ids:
        info["t981.*"] = ("at t=981: add_time_proj output [2*N, 8] (time_ids flattened), add_embedding output "
                          "[2, time_embed_dim], emb = time_embedding(t_emb) + add_embedding(...), what the resnets get")
    spec = sd.write_safetensors(os.path.join(out, "outputs", f"{name}.safetensors"), t, info)
    return spec, info, redrawn, params


# ----------------------------------------------------------------------------- text encoder 2

def make_text_encoder(out):
    name = "text-encoder-2"
    loaded, redrawn, params = build_and_save(CLIPTextModelWithProjection, name, shape_clip, out, CLIPTextConfig(**CLIP_CONFIG))

    # bos 0, words, an end id, then padding. Row 0 pads with "!" (id 0, as SDXL's tokenizer_2 does) and
    # holds its highest id twice (argmax takes the first); row 1 ends with 999 and pads with it (as
    # tokenizer pads with its end token, the highest id); row 2 is a full row whose highest id is a word
    # in the middle: argmax(input_ids) is the legacy rule whatever the ids mean.
    g = pinned.gen(f"{name}/input_ids")
    words = torch.randint(3, 990, (3, 20), generator=g)
    ids = torch.zeros(3, 77, dtype=torch.int64)
    ids[0, 1:13] = words[0, :12]
    ids[0, 5] = ids[0, 9] = 995
    ids[0, 13] = 2
    ids[1, 1:8] = words[1, :7]
    ids[1, 8:] = 999
    ids[2, :] = torch.randint(3, 990, (77,), generator=g)
    ids[2, 40] = 999
    ids[2, 76] = 2
    with torch.no_grad():
        res = loaded(ids, output_hidden_states=True)
    t = {"input_ids": ids, "text_embeds": res.text_embeds, "last_hidden_state": res.last_hidden_state}
    for i, h in enumerate(res.hidden_states):
        t[f"hidden_states.{i}"] = h
    pos = ids.to(torch.int).argmax(dim=-1)
    assert pos.tolist() == [5, 8, 40], pos
    t["pooled_output"] = res.last_hidden_state[torch.arange(3), pos]
    assert torch.allclose(loaded.text_projection(t["pooled_output"]), res.text_embeds, atol=1e-6)
    info = {
        "input_ids": "[3,77] hand-made ids: bos 0, random words, eos 2, pads; argmax positions [5, 8, 40] (first "
                     "occurrence of the highest id)",
        "text_embeds": "model(input_ids).text_embeds [3,32] = text_projection(pooled_output)",
        "pooled_output": "last_hidden_state[b, argmax(input_ids[b])] [3,32] (eos_token_id == 2: the legacy rule)",
        "last_hidden_state": "[3,77,32] after final_layer_norm",
        "hidden_states.{i}": f"model(input_ids, output_hidden_states=True).hidden_states[i], i = 0..{len(res.hidden_states) - 1}: "
                             "embeddings, then each layer's output, none final-normed; SDXL takes [-2]",
        "versions": VERSIONS,
    }
    spec = sd.write_safetensors(os.path.join(out, "outputs", f"{name}.safetensors"), t, info)
    return spec, info, redrawn, params


# ----------------------------------------------------------------------------- README

def write_readme(out, results):
    lines = ["# tiny-sdxl-models", "",
             "Tiny random-weight SDXL-style models and the outputs Diffusers / transformers compute for them",
             "(CPU, float32). Generated by `tools/reference/make_sdxl_model_fixtures.py` (its header says how,",
             "and why the weights are re-drawn and scaled); read by `Tests/ModelsTests/TinySDXLModelTests.swift` and",
             "`SDXLConfigErrorTests.swift`.",
             "", "Versions: " + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()) + ".", ""]
    for name, (spec, info, redrawn, params) in results.items():
        folder = os.path.join(out, name)
        lines.append(f"## {name}/ ({params} parameters)")
        lines.append("")
        for fn in sorted(os.listdir(folder)):
            lines.append(f"- `{name}/{fn}` ({os.path.getsize(os.path.join(folder, fn))} bytes)")
        lines.append(f"- re-drawn constant parameters: {len(redrawn)}")
        cfg = UNETS.get(name, (CLIP_CONFIG,))[0]
        lines.append(f"- config arguments: `{json.dumps(cfg)}`")
        lines.append("")
        path = os.path.join(out, "outputs", f"{name}.safetensors")
        lines.append(f"`outputs/{name}.safetensors` ({os.path.getsize(path)} bytes):")
        lines.append("")
        for k, (dtype, shape) in spec.items():
            lines.append(f"- `{k}` {dtype} {shape}")
        lines.append("")
        for k, v in info.items():
            if k != "versions":
                lines.append(f"- {k}: {v}")
        lines.append("")
    lines.append(f"Total: {pinned.folder_bytes(out)} bytes before this README.")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/tiny-sdxl-models")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "outputs"), exist_ok=True)
    results = {}
    for name, (config, n_ids) in UNETS.items():
        results[name] = make_unet(name, config, n_ids, args.out)
    results["text-encoder-2"] = make_text_encoder(args.out)
    write_readme(args.out, results)
    print(f"{args.out}: {pinned.folder_bytes(args.out)} bytes")


if __name__ == "__main__":
    main()
