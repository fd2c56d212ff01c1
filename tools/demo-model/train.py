#!/usr/bin/env python3
# Trains the demo Stable Diffusion pipeline (models/demo) from scratch on CPU: a BPE tokenizer on
# the captions, a small AutoencoderKL (64x64 RGB <-> 16x16x4), then a small CLIPTextModel and
# UNet2DConditionModel jointly on precomputed VAE latents, and saves a standard Diffusers
# StableDiffusionPipeline folder (float32 safetensors).
#
#   /work/venv/bin/python tools/demo-model/train.py --out models/demo
#
# Stages (--stages, comma separated; default all): data,tokenizer,vae,latents,unet,save,eval.
# Intermediate results go to --work (default /tmp/demo-train), so stages can be rerun one by one.
# Pinned versions: see tools/reference/pinned.py (imported: offline mode, version checks).

import argparse
import json
import math
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
sys.path.insert(0, HERE)

import pinned  # noqa: E402  (offline mode, version pins)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from diffusers import (AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler,  # noqa: E402
                       StableDiffusionPipeline, UNet2DConditionModel)

transformers = pinned.import_transformers()
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

import dataset  # noqa: E402

BOS, EOS = "<|startoftext|>", "<|endoftext|>"

TRAIN_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      prediction_type="epsilon", clip_sample=False, steps_offset=1)

VAE_CONFIG = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                  up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64), latent_channels=4,
                  layers_per_block=1, norm_num_groups=32, sample_size=64, act_fn="silu")

TEXT_HIDDEN = 128
UNET_CONFIG = dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                   block_out_channels=(64, 96, 96),
                   down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                   up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                   cross_attention_dim=TEXT_HIDDEN, attention_head_dim=8, norm_num_groups=32)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ----------------------------------------------------------------------------- tokenizer (BPE, CLIP convention)

from bpe import BYTE_ENCODER, added_token, train_bpe  # noqa: E402  (tools/reference/bpe.py)
PAT = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")  # CLIP's pattern restricted to ASCII captions


def pretokenize(text):
    return PAT.findall(re.sub(r"\s+", " ", text).lower())


