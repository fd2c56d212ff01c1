# The README of Tests/Fixtures/tiny-sd, written by make_sd_fixtures.py (which imports this file):
# every file with its size, the component configurations, the conventions a port must match, and
# every tensor of outputs/ with dtype, shape and meaning.

import json
import os
import re


def describe(file, name):
    """One line of meaning for a tensor of outputs/<file>.safetensors (the README's tables)."""
    rules = {
        "text_encoder": [
            ("input_ids", "ids of the 3 prompts above, padded/truncated to 77 (pad = eos = 999)"),
            ("embeddings", "hidden_states[0]: token_embedding(ids) + position_embedding(0..76)"),
            ("last_hidden_state", "last_hidden_state (after final_layer_norm) = what the pipeline uses"),
            ("pooler_output", "last_hidden_state at each row's first eos (999)"),
            ("hidden_states_penultimate", "prompt 0 only: hidden_states[-2], the output of layer 4 of 5 (no final norm)"),
            ("hidden_states_penultimate_final_layer_norm", "final_layer_norm(hidden_states[-2]): what encode_prompt(clip_skip=1) "
             "computes (that call itself raises AttributeError with diffusers 0.42.1 + transformers 5.24: it reaches for "
             "text_encoder.text_model, which transformers 5 removed)"),
        ],
        "unet": [
            ("sample", "UNet input latents, randn"),
            ("encoder_hidden_states", "UNet cross-attention input, randn"),
            (r"out_t(\d+)", "unet(sample, timestep=torch.tensor(\\1), encoder_hidden_states).sample"),
        ],
        "unet_blocks": [
            ("sample", "input: batch element 0 of outputs/unet.safetensors' sample"),
            ("encoder_hidden_states", "input: batch element 0 of outputs/unet.safetensors' encoder_hidden_states"),
            ("out", "the UNet output for this call (timestep 981) = conv_out output"),
            ("time_proj.out", "sinusoidal embedding of t=981 (Timesteps(32, flip_sin_to_cos=True, freq_shift=0))"),
            ("time_embedding.out", "TimestepEmbedding: linear_2(silu(linear_1(time_proj))) = temb of every resnet"),
            ("conv_in.out", "conv_in(sample); also the first entry of the skip list"),
            (r"down_blocks\.(\d)\.res\.(\d)", "down block \\1, entry \\2 of the residual tuple it returns "
                                                 "(resnet/attention outputs, then the downsampler's); its hidden output is the last entry"),
            ("mid_block.out", "UNetMidBlock2DCrossAttn output"),
            (r"up_blocks\.(\d)\.out", "up block \\1 output (after its upsampler, if any)"),
            ("conv_norm_out.out", "GroupNorm(32) of up_blocks.1.out (before SiLU and conv_out)"),
            (r"(.*resnets\.\d)\.in\.temb", "ResnetBlock2D \\1 input temb"),
            (r"(.*resnets\.\d)\.in\.input_tensor", "ResnetBlock2D \\1 input hidden states"),
            (r"(.*resnets\.\d)\.out", "ResnetBlock2D \\1 output"),
            (r"(.*transformer_blocks\.\d)\.in\.hidden_states", "BasicTransformerBlock \\1 input [B, H*W, C]"),
            (r"(.*transformer_blocks\.\d)\.in\.encoder_hidden_states", "BasicTransformerBlock \\1 input encoder states"),
            (r"(.*transformer_blocks\.\d)\.out", "BasicTransformerBlock \\1 output [B, H*W, C]"),
            (r"(.*attentions\.\d)\.in\.hidden_states", "Transformer2DModel \\1 input [B, C, H, W]"),
            (r"(.*attentions\.\d)\.in\.encoder_hidden_states", "Transformer2DModel \\1 input encoder states"),
            (r"(.*attentions\.\d)\.out", "Transformer2DModel \\1 output [B, C, H, W] (includes the residual)"),
        ],
        "vae": [
            ("image", "VAE input image in [-1, 1]"),
            ("latent", "VAE decode input"),
            ("latent_batch2", "VAE decode input, batch 2, non-square"),
            ("encode.mean", "latent_dist.mean (= mode())"),
            ("encode.std", "latent_dist.std = exp(0.5 * logvar)"),
            ("encode.logvar", "latent_dist.logvar (clamped to [-30, 20])"),
            ("encode.sample_noise_seed0", "the noise latent_dist.sample drew from torch.Generator().manual_seed(0)"),
            ("encode.sample_seed0", "latent_dist.sample(generator seed 0) = mean + std * noise"),
            ("decode", "vae.decode(latent).sample (no scaling_factor inside decode)"),
            ("decode_batch2", "vae.decode(latent_batch2).sample"),
        ],
        "pipeline": [
            ("encode_prompt.prompt_embeds", "encode_prompt('a red circle', do_classifier_free_guidance=True, negative_prompt='')[0]"),
            ("encode_prompt.negative_prompt_embeds", "... [1]: the embedding of '' (bos, eos, 75 x pad)"),
            ("txt2img.latents_in", "the explicit latents= passed to every txt2img call"),
            (r"txt2img\.(\w+)\.steps(\d)\.step_latents\.(\d+)", "latents after UNet call \\3 + scheduler.step (callback_on_step_end)"),
            (r"txt2img\.(\w+)\.steps(\d)\.latents_out", "output_type='latent' result (= last step_latents; not divided by scaling_factor)"),
            (r"txt2img\.(\w+)\.steps(\d)\.image", "output_type='np' image, [0,1], transposed NHWC->NCHW (exact)"),
            ("img2img.image_in", "init.png as float: uint8 / 255, NCHW"),
            ("img2img.noise_vae_sample", "noise drawn 1st from the generator: latent_dist.sample of the encoded image"),
            ("img2img.noise_add", "noise drawn 2nd from the generator: scheduler.add_noise"),
            ("img2img.init_latents", "(mean + std * noise_vae_sample) * 0.18215, recomputed from the recorded noise (matches the pipeline to ~1e-6)"),
            ("img2img.noisy_latents", "scheduler.add_noise(init_latents, noise_add, first used timestep)"),
            (r"img2img\.step_latents\.(\d+)", "latents after UNet call \\1 + scheduler.step"),
            ("img2img.image", "output_type='np' image, [0,1], NCHW"),
        ],
    }
    for pat, text in rules[file]:
        m = re.fullmatch(pat, name)
        if m:
            return m.expand(text) if m.groups() else text
    raise SystemExit(f"no README description for {file}:{name}")


