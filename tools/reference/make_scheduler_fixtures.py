#!/usr/bin/env python3
# Generates the scheduler and random-number fixtures for swift-diffusers.
#
# Pinned versions: see pinned.py (the fixtures in Tests/Fixtures/schedulers were produced with
# exactly those; numpy 2.x).
# Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_scheduler_fixtures.py [--out Tests/Fixtures/schedulers]
#
# Output (Tests/Fixtures/schedulers/):
#   sd15_scheduler_config.json   SD 1.5's scheduler/scheduler_config.json exactly as the hub
#                                has it (runwayml/stable-diffusion-v1-5, written by diffusers 0.6.0:
#                                NO timestep_spacing and NO prediction_type keys).
#   <variant>: pndm, ddim, euler, euler_ancestral, dpm_multistep (the class as a pipeline builds it
#                                from SD 1.5's config: spacing "leading" for pndm/ddim, "linspace"
#                                for the others), "<name>-<spacing>" for the two other spacings,
#                                "ddim-v" and "euler-v" (prediction_type v_prediction).
#   <variant>/scheduler_config.json   the config as Diffusers writes it (save_config) for the
#                                scheduler built by  Class.from_config(pndm.config, **overrides),
#                                pndm = PNDMScheduler.from_config(sd15_scheduler_config.json).
#                                This is how a pipeline swaps schedulers; keys that were ABSENT
#                                from the hub file take the NEW class's default (Diffusers records
#                                them in config._use_default_values and drops them in from_config),
#                                so e.g. Euler/EulerAncestral/DPM get timestep_spacing "linspace"
#                                while PNDM/DDIM get "leading".
#   <variant>/reference.safetensors   tensors (below); metadata: one key "info" (JSON).
#   <variant>/reference.json     scalars: init_noise_sigma per N, order, errors, what each tensor is.
#   common.safetensors           alphas_cumprod/betas of the SD 1.5 schedule, and torch / diffusers
#                                random numbers (see RANDN below); metadata: one key "info".
#
# Tensors in <variant>/reference.safetensors:
#   N{n}.timesteps         scheduler.timesteps after set_timesteps(n), n in 1, 4, 10, 25, in the
#                          dtype Diffusers uses (int64; float32 for the Euler schedulers)
#   N{n}.sigmas            scheduler.sigmas (float32, length len(timesteps)+1) where the class has them
#   step.sample0           [1,4,8,8] the sample entering the loop: randn (seeded) * init_noise_sigma
#                          (init_noise_sigma after set_timesteps(4), as prepare_latents does)
#   step.model_output.{i}  [1,4,8,8] fixed stand-ins for the UNet output at step i (seeded randn)
#   step.scaled.{i}        scheduler.scale_model_input(x_i, t_i)  (x_0 = sample0)
#   step.prev_sample.{i}   x_{i+1} = scheduler.step(model_output_i, t_i, x_i[, generator]).prev_sample
#   step.pred_original_sample.{i}  where step() returns it
#   step.noise.{i}         EulerAncestral only: the noise its step drew from
#                          torch.Generator().manual_seed(STEP_NOISE_SEED) (captured by wrapping
#                          randn_tensor in diffusers.schedulers.scheduling_euler_ancestral_discrete)
#   The loop runs over ALL of scheduler.timesteps after set_timesteps(4): 5 steps for PNDM (its
#   timesteps repeat the second-to-last one), 4 for the others; t_i = N4.timesteps[i].
#   add_noise.original, add_noise.noise [2,4,8,8], add_noise.timesteps [2] (int64 or float32 as the
#                          schedule, = N10.timesteps[[2, 7]]), add_noise.out = add_noise(original, noise, timesteps)
#                          after set_timesteps(10), begin_index unset.
#
# Determinism: every input comes from its own torch.Generator seeded from crc32 of its name;
# CPU float32, 2 threads; the safetensors metadata has one key. Re-running gives identical files.

import argparse
import json
import os

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import NoiseRecorder, SD15_SCHEDULER_CONFIG, randn, write_json
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, PNDMScheduler)
import diffusers.schedulers.scheduling_euler_ancestral_discrete as euler_a_module
from diffusers.utils.torch_utils import randn_tensor

pinned.setup(threads=2)

VERSIONS = pinned.versions("numpy")

N_VALUES = [1, 4, 10, 25]
STEP_N = 4
STEP_NOISE_SEED = 1234
SPACINGS = ["leading", "linspace", "trailing"]