def write_tokenizer(out, merges):
    os.makedirs(out, exist_ok=True)
    byte_chars = list(BYTE_ENCODER.values())
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [BOS, EOS]
    assert len(set(vocab_list)) == len(vocab_list)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    config = {
        "add_prefix_space": False, "bos_token": added_token(BOS), "do_lower_case": True,
        "eos_token": added_token(EOS), "errors": "replace", "model_max_length": 77,
        "name_or_path": "swift-diffusers/demo-shapes", "pad_token": EOS,
        "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
        "unk_token": added_token(EOS),
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    stm = {k: ({kk: vv for kk, vv in added_token(v).items() if kk != "__type"} if k != "pad_token" else v)
           for k, v in [("bos_token", BOS), ("eos_token", EOS), ("pad_token", EOS), ("unk_token", EOS)]}
    with open(os.path.join(out, "special_tokens_map.json"), "w") as f:
        json.dump(stm, f, indent=2)
        f.write("\n")
    return vocab


def stage_tokenizer(a, captions):
    t0 = time.time()
    sentences = [" ".join(dataset.all_words())] + sorted(set(captions))
    merges = train_bpe(sentences, pretokenize, 2000, stop_when_words_whole=True)
    out = os.path.join(a.work, "tokenizer")
    vocab = write_tokenizer(out, merges)
    tok = CLIPTokenizer.from_pretrained(out)
    for w in dataset.all_words():
        ids = tok(w).input_ids
        assert len(ids) == 3 and ids[0] == vocab[BOS] and ids[2] == vocab[EOS], (w, ids)
        assert ids[1] == vocab[w + "</w>"], (w, ids)
    ids = tok("a large red circle on a blue background", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[-1] == vocab[EOS]
    log(f"tokenizer: {len(merges)} merges, vocab {len(vocab)} ({time.time() - t0:.1f}s)")
    return {"merges": len(merges), "vocab_size": len(vocab), "seconds": time.time() - t0}


# ----------------------------------------------------------------------------- VAE

def to_tensor(u8):
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def stage_vae(a, images):
    torch.manual_seed(a.seed)
    vae = AutoencoderKL(**VAE_CONFIG)
    n_params = sum(p.numel() for p in vae.parameters())
    log(f"VAE: {n_params} parameters")
    opt = torch.optim.AdamW(vae.parameters(), lr=a.vae_lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(a.seed + 1)
    t0 = time.time()
    step = 0
    crop = a.vae_crop
    while step < a.vae_steps and time.time() - t0 < a.vae_seconds:
        idx = torch.randint(0, len(images), (a.vae_batch,), generator=g)
        x = to_tensor(images[idx.numpy()])
        if crop < 64:
            oy, ox = torch.randint(0, 64 - crop + 1, (2,), generator=g).tolist()
            x = x[:, :, oy:oy + crop, ox:ox + crop]
        lr = a.vae_lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.vae_steps)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        post = vae.encode(x).latent_dist
        z = post.sample(generator=g)
        rec = vae.decode(z).sample
        l_rec = F.mse_loss(rec, x) + F.l1_loss(rec, x)
        kl = post.kl().mean() / (z[0].numel())
        loss = l_rec + a.vae_kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log(f"vae step {step} loss {l_rec.item():.4f} kl {kl.item():.3f} lr {lr:.2e} ({time.time() - t0:.0f}s)")
    secs = time.time() - t0
    vae.eval()
    vae.save_pretrained(os.path.join(a.work, "vae"), safe_serialization=True)
    log(f"VAE trained: {step} steps in {secs:.0f}s")
    return {"parameters": n_params, "steps": step, "batch": a.vae_batch, "crop": crop, "seconds": secs}


@torch.no_grad()
def stage_latents(a, images):
    """Posterior mean/std of every training image; scaling_factor = 1/std of sampled latents."""
    vae = AutoencoderKL.from_pretrained(os.path.join(a.work, "vae"))
    vae.eval()
    t0 = time.time()
    means, stds = [], []
    err = []
    for i in range(0, len(images), 256):
        x = to_tensor(images[i:i + 256])
        d = vae.encode(x).latent_dist
        means.append(d.mean.clone())
        stds.append(d.std.clone())
        if i < 1024:
            err.append((vae.decode(d.mean).sample.clamp(-1, 1) - x).abs().mean().item() * 127.5)
    mean, std = torch.cat(means), torch.cat(stds)
    g = torch.Generator().manual_seed(a.seed + 2)
    z = mean + std * torch.randn(mean.shape, generator=g)
    scaling = float(1.0 / z.std())
    log(f"latents: {tuple(mean.shape)}, std {z.std():.4f}, mean {z.mean():.4f}, scaling_factor {scaling:.5f}, "
        f"recon MAE {np.mean(err):.2f}/255 ({time.time() - t0:.0f}s)")
    torch.save({"mean": mean, "std": std, "scaling_factor": scaling}, os.path.join(a.work, "latents.pt"))
    # write the scaling factor into the saved VAE's config
    cfg_path = os.path.join(a.work, "vae", "config.json")
    cfg = json.load(open(cfg_path))
    cfg["scaling_factor"] = scaling
    json.dump(cfg, open(cfg_path, "w"), indent=2)
    # preview reconstructions
    x = to_tensor(images[:32])
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    grid = torch.cat([x, rec]).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
    grid = grid.reshape(8, 8, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(512, 512, 3)
    Image.fromarray(grid).save(os.path.join(a.work, "vae_recon.png"))
    return {"scaling_factor": scaling, "recon_mae_255": float(np.mean(err)), "seconds": time.time() - t0}


# ----------------------------------------------------------------------------- UNet + text encoder

def make_text_encoder(tok):
    vocab = tok.get_vocab()
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=TEXT_HIDDEN, intermediate_size=4 * TEXT_HIDDEN,
                         num_hidden_layers=a_text_layers, num_attention_heads=4, max_position_embeddings=77,
                         hidden_act="quick_gelu", projection_dim=TEXT_HIDDEN,
                         bos_token_id=vocab[BOS], eos_token_id=vocab[EOS], pad_token_id=vocab[EOS])
    return CLIPTextModel(cfg)


a_text_layers = 2


def stage_unet(a, captions):
    tok = CLIPTokenizer.from_pretrained(os.path.join(a.work, "tokenizer"))
    lat = torch.load(os.path.join(a.work, "latents.pt"))
    mean, std, scaling = lat["mean"], lat["std"], lat["scaling_factor"]
    ids = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    empty = tok([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    torch.manual_seed(a.seed + 3)
    text_encoder = make_text_encoder(tok)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    n_te = sum(p.numel() for p in text_encoder.parameters())
    n_unet = sum(p.numel() for p in unet.parameters())
    log(f"text encoder {n_te} parameters, UNet {n_unet} parameters")
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-2, betas=(0.9, 0.999))
    ema = [p.detach().clone() for p in params]
    sched = DDPMScheduler(**TRAIN_SCHEDULE)
    alphas_cumprod = sched.alphas_cumprod
    snr = alphas_cumprod / (1 - alphas_cumprod)
    ckpt = os.path.join(a.work, "unet_ckpt.pt")
    step = 0
    elapsed_before = 0.0
    if a.resume and os.path.exists(ckpt):
        st = torch.load(ckpt)
        unet.load_state_dict(st["unet"])
        text_encoder.load_state_dict(st["text_encoder"])
        opt.load_state_dict(st["opt"])
        ema = st["ema"]
        step, elapsed_before = st["step"], st["elapsed"]
        log(f"resumed at step {step}")
    g = torch.Generator().manual_seed(a.seed + 4 + step)
    unet.train()
    text_encoder.train()
    t0 = time.time() - elapsed_before
    last_ckpt = time.time()
    losses = []

    def save_ckpt():
        torch.save({"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(), "opt": opt.state_dict(),
                    "ema": ema, "step": step, "elapsed": time.time() - t0}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    while step < a.unet_steps and time.time() - t0 < a.unet_seconds:
        b = a.unet_batch
        idx = torch.randint(0, len(mean), (b,), generator=g)
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scaling
        # horizontal flips would swap left/right in captions: no augmentation
        tid = ids[idx].clone()
        drop = torch.rand(b, generator=g) < a.cond_dropout
        tid[drop] = empty[0]
        noise = torch.randn(z0.shape, generator=g)
        t = torch.randint(0, 1000, (b,), generator=g)
        zt = sched.add_noise(z0, noise, t)
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (a.lr_min + (1 - a.lr_min) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / a.unet_steps))))
        for pg in opt.param_groups:
            pg["lr"] = lr
        enc = text_encoder(tid).last_hidden_state
        pred = unet(zt, t, encoder_hidden_states=enc).sample
        w = torch.clamp(snr[t], max=a.min_snr) / snr[t] if a.min_snr > 0 else torch.ones(b)
        loss = (((pred - noise) ** 2).mean(dim=(1, 2, 3)) * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        losses.append(loss.item())
        if step % 50 == 0:
            log(f"unet step {step} loss {np.mean(losses[-50:]):.4f} lr {lr:.2e} ({time.time() - t0:.0f}s)")
        if time.time() - last_ckpt > 300:
            save_ckpt()
            last_ckpt = time.time()
    secs = time.time() - t0
    save_ckpt()
    # EMA weights -> models
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    unet.eval()
    text_encoder.eval()
    unet.save_pretrained(os.path.join(a.work, "unet"), safe_serialization=True)
    text_encoder.save_pretrained(os.path.join(a.work, "text_encoder"), safe_serialization=True)
    log(f"UNet + text encoder trained: {step} steps in {secs:.0f}s")
    return {"unet_parameters": n_unet, "text_encoder_parameters": n_te, "steps": step, "batch": a.unet_batch,
            "seconds": secs, "final_loss": float(np.mean(losses[-200:])) if losses else None}


# ----------------------------------------------------------------------------- save

def make_scheduler(name):
    """The inference scheduler on the training noise schedule (only the arguments its class takes)."""
    import inspect
    from diffusers import DDIMScheduler, EulerDiscreteScheduler
    cls, extra = {"dpm": (DPMSolverMultistepScheduler, dict(algorithm_type="dpmsolver++", solver_order=2)),
                  "ddim": (DDIMScheduler, dict(set_alpha_to_one=False)),
                  "euler": (EulerDiscreteScheduler, {})}[name]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in TRAIN_SCHEDULE.items() if k in accepted}, **extra)