def write_readme(args, pipe, unet_v, specs, infos, redrawn, M):
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in
              [("unet", pipe.unet), ("vae", pipe.vae), ("text_encoder", pipe.text_encoder), ("unet_v", unet_v)]}
    L = []
    w = L.append
    w("# tiny-sd: a small random-weight Stable Diffusion pipeline and Diffusers' outputs for it")
    w("")
    w("Generated by `tools/reference/make_sd_fixtures.py` (run from the repository root, after")
    w("`make_tokenizer_fixtures.py` and `make_scheduler_fixtures.py`; it rewrites this file). Versions: "
      + ", ".join(f"{k} {v}" for k, v in M.VERSIONS.items()) + ". Everything computed on CPU in float32 with")
    w("2 threads; every input is drawn from a torch.Generator seeded with crc32 of its name; re-running")
    w("gives byte-identical files. Every `.safetensors` file here has one metadata key (`format` for the")
    w("weights, `info` -- a JSON string with the call that produced each tensor -- for `outputs/`).")
    w("")
    w("Numerics contract (DESIGN.md): each module output within 1e-4 relative L2 of these, decoded images")
    w("within 2e-3 max absolute difference.")
    w("")
    w("## Files")
    w("")
    w("| file | bytes | what |")
    w("|---|---|---|")
    whats = {
        "model_index.json": "StableDiffusionPipeline; safety_checker, feature_extractor, image_encoder null; requires_safety_checker false",
        "unet/config.json": "UNet2DConditionModel config as Diffusers writes it",
        "unet/diffusion_pytorch_model.safetensors": f"UNet weights, f32, {params['unet']:,} parameters",
        "vae/config.json": "AutoencoderKL config",
        "vae/diffusion_pytorch_model.safetensors": f"VAE weights, f32, {params['vae']:,} parameters",
        "text_encoder/config.json": "CLIPTextConfig (transformers 5.24 writes it)",
        "text_encoder/model.safetensors": f"CLIPTextModel weights, f32, {params['text_encoder']:,} parameters, keys `text_model.*` (see below)",
        "tokenizer/vocab.json": "= Tests/Fixtures/tokenizer/vocab.json (1000 entries)",
        "tokenizer/merges.txt": "= Tests/Fixtures/tokenizer/merges.txt",
        "tokenizer/tokenizer_config.json": "= Tests/Fixtures/tokenizer/tokenizer_config.json",
        "tokenizer/special_tokens_map.json": "= Tests/Fixtures/tokenizer/special_tokens_map.json",
        "scheduler/scheduler_config.json": "= Tests/Fixtures/schedulers/pndm/scheduler_config.json (PNDM, SD 1.5 values)",
        "init.png": "64x64 RGB 8-bit img2img input",
        "README.md": "this file",
        "outputs/text_encoder.safetensors": "CLIP text encoder outputs",
        "outputs/unet.safetensors": "whole-UNet outputs, batch 2, t = 981 and 1",
        "outputs/unet_blocks.safetensors": "per-block UNet captures (forward hooks), batch 1, t = 981",
        "outputs/vae.safetensors": "VAE encode / decode",
        "outputs/pipeline.safetensors": "encode_prompt, txt2img (PNDM, DDIM; 3 and 2 steps), img2img",
    }
    files = []
    for root, _, fs in os.walk(args.out):
        for fn in fs:
            files.append(os.path.relpath(os.path.join(root, fn), args.out))
    for rel in sorted(set(files) | {"README.md"}, key=lambda r: (r.count("/"), r)):
        size = os.path.getsize(os.path.join(args.out, rel)) if rel != "README.md" else "-"
        w(f"| `{rel}` | {size} | {whats[rel]} |")
    vfiles = []
    for root, _, fs in os.walk(args.out_v):
        for fn in fs:
            vfiles.append(os.path.relpath(os.path.join(root, fn), args.out_v))
    w("")
    w(f"And `{args.out_v}/` (no pipeline, just the SD 2.x-like UNet variant):")
    w("")
    w("| file | bytes |")
    w("|---|---|")
    for rel in sorted(vfiles):
        w(f"| `{rel}` | {os.path.getsize(os.path.join(args.out_v, rel))} |")
    w("")
    w("## Components")
    w("")
    w("Constructor arguments (everything else is the class default; the `config.json` files hold every field):")
    w("")
    for name, cfg in [("UNet2DConditionModel (unet/)", M.UNET_CONFIG), ("AutoencoderKL (vae/)", M.VAE_CONFIG),
                      ("CLIPTextModel(CLIPTextConfig(...)) (text_encoder/)", M.CLIP_CONFIG),
                      ("UNet2DConditionModel (tiny-sd-v/unet/)", M.UNET_V_CONFIG)]:
        w(f"- {name}: `{json.dumps(cfg)}`")
    w("")
    w(f"Parameters: UNet {params['unet']:,}; VAE {params['vae']:,}; CLIP text {params['text_encoder']:,}; "
      f"tiny-sd-v UNet {params['unet_v']:,}.")
    w("")
    w("Why these sizes: the issue asks for the UNet of Diffusers' tests (block_out_channels (32, 64),")
    w("cross-attention 32) with a small CLIP and VAE. Diffusers' older tests used it with layers_per_block=2")
    w("(1.43M parameters) and a [32, 64] VAE; its current tests use layers_per_block=1 (with far smaller")
    w("channels). To keep the fixtures near 8 MB the UNet here has layers_per_block=1, the VAE [32, 32]")
    w("channels (32 norm groups, the default), and tiny-sd-v covers layers_per_block=2.")
    w("")
    w("What the configurations exercise: the UNet's `attention_head_dim` 8 is used by Diffusers as the")
    w("NUMBER of heads (8 heads of 8 channels at 64 channels; the mid block too); `Transformer2DModel` with a")
    w("1x1-conv `proj_in`/`proj_out` (use_linear_projection false); GEGLU feed-forward (inner 4*C, GELU exact);")
    w("down blocks DownBlock2D -> CrossAttnDownBlock2D, up blocks CrossAttnUpBlock2D -> UpBlock2D, so an up")
    w("block's resnets concatenate skips of different widths. tiny-sd-v: `attention_head_dim` [2, 4] (2 heads")
    w("of 8 at 16 channels, 4 of 8 at 32 and in the mid block), Linear `proj_in`/`proj_out`, upcast_attention")
    w("(a no-op in f32), attention at full resolution (CrossAttnDownBlock2D first), layers_per_block 2,")
    w("norm_num_groups 8. The VAE's scale factor is 2 (two blocks): 64x64 images <-> 32x32 latents.")
    w("")
    w("Weights: default initialisation under torch.manual_seed(0); then every parameter the default leaves")
    w("constant is re-drawn (" + ", ".join(f"{k}: {len(v)} tensors" for k, v in redrawn.items()) + "):")
    w("norm weights (ones) become 1 + 0.1*randn, norm biases and CLIP's Linear biases (zeros) become")
    w("0.1*randn; then attention query/key weights are multiplied by 3 (UNets, VAE) or 4 (CLIP) and the")
    w("first feed-forward weights by 3 (UNets: GEGLU proj) or 2 (CLIP: fc1), so that attention is far from")
    w("uniform and GELU-approximation, head-split and timestep bugs move outputs by more than 1e-4 (tanh")
    w("GELU instead of exact: 3e-4 at the UNet output, 1.4e-4 at the BasicTransformerBlock; see")
    w("shape_activations in the script).")
    w("")
    w("## Conventions a port must match")
    w("")
    w("- text_encoder/model.safetensors keys carry the `text_model.` prefix (`text_model.encoder.layers.0.self_attn.q_proj.weight`),")
    w("  as every SD 1.x/2.x checkpoint on the hub does. transformers 5.24 itself WRITES them without the prefix")
    w("  (`encoder.layers.0...`) and loads both; a port should accept both.")
    w("- CLIP: `hidden_act` quick_gelu (x * sigmoid(1.702 x)), causal mask, `eos_token_id` 999 (not the legacy 2:")
    w("  the pooled output is taken at the first 999), position ids 0..76.")
    w("- Tokenizer: see Tests/Fixtures/tokenizer/prompts.json `_info` (transformers 5 has only the tokenizers-backed")
    w("  CLIPTokenizer: NFC, whitespace runs -> ' ', per-character lowercase, no ftfy).")
    w("- Pipeline (StableDiffusionPipeline.__call__ in diffusers 0.42.1): prompt and negative prompt are each")
    w("  tokenized to 77 and encoded; the UNet runs on the batch [negative; positive] (negative FIRST) with the")
    w("  same timestep; noise_pred = uncond + 7.5 * (cond - uncond); latents = scheduler.step(...).prev_sample;")
    w("  explicit `latents=` are multiplied by scheduler.init_noise_sigma (1 for PNDM and DDIM); the image is")
    w("  vae.decode(latents / 0.18215), then (x / 2 + 0.5).clamp(0, 1).")
    w("- PNDM (skip_prk_steps) with N steps calls the UNet N+1 times: timesteps for N=3 are [667, 334, 334, 1],")
    w("  for N=2 [501, 1, 1] (the second-to-last timestep repeats); DDIM calls it N times.")
    w("- img2img (StableDiffusionImg2ImgPipeline, PNDM, strength 0.75, 3 steps): init_timestep = int(3 * 0.75) = 2,")
    w("  t_start = 1, used timesteps = scheduler.timesteps[t_start * order:]; ONE torch.Generator (seed "
      f"{M.IMG2IMG_SEED}) draws first")
    w("  the VAE posterior noise, then the add_noise noise; both recorded here so a port can inject them.")
    w("")
    runs = infos["pipeline"]["runs"]
    w("Timesteps of each pipeline run:")
    w("")
    for k, v in runs.items():
        used = v.get("timesteps_used", v.get("timesteps"))
        w(f"- `{k}`: {used}" + (f" (of {v['timesteps_full']})" if "timesteps_full" in v else ""))
    w("")
    w("## Tensors")
    w("")
    for file, title in [("text_encoder", "outputs/text_encoder.safetensors"), ("unet", "outputs/unet.safetensors"),
                        ("unet_blocks", "outputs/unet_blocks.safetensors"), ("vae", "outputs/vae.safetensors"),
                        ("pipeline", "outputs/pipeline.safetensors"), ("unet_v", f"{args.out_v}/outputs/unet.safetensors")]:
        w(f"### {title}")
        w("")
        if file == "text_encoder":
            w("Prompts: " + "; ".join(f"{i}: {json.dumps(p)}" for i, p in enumerate(M.TEXT_PROMPTS)) + ".")
            w("")
        if file == "unet_blocks":
            w("One call `unet(sample, torch.tensor(981), encoder_hidden_states)` on batch element 0 of")
            w("outputs/unet.safetensors' inputs, with forward hooks (every UNet block is per-sample, so this is the")
            w("first half of the batch-2 call). `X.out` is module X's output, `X.in.NAME` an input it was called with.")
            w("The UNet's skip list is (conv_in.out, down_blocks.0.res.0, down_blocks.0.res.1, down_blocks.1.res.0);")
            w("up_blocks.0 consumes the last two (popping from the end), up_blocks.1 the first two.")
            w("A tensor seen by two hooks is stored once; these names are aliases of the stored ones:")
            w("")
            for a, b in sorted(infos["unet_blocks"]["aliases"].items()):
                w(f"- `{a}` = `{b}`")
            w("")
        if file == "unet_v":
            w("Same inputs (same seeds, so the same values) as outputs/unet.safetensors, through tiny-sd-v/unet.")
            w("")
        w("| tensor | dtype | shape | meaning |")
        w("|---|---|---|---|")
        for k, (dt, shape) in specs[file].items():
            w(f"| `{k}` | {dt} | {shape} | {describe('unet' if file == 'unet_v' else file, k)} |")
        w("")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("\n".join(L))