CLASSES = {
    "pndm": PNDMScheduler,
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler_ancestral": EulerAncestralDiscreteScheduler,
    "dpm_multistep": DPMSolverMultistepScheduler,
}


def variants():
    """name -> (class key, overrides). The plain name is the class with the SD 1.5 config as a
    pipeline would build it; "-<spacing>" forces timestep_spacing; "-v" uses v_prediction."""
    out = {}
    for key in CLASSES:
        out[key] = (key, {})
        default = build(key, {}).config.timestep_spacing
        for sp in SPACINGS:
            if sp != default:  # the plain variant already is that spacing
                out[f"{key}-{sp}"] = (key, {"timestep_spacing": sp})
    for key in ["ddim", "euler"]:
        out[f"{key}-v"] = (key, {"prediction_type": "v_prediction"})
    return out


def write_safetensors(path, tensors, info):
    pinned.save_checked(tensors, path, {"info": json.dumps(info, sort_keys=True)})


def base_pndm():
    pndm = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    return pndm


def build(key, overrides):
    pndm = base_pndm()
    if key == "pndm":
        # from_config of the hub dict itself (+ overrides), as the pipeline loads it
        cfg = dict(SD15_SCHEDULER_CONFIG)
        cfg.update(overrides)
        return PNDMScheduler.from_config(cfg)
    return CLASSES[key].from_config(pndm.config, **overrides)


def saved_config(sched, folder):
    pinned.save_scheduler_config(sched, folder)
    with open(os.path.join(folder, "scheduler_config.json")) as f:
        return json.load(f)


def scalar(x):
    return float(x.item()) if torch.is_tensor(x) else float(x)


def make_variant(out, name, key, overrides):
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    sched = build(key, overrides)
    cfg = saved_config(sched, folder)
    # reloading the written config gives the same scheduler config
    again = type(sched).from_pretrained(folder)
    def comparable(c):
        return {k: v for k, v in c.items() if k not in ("_use_default_values", "_diffusers_version")}
    assert comparable(again.config) == comparable(sched.config), name

    tensors = {}
    info = {"variant": name, "class": type(sched).__name__, "overrides": overrides, "order": sched.order,
            "init_noise_sigma": {}, "timesteps": {}, "num_timesteps": {}, "errors": {}}
    for n in N_VALUES:
        s = build(key, overrides)
        try:
            s.set_timesteps(n)
        except Exception as e:  # recorded, not fatal
            info["errors"][f"N{n}"] = f"{type(e).__name__}: {e}"
            continue
        tensors[f"N{n}.timesteps"] = s.timesteps.clone()
        info["timesteps"][f"N{n}"] = s.timesteps.tolist()
        info["num_timesteps"][f"N{n}"] = len(s.timesteps)
        if hasattr(s, "sigmas") and torch.is_tensor(getattr(s, "sigmas")):
            tensors[f"N{n}.sigmas"] = s.sigmas.clone().to(torch.float32)
        info["init_noise_sigma"][f"N{n}"] = scalar(s.init_noise_sigma)

    # ---- a run of step()
    s = build(key, overrides)
    s.set_timesteps(STEP_N)
    x = randn("step/sample0", 1, 4, 8, 8) * s.init_noise_sigma
    tensors["step.sample0"] = x.clone()
    generator = torch.Generator().manual_seed(STEP_NOISE_SEED)
    recorder_module = euler_a_module if key == "euler_ancestral" else None
    step_info = []
    for i, t in enumerate(s.timesteps):
        mo = randn(f"step/model_output/{i}", 1, 4, 8, 8)
        tensors[f"step.model_output.{i}"] = mo
        scaled = s.scale_model_input(x, t)
        tensors[f"step.scaled.{i}"] = scaled.clone()
        if recorder_module is not None:
            with NoiseRecorder(recorder_module) as rec:
                res = s.step(mo, t, x, generator=generator)
            assert len(rec.drawn) == 1, len(rec.drawn)
            tensors[f"step.noise.{i}"] = rec.drawn[0]
        else:
            res = s.step(mo, t, x)
        x = res.prev_sample
        tensors[f"step.prev_sample.{i}"] = x.clone()
        if getattr(res, "pred_original_sample", None) is not None:
            tensors[f"step.pred_original_sample.{i}"] = res.pred_original_sample.clone()
        step_info.append({"i": i, "t": t.item()})
    info["step"] = {"num_inference_steps": STEP_N, "steps": step_info,
                    "generator_seed": STEP_NOISE_SEED if recorder_module is not None else None}

    # ---- add_noise (img2img)
    s = build(key, overrides)
    s.set_timesteps(10)
    orig = randn("add_noise/original", 2, 4, 8, 8)
    noise = randn("add_noise/noise", 2, 4, 8, 8)
    ts = s.timesteps[[2, 7]].clone()
    tensors["add_noise.original"] = orig
    tensors["add_noise.noise"] = noise
    tensors["add_noise.timesteps"] = ts
    tensors["add_noise.out"] = s.add_noise(orig, noise, ts)
    info["add_noise"] = {"num_inference_steps": 10, "timesteps": ts.tolist(), "begin_index": None}

    write_safetensors(os.path.join(folder, "reference.safetensors"), tensors,
                      {"variant": name, "versions": VERSIONS})
    info["config_written"] = cfg
    info["tensors"] = {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                       for k, v in tensors.items()}
    write_json(os.path.join(folder, "reference.json"), info)
    return info


