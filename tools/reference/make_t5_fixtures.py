#!/usr/bin/env python3
# Generates tiny T5 / UMT5 text encoders and the outputs transformers computes for them, for
# swift-diffusers' T5EncoderModel tests (Tests/ModelsTests/T5EncoderModelTests.swift).
#
# Pinned versions: see pinned.py (torch 2.15.0, diffusers 0.42.1, transformers 5.24.0,
# safetensors 0.8, numpy 2.x, python 3.11). Run from the repository root:
#   /var/tmp/venv-torch/bin/python tools/reference/make_t5_fixtures.py
#
# Writes Tests/Fixtures/tiny-t5/ (README.md lists every file and tensor):
#   t5-v1_1/   T5EncoderModel as FLUX's text_encoder_2 is built (T5 v1.1: gated-gelu = gelu_new, no biases,
#              relative attention bias in block 0 only), tiny: d_model 32, d_kv 10 (so that heads x d_kv = 40
#              differs from d_model), 4 heads, d_ff 48, 2 layers, vocabulary 64, 32 buckets, max_distance 128.
#              Saved by transformers' save_pretrained: only `shared.weight`, no `encoder.embed_tokens.weight`.
#   t5-old/    an original-T5-style ("relu", T5DenseActDense with `wi`) T5ForConditionalGeneration saved the way
#              older files are: `encoder.embed_tokens.weight` duplicated next to `shared.weight`, decoder keys and
#              `decoder.embed_tokens.weight` present. The encoder must load from it, ignoring the decoder.
#   umt5/      UMT5EncoderModel (Wan's text encoder family): a relative attention bias in every block.
#   outputs.safetensors  inputs and outputs (see README.md).
#
# Inputs: a [1, 77] sequence with no mask (as FLUX encodes, pads attending) and a [2, 170] batch (row 1
# padded after 111 tokens) run with its attention mask and without: 170 tokens reach relative distances of
# 169, so every log bucket and the >= 91 bucket (15) take part.
#
# Weights: default initialisation under torch.manual_seed(0); the layer norms (all ones) re-drawn as
# 1 + 0.1 randn (make_sd_fixtures.redraw_constant_params); then query/key weights x2, the relative attention
# bias x8 and the first feed-forward weights x2, so that the bias, the buckets and the tanh GELU matter:
# `sensitivity` in outputs' metadata (and README.md) records how far a port's typical mistakes move the
# output (each above 1e-4, ten times the tests' 1e-5 relative L2 bound; the asserted minimum).
#
# bf16 / f16: the t5-v1_1 folder loaded with from_pretrained(dtype=torch.bfloat16) (T5's _keep_in_fp32_modules
# applies to float16 only, so every weight is bf16) and with dtype=torch.float16 (the feed-forward `wo` weights
# stay float32), run on the masked batch; `b.bf16_drift` and `b.f16_drift` are transformers' own errors against
# its float32 output.
#
# Determinism: seeded generators, safetensors metadata with at most one key, CPU float32, 2 threads;
# re-running gives byte-identical files.

import argparse
import json
import math
import os
import shutil
import sys

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import default_init, gen
import torch
from safetensors.torch import load_file, save_file

transformers = pinned.import_transformers()
from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration, UMT5Config, UMT5EncoderModel
from transformers.models.t5 import modeling_t5

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_sd_fixtures as sd  # noqa: E402  (redraw_constant_params, write_safetensors)

pinned.setup(threads=2)
VERSIONS = pinned.versions("transformers", "numpy")

T5_CONFIG = dict(vocab_size=64, d_model=32, d_kv=10, num_heads=4, d_ff=48, num_layers=2,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128,
                 feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, is_encoder_decoder=False,
                 tie_word_embeddings=False, pad_token_id=0, eos_token_id=1)
OLD_CONFIG = dict(vocab_size=64, d_model=16, d_kv=6, num_heads=2, d_ff=24, num_layers=2, num_decoder_layers=1,
                  relative_attention_num_buckets=32, relative_attention_max_distance=128,
                  feed_forward_proj="relu", layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1,
                  decoder_start_token_id=0)
UMT5_CONFIG = dict(vocab_size=64, d_model=16, d_kv=6, num_heads=2, d_ff=24, num_layers=2,
                   relative_attention_num_buckets=32, relative_attention_max_distance=128,
                   feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, is_encoder_decoder=False,
                   pad_token_id=0, eos_token_id=1)
QK_SCALE = 2.0
BIAS_SCALE = 8.0
FF_SCALE = 2.0


def shape_weights(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("SelfAttention.q.weight", "SelfAttention.k.weight")):
                p.mul_(QK_SCALE)
            elif name.endswith("relative_attention_bias.weight"):
                p.mul_(BIAS_SCALE)
            elif name.endswith(("DenseReluDense.wi_0.weight", "DenseReluDense.wi.weight")):
                p.mul_(FF_SCALE)