def strip_name_or_path(out):
    """Drops the "_name_or_path" (a /tmp path) Diffusers writes into the configs of loaded models."""
    for sub in ("unet", "vae"):
        p = os.path.join(out, sub, "config.json")
        cfg = json.load(open(p))
        if cfg.pop("_name_or_path", None) is not None:
            with open(p, "w") as f:
                json.dump(cfg, f, indent=2, sort_keys=True)
                f.write("\n")


def stage_save(a):
    out = a.out
    if os.path.exists(out):
        shutil.rmtree(out)
    tok = CLIPTokenizer.from_pretrained(os.path.join(a.work, "tokenizer"))
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(a.work, "vae")),
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(a.work, "text_encoder")),
        tokenizer=tok, unet=UNet2DConditionModel.from_pretrained(os.path.join(a.work, "unet")),
        scheduler=make_scheduler(a.scheduler), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    # tokenizer/: exactly our four files (as SD 1.5 ships them)
    shutil.rmtree(os.path.join(out, "tokenizer"))
    shutil.copytree(os.path.join(a.work, "tokenizer"), os.path.join(out, "tokenizer"))
    # text_encoder/: keys with the "text_model." prefix of the hub's SD checkpoints
    pinned.add_text_model_prefix(os.path.join(out, "text_encoder", "model.safetensors"))
    strip_name_or_path(out)
    loaded = StableDiffusionPipeline.from_pretrained(out, safety_checker=None)
    for x, y in [(loaded.unet, pipe.unet), (loaded.vae, pipe.vae), (loaded.text_encoder, pipe.text_encoder)]:
        assert pinned.state_equal(x.state_dict(), y.state_dict())
    size = pinned.folder_bytes(out)
    log(f"saved {out}: {size / 1e6:.2f} MB")
    return {"folder_bytes": size}