RANDN_SEEDS = [0, 1, 42, 12345, 2 ** 40 + 7]
RANDN_SHAPES = [[4], [3, 5, 7], [1, 4, 8, 8]]
RANDN_BIG = ([2, 4, 64, 64], [0, 42])  # shape, seeds (kept to two seeds for size)


def make_common(out):
    tensors = {}
    pndm = base_pndm()
    tensors["alphas_cumprod"] = pndm.alphas_cumprod.clone()
    tensors["betas"] = pndm.betas.clone()
    for s in RANDN_SEEDS:
        for shape in RANDN_SHAPES:
            torch.manual_seed(s)
            tensors[f"torch_randn.seed{s}.{'x'.join(map(str, shape))}"] = torch.randn(shape)
    for s in RANDN_BIG[1]:
        torch.manual_seed(s)
        tensors[f"torch_randn.seed{s}.{'x'.join(map(str, RANDN_BIG[0]))}"] = torch.randn(RANDN_BIG[0])
    for s in RANDN_SEEDS:
        tensors[f"randn_tensor.seed{s}.1x4x8x8"] = randn_tensor((1, 4, 8, 8), generator=torch.Generator().manual_seed(s))
        # randn_tensor == torch.randn(shape, generator=g) on CPU
        assert torch.equal(tensors[f"randn_tensor.seed{s}.1x4x8x8"],
                           torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(s)))
    # a list of generators: one draw of shape [1, ...] per generator, concatenated
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    tensors["randn_tensor.generators0,1.2x4x8x8"] = randn_tensor((2, 4, 8, 8), generator=gens)
    assert torch.equal(tensors["randn_tensor.generators0,1.2x4x8x8"][1], tensors["randn_tensor.seed1.1x4x8x8"][0])
    torch.manual_seed(0)
    info = {
        "versions": VERSIONS,
        "alphas_cumprod": "PNDMScheduler(SD 1.5 config).alphas_cumprod, float32 [1000] "
                          "(betas = linspace(sqrt(0.00085), sqrt(0.012), 1000, float32)**2; cumprod(1 - betas))",
        "torch_randn.seed{s}.{shape}": "torch.manual_seed(s); torch.randn(shape)  (float32, CPU default generator)",
        "randn_tensor.seed{s}.1x4x8x8": "diffusers.utils.torch_utils.randn_tensor((1,4,8,8), "
                                        "generator=torch.Generator().manual_seed(s)) -- equal to torch.randn with that generator",
        "randn_tensor.generators0,1.2x4x8x8": "randn_tensor((2,4,8,8), generator=[Generator().manual_seed(0), "
                                              "Generator().manual_seed(1)]): each generator draws shape [1,4,8,8], concatenated",
        "seeds": RANDN_SEEDS,
        "shapes": RANDN_SHAPES,
        "big": {"shape": RANDN_BIG[0], "seeds": RANDN_BIG[1]},
    }
    write_safetensors(os.path.join(out, "common.safetensors"), tensors, info)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/schedulers")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "sd15_scheduler_config.json"), SD15_SCHEDULER_CONFIG)
    make_common(args.out)
    summary = {}
    for name, (key, ov) in variants().items():
        info = make_variant(args.out, name, key, ov)
        summary[name] = {"class": info["class"], "timestep_spacing": info["config_written"].get("timestep_spacing"),
                         "prediction_type": info["config_written"].get("prediction_type"),
                         "timesteps": info["timesteps"], "init_noise_sigma": info["init_noise_sigma"],
                         "errors": info["errors"]}
    write_json(os.path.join(args.out, "summary.json"), summary)
    print(f"wrote {len(summary)} variants, {pinned.folder_bytes(args.out)} bytes")


if __name__ == "__main__":
    main()