def fresh_folder(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def build(cls, config_cls, config, name, out):
    """cls(config_cls(**config)) with default init, constant parameters re-drawn and shaped, saved to
    out/name by save_pretrained: (model, re-drawn names)."""
    model = default_init(cls, config_cls(**config))
    redrawn = sd.redraw_constant_params(model, name)
    shape_weights(model)
    model.eval().requires_grad_(False)
    folder = os.path.join(out, name)
    fresh_folder(folder)
    model.save_pretrained(folder, safe_serialization=True)
    return model, redrawn


def check_metadata(folder):
    import safetensors
    with safetensors.safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        assert len(f.metadata() or {}) <= 1


def inputs():
    g = gen("tiny-t5/input_ids")
    a = torch.zeros(1, 77, dtype=torch.int64)
    a[0, :20] = torch.randint(2, 64, (20,), generator=g)
    a[0, 20] = 1  # eos, then pads (id 0) that attend: FLUX passes no mask
    b = torch.randint(2, 64, (2, 170), generator=g)
    b[0, 169] = 1
    b[1, 110] = 1
    b[1, 111:] = 0
    mask = torch.ones(2, 170, dtype=torch.int64)
    mask[1, 111:] = 0
    return a, b, mask


def relative_buckets(n=600, buckets=32, max_distance=128):
    rel = torch.arange(-n, n + 1, dtype=torch.long)
    return modeling_t5.T5Attention._relative_position_bucket(rel, bidirectional=True, num_buckets=buckets,
                                                             max_distance=max_distance)


def rel_l2(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def sensitivity(model, ids, reference):
    """Relative L2 change of the output under typical porting mistakes (each patched in, then undone)."""
    results = {}
    attn = modeling_t5.T5Attention
    orig_bucket = attn._relative_position_bucket

    def run():
        with torch.no_grad():
            return model(ids).last_hidden_state

    def last_bucket_off(rel, bidirectional=True, num_buckets=32, max_distance=128):
        b = orig_bucket(rel, bidirectional, num_buckets, max_distance)
        big = rel.abs() >= 91
        return torch.where(big, b - 1, b)
    attn._relative_position_bucket = staticmethod(last_bucket_off)
    results["bucket 14 instead of 15 for |n| >= 91"] = rel_l2(run(), reference)

    def unsigned(rel, bidirectional=True, num_buckets=32, max_distance=128):
        return orig_bucket(rel.abs(), bidirectional, num_buckets, max_distance)
    attn._relative_position_bucket = staticmethod(unsigned)
    results["no +16 for positive offsets"] = rel_l2(run(), reference)
    attn._relative_position_bucket = staticmethod(orig_bucket)

    saved = []
    for blk in model.encoder.block:
        saved.append(blk.layer[0].SelfAttention.scaling)
        blk.layer[0].SelfAttention.scaling = 1 / math.sqrt(model.config.d_kv)
    results["1/sqrt(d_kv) scaling"] = rel_l2(run(), reference)
    for blk, s in zip(model.encoder.block, saved):
        blk.layer[0].SelfAttention.scaling = s

    acts = [blk.layer[1].DenseReluDense for blk in model.encoder.block]
    old = [a.act for a in acts]
    for a in acts:
        a.act = torch.nn.GELU()
    results["exact GELU instead of gelu_new"] = rel_l2(run(), reference)
    for a, o in zip(acts, old):
        a.act = o

    # the bias in block 0 only, not passed on
    orig_stack_forward = modeling_t5.T5Block.forward

    def no_reuse(self, hidden_states, attention_mask=None, position_bias=None, *args, **kwargs):
        out = orig_stack_forward(self, hidden_states, attention_mask, None, *args, **kwargs)
        return out[0], None, out[2]
    modeling_t5.T5Block.forward = no_reuse
    results["bias in block 0 only (not reused)"] = rel_l2(run(), reference)
    modeling_t5.T5Block.forward = orig_stack_forward

    orig_norm = modeling_t5.T5LayerNorm.forward

    def with_mean(self, h):
        return orig_norm(self, h - h.mean(-1, keepdim=True))
    modeling_t5.T5LayerNorm.forward = with_mean
    results["mean subtracted in T5LayerNorm"] = rel_l2(run(), reference)
    modeling_t5.T5LayerNorm.forward = orig_norm
    assert torch.equal(run(), reference)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/tiny-t5")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    a, b, mask = inputs()
    t, info = {}, {"versions": VERSIONS}
    t["a.input_ids"], t["b.input_ids"], t["b.attention_mask"] = a, b, mask
    info["a.input_ids"] = "[1,77]: 20 random ids in 2..<64, eos 1, then pad 0 (run without a mask, as FLUX)"
    info["b.input_ids"] = "[2,170]: random ids; row 0 ends with eos 1; row 1 has eos at 110 and pads after"
    info["b.attention_mask"] = "[2,170] int64: row 0 all ones, row 1 ones for the first 111 positions"

    # ------------------------------------------------------------------ T5 v1.1
    model, redrawn = build(T5EncoderModel, T5Config, T5_CONFIG, "t5-v1_1", out)
    folder = os.path.join(out, "t5-v1_1")
    check_metadata(folder)
    keys = list(load_file(os.path.join(folder, "model.safetensors")))
    assert "shared.weight" in keys and "encoder.embed_tokens.weight" not in keys, keys
    loaded = T5EncoderModel.from_pretrained(folder).eval()
    assert loaded.config._attn_implementation == "sdpa", loaded.config._attn_implementation
    with torch.no_grad():
        t["a.last_hidden_state"] = loaded(a).last_hidden_state
        t["b.last_hidden_state"] = loaded(b, attention_mask=mask).last_hidden_state
        unmasked = loaded(b).last_hidden_state
        # row 0 has no pads, so only row 1 differs from the masked run
        assert torch.equal(unmasked[0], t["b.last_hidden_state"][0])
        t["b.unmasked.last_hidden_state"] = unmasked[1:]
        eager = T5EncoderModel.from_pretrained(folder, attn_implementation="eager").eval()
        eager_b = eager(b, attention_mask=mask).last_hidden_state
    info["a.last_hidden_state"] = "t5-v1_1(a.input_ids).last_hidden_state, float32 (sdpa attention)"
    info["b.last_hidden_state"] = "t5-v1_1(b.input_ids, attention_mask=b.attention_mask).last_hidden_state"
    info["b.unmasked.last_hidden_state"] = ("row 1 of t5-v1_1(b.input_ids) without a mask (its pads attend; row 0, "
                                            "which has none, equals the masked run's)")
    info["eager_vs_sdpa"] = rel_l2(eager_b, t["b.last_hidden_state"])
    info["masked_vs_unmasked"] = rel_l2(unmasked, t["b.last_hidden_state"])

    bf16 = T5EncoderModel.from_pretrained(folder, dtype=torch.bfloat16).eval()
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())
    with torch.no_grad():
        out_bf16 = bf16(b, attention_mask=mask).last_hidden_state
    assert out_bf16.dtype == torch.bfloat16
    t["b.bf16.last_hidden_state"] = out_bf16
    info["b.bf16.last_hidden_state"] = ("the masked batch through from_pretrained(dtype=torch.bfloat16) (every weight bf16), "
                                        "stored as bf16")
    info["b.bf16_drift"] = rel_l2(out_bf16, t["b.last_hidden_state"])

    f16 = T5EncoderModel.from_pretrained(folder, dtype=torch.float16).eval()
    kept = {n for n, p in f16.named_parameters() if p.dtype == torch.float32}
    assert kept and all(n.endswith("DenseReluDense.wo.weight") for n in kept), kept
    with torch.no_grad():
        out_f16 = f16(b, attention_mask=mask).last_hidden_state
    assert out_f16.dtype == torch.float16
    t["b.f16.last_hidden_state"] = out_f16
    info["b.f16.last_hidden_state"] = ("the masked batch through from_pretrained(dtype=torch.float16): every weight f16 but "
                                       "the feed-forward `wo` (_keep_in_fp32_modules), so the residual stream is f32 after "
                                       "block 0's feed-forward; the final norm's f16 weight makes the output f16")
    info["b.f16_drift"] = rel_l2(out_f16, t["b.last_hidden_state"])

    t["buckets"] = relative_buckets()
    info["buckets"] = ("T5Attention._relative_position_bucket(arange(-600, 601), bidirectional=True, num_buckets=32, "
                       "max_distance=128): entry i is relative position j - i = i - 600")
    info["sensitivity"] = sensitivity(loaded, b, unmasked)
    for mistake, change in info["sensitivity"].items():
        assert change > 1e-4, (mistake, change)  # ten times the tests' 1e-5 bound

    # ------------------------------------------------------------------ old-style T5 (relu) with decoder
    name = "t5-old"
    full = default_init(T5ForConditionalGeneration, T5Config(**OLD_CONFIG))
    sd.redraw_constant_params(full, name)
    shape_weights(full)
    full.eval().requires_grad_(False)
    folder = os.path.join(out, name)
    fresh_folder(folder)
    full.save_pretrained(folder, safe_serialization=True)
    os.remove(os.path.join(folder, "generation_config.json"))  # not read by the encoder
    path = os.path.join(folder, "model.safetensors")
    state = load_file(path)
    assert "encoder.embed_tokens.weight" not in state and any(k.startswith("decoder.") for k in state), sorted(state)
    # what older exports (transformers 4, single-file conversions) carry: the tied copies written out
    state["encoder.embed_tokens.weight"] = state["shared.weight"].clone()
    state["decoder.embed_tokens.weight"] = state["shared.weight"].clone()
    save_file(dict(sorted(state.items())), path, metadata={"format": "pt"})
    check_metadata(folder)
    old = T5EncoderModel.from_pretrained(folder).eval()
    assert torch.equal(old.shared.weight, full.shared.weight)
    with torch.no_grad():
        t["old.last_hidden_state"] = old(a).last_hidden_state
        reference = full.encoder(input_ids=a).last_hidden_state
    assert torch.allclose(reference, t["old.last_hidden_state"], rtol=0, atol=1e-6)
    info["old.last_hidden_state"] = ("T5EncoderModel.from_pretrained(t5-old)(a.input_ids).last_hidden_state: relu "
                                     "feed-forward (wi, wo), no mask")
    info["t5-old keys"] = ("shared.weight, encoder.embed_tokens.weight (a copy), encoder.*, decoder.* (1 layer), "
                           "decoder.embed_tokens.weight (a copy)")

    # ------------------------------------------------------------------ UMT5
    umt5, _ = build(UMT5EncoderModel, UMT5Config, UMT5_CONFIG, "umt5", out)
    folder = os.path.join(out, "umt5")
    check_metadata(folder)
    loaded_u = UMT5EncoderModel.from_pretrained(folder).eval()
    assert all(blk.layer[0].SelfAttention.has_relative_attention_bias for blk in loaded_u.encoder.block)
    with torch.no_grad():
        t["umt5.b.last_hidden_state"] = loaded_u(b, attention_mask=mask).last_hidden_state
    info["umt5.b.last_hidden_state"] = "umt5(b.input_ids, attention_mask=b.attention_mask).last_hidden_state"

    spec = write_outputs(os.path.join(out, "outputs.safetensors"), t, info)
    write_readme(out, spec, info, redrawn)
    print(json.dumps({k: info[k] for k in ("eager_vs_sdpa", "masked_vs_unmasked", "b.bf16_drift", "b.f16_drift",
                                           "sensitivity")}, indent=1))
    print(f"{out}: {pinned.folder_bytes(out)} bytes")


def write_outputs(path, tensors, info):
    """make_sd_fixtures.write_safetensors, keeping bf16 tensors bf16."""
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    pinned.save_checked(tensors, path, {"info": json.dumps(info, sort_keys=True)})
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")
    return {k: (str(v.dtype).replace("torch.", ""), list(v.shape)) for k, v in tensors.items()}


def write_readme(out, spec, info, redrawn):
    lines = ["# tiny-t5", "",
             "Tiny random-weight T5 / UMT5 text encoders and the outputs transformers computes for them (CPU).",
             "Generated by `tools/reference/make_t5_fixtures.py` (its header says how and why the weights are",
             "re-drawn and scaled); read by `Tests/ModelsTests/T5EncoderModelTests.swift`.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()) + ".", ""]
    for name, cfg in (("t5-v1_1", T5_CONFIG), ("t5-old", OLD_CONFIG), ("umt5", UMT5_CONFIG)):
        lines.append(f"## {name}/")
        lines.append("")
        for fn in sorted(os.listdir(os.path.join(out, name))):
            lines.append(f"- `{name}/{fn}` ({os.path.getsize(os.path.join(out, name, fn))} bytes)")
        lines.append(f"- config arguments: `{json.dumps(cfg)}`")
        lines.append("")
    lines.append(f"t5-v1_1 re-drawn constant parameters: {len(redrawn)}.")
    lines.append("")
    lines.append(f"`outputs.safetensors` ({os.path.getsize(os.path.join(out, 'outputs.safetensors'))} bytes):")
    lines.append("")
    for k, (dtype, shape) in spec.items():
        lines.append(f"- `{k}` {dtype} {shape}: {info.get(k, '')}")
    lines.append("")
    lines.append(f"transformers' sdpa vs eager attention on the masked batch: relative L2 {info['eager_vs_sdpa']:.3g}.")
    lines.append(f"Masked vs unmasked batch: {info['masked_vs_unmasked']:.3g}. transformers' own drift from float32: "
                 f"bf16 {info['b.bf16_drift']:.3g}, f16 {info['b.f16_drift']:.3g}.")
    lines.append("")
    lines.append("Relative L2 change of `b.unmasked.last_hidden_state` under typical porting mistakes:")
    lines.append("")
    for mistake, change in info["sensitivity"].items():
        lines.append(f"- {mistake}: {change:.3g}")
    lines.append("")
    lines.append(f"Total: {pinned.folder_bytes(out)} bytes before this README.")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