# ----------------------------------------------------------------------------- evaluation

EVAL_SEEDS = [1000 + i for i in range(256)]


def eval_prompts(n):
    """n single-shape test prompts (size, colour, shape, background), deterministic."""
    rng = np.random.default_rng(12345)
    out = []
    for i in range(n):
        size = ["small", "large"][i % 2]
        shape = dataset.SHAPES[i % len(dataset.SHAPES)]
        bg = dataset.COLOURS[rng.integers(len(dataset.COLOURS))]
        col = dataset._colour_not_in(rng, [bg])
        out.append((size, col, shape, bg))
    return out


@torch.no_grad()
def stage_eval(a, path=None):
    path = path or a.out
    pipe = StableDiffusionPipeline.from_pretrained(path, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    if a.eval_scheduler:
        pipe.scheduler = make_scheduler(a.eval_scheduler)
    prompts = eval_prompts(a.eval_n)
    texts = [f"a {s} {c} {sh} on a {bg} background" for s, c, sh, bg in prompts]
    t0 = time.time()
    imgs = []
    for i in range(0, len(texts), 16):
        gens = [torch.Generator().manual_seed(EVAL_SEEDS[j]) for j in range(i, min(i + 16, len(texts)))]
        imgs.append(pipe(texts[i:i + 16], num_inference_steps=a.eval_steps, guidance_scale=a.guidance,
                         generator=gens, output_type="np").images)
    imgs = np.concatenate(imgs)
    res = []
    for (s, c, sh, bg), text, img in zip(prompts, texts, imgs):
        ok, border, shape_cls = dataset.adherence(img, c, bg)
        res.append({"prompt": text, "ok": ok, "border": border, "shape": shape_cls})
    rate = np.mean([r["ok"] for r in res])
    log(f"eval ({a.eval_scheduler or 'saved scheduler'}, {a.eval_steps} steps, guidance {a.guidance}): "
        f"{rate * 100:.1f}% of {len(res)} ({time.time() - t0:.0f}s)")
    for r in res:
        if not r["ok"]:
            log("  FAIL", r)
    u8 = (imgs * 255).round().astype(np.uint8)
    k = len(u8) // 8 * 8
    if k:
        grid = u8[:k].reshape(k // 8, 8, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(k // 8 * 64, 512, 3)
        name = f"eval_{a.eval_scheduler or 'saved'}_{a.eval_steps}_{a.guidance}.png"
        Image.fromarray(grid).resize((1024, k // 8 * 128), Image.NEAREST).save(os.path.join(a.work, name))
    return {"rate": float(rate), "n": len(res), "steps": a.eval_steps, "guidance": a.guidance,
            "scheduler": a.eval_scheduler or type(pipe.scheduler).__name__,
            "failed": [r for r in res if not r["ok"]]}


# ----------------------------------------------------------------------------- main

def main():
    global a_text_layers
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "models", "demo"))
    ap.add_argument("--work", default="/tmp/demo-train")
    ap.add_argument("--stages", default="data,tokenizer,vae,latents,unet,save,eval")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-images", type=int, default=30000)
    ap.add_argument("--vae-steps", type=int, default=1400)
    ap.add_argument("--vae-seconds", type=float, default=570)
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--vae-crop", type=int, default=64, help="random square crops for VAE training (conv net)")
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-4, help="weight of the per-element KL term")
    ap.add_argument("--unet-steps", type=int, default=4000)
    ap.add_argument("--unet-seconds", type=float, default=2400)
    ap.add_argument("--unet-batch", type=int, default=64)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--min-snr", type=float, default=5.0)
    ap.add_argument("--cond-dropout", type=float, default=0.1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--scheduler", default="dpm", choices=["dpm", "ddim", "euler"])
    ap.add_argument("--eval-n", type=int, default=256)
    ap.add_argument("--eval-steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--eval-scheduler", default=None)
    a = ap.parse_args()
    a_text_layers = a.text_layers
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    stages = a.stages.split(",")
    report_path = os.path.join(a.work, "report.json")
    report = json.load(open(report_path)) if os.path.exists(report_path) else {}
    data_path = os.path.join(a.work, "data.npz")
    images = captions = None
    if "data" in stages:
        t0 = time.time()
        dataset.write_attributes(os.path.join(HERE, "attributes.json"))
        images, captions = dataset.make_dataset(a.n_images, a.seed)
        np.savez(data_path, images=images, captions=np.array(captions))
        report["data"] = {"n_images": a.n_images, "seed": a.seed, "seconds": time.time() - t0}
        log(f"data: {a.n_images} images ({time.time() - t0:.0f}s)")
    elif any(s in stages for s in ("tokenizer", "vae", "latents", "unet")):
        d = np.load(data_path)
        images, captions = d["images"], [str(c) for c in d["captions"]]
    steps = [("tokenizer", lambda: stage_tokenizer(a, captions)), ("vae", lambda: stage_vae(a, images)),
             ("latents", lambda: stage_latents(a, images)), ("unet", lambda: stage_unet(a, captions)),
             ("save", lambda: stage_save(a)), ("eval", lambda: stage_eval(a))]
    for name, fn in steps:
        if name in stages:
            report[name] = fn()
            report[name]["args"] = {k: v for k, v in vars(a).items()}
            json.dump(report, open(report_path, "w"), indent=2)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "args"} for k, v in report.items()}, indent=2))


if __name__ == "__main__":
    main()
