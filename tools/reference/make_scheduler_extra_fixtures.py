#!/usr/bin/env python3
# Scheduler fixtures beyond Stable Diffusion's defaults, for swift-diffusers' Schedulers tests:
# PNDM with Runge-Kutta warm-up, DDIM with eta/clipping/thresholding/zero-SNR, Euler with
# Karras/exponential/log-linear sigmas, churn and continuous timesteps, DPM-Solver in every
# algorithm/order/solver type and sigma schedule, image-to-image runs from a begin index.
#
# Pinned versions: see pinned.py (the committed fixtures were produced with exactly those;
# numpy 2.x).
# Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_scheduler_extra_fixtures.py [--out Tests/Fixtures/schedulers/extra]
#
# Output, one folder per case (Tests/Fixtures/schedulers/extra/<case>/):
#   scheduler_config.json   Diffusers' save_config of the scheduler
#   case.json               {"class", "overrides", "step_kwargs", "run_steps", "begin_index",
#                            "generator_seed", "sample_shape", "model_output_shape",
#                            "timesteps": {"N<n>": [...]}, "errors": {"N<n>": "..."}}
#   reference.safetensors   N<n>.timesteps / N<n>.sigmas after set_timesteps(n) for n in N_VALUES
#                           (absent where Diffusers raised; the error is in case.json),
#                           run.sample0, run.model_output.<i>, run.scaled.<i>, run.prev_sample.<i>,
#                           run.noise.<i> (what a stochastic step drew from
#                           torch.Generator().manual_seed(generator_seed)), and for
#                           image-to-image cases add_noise.original/noise/out.
# Also randn_portable.safetensors (next to the case folders): torch.manual_seed(s); torch.randn(shape)
# computed with ATEN_CPU_CAPABILITY=default (PyTorch's portable kernel, libm log/sin/cos), and
# randn_native.safetensors, the same with the kernel PyTorch picks natively (AVX-512 here); both
# hold sequence.* (several draws of different sizes from one generator in a row).
# The run: set_timesteps(run_steps); when begin_index is set, timesteps[begin_index:] after
# set_begin_index(begin_index) and add_noise(original, noise, timesteps[:1]) as Diffusers'
# img2img pipeline does, the run starting from that noised sample; steps pass
# generator=<the seeded generator> and **step_kwargs.

import argparse
import os
import sys

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import NoiseRecorder, randn
import numpy as np
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, PNDMScheduler)
import diffusers.schedulers.scheduling_ddim as ddim_module
import diffusers.schedulers.scheduling_euler_discrete as euler_module
import diffusers.schedulers.scheduling_euler_ancestral_discrete as euler_a_module
import diffusers.schedulers.scheduling_dpmsolver_multistep as dpm_module

pinned.setup(threads=2)

# SD 1.5's scheduler config without the _class_name / _diffusers_version entries
SD15 = {k: v for k, v in pinned.SD15_SCHEDULER_CONFIG.items() if not k.startswith("_")}
N_VALUES = [1, 2, 3, 7, 15, 50]
SEED = 777
MODULES = {PNDMScheduler: None, DDIMScheduler: ddim_module, EulerDiscreteScheduler: euler_module,
           EulerAncestralDiscreteScheduler: euler_a_module, DPMSolverMultistepScheduler: dpm_module}

TRAINED_100 = [float(x) for x in np.linspace(0.001, 0.03, 100) ** 1.5]

# name: (class, config overrides (on SD 1.5's), step kwargs, run steps, begin index, channels of sample/model output)
CASES = {
    "pndm-prk": (PNDMScheduler, {"skip_prk_steps": False}, {}, 10, None, (4, 4)),
    "pndm-prk-v-linspace": (PNDMScheduler, {"skip_prk_steps": False, "prediction_type": "v_prediction",
                                             "timestep_spacing": "linspace"}, {}, 5, None, (4, 4)),
    "pndm-linear-alpha-one": (PNDMScheduler, {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
                                               "set_alpha_to_one": True, "steps_offset": 0}, {}, 6, None, (4, 4)),
    "ddim-eta": (DDIMScheduler, {}, {"eta": 1.0}, 6, None, (4, 4)),
    "ddim-eta-clipped-output": (DDIMScheduler, {"clip_sample": True}, {"eta": 0.5, "use_clipped_model_output": True},
                                5, None, (4, 4)),
    "ddim-sample-clip": (DDIMScheduler, {"prediction_type": "sample", "clip_sample": True, "clip_sample_range": 0.8,
                                         "set_alpha_to_one": True}, {}, 5, None, (4, 4)),
    "ddim-threshold": (DDIMScheduler, {"thresholding": True, "sample_max_value": 1.5}, {}, 5, None, (4, 4)),
    "ddim-zero-snr-v": (DDIMScheduler, {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction",
                                        "timestep_spacing": "trailing"}, {}, 6, None, (4, 4)),
    "ddim-cosine": (DDIMScheduler, {"beta_schedule": "squaredcos_cap_v2"}, {}, 5, None, (4, 4)),
    "ddim-img2img": (DDIMScheduler, {}, {}, 10, 4, (4, 4)),
    "euler-karras": (EulerDiscreteScheduler, {"use_karras_sigmas": True}, {}, 8, None, (4, 4)),
    "euler-karras-bounds": (EulerDiscreteScheduler, {"use_karras_sigmas": True, "sigma_min": 0.05, "sigma_max": 10.0},
                            {}, 6, None, (4, 4)),
    "euler-exponential": (EulerDiscreteScheduler, {"use_exponential_sigmas": True}, {}, 8, None, (4, 4)),
    "euler-log-linear": (EulerDiscreteScheduler, {"interpolation_type": "log_linear"}, {}, 6, None, (4, 4)),
    "euler-sigma-min-trailing": (EulerDiscreteScheduler, {"final_sigmas_type": "sigma_min",
                                                          "timestep_spacing": "trailing"}, {}, 6, None, (4, 4)),
    "euler-continuous-v": (EulerDiscreteScheduler, {"timestep_type": "continuous", "prediction_type": "v_prediction"},
                           {}, 6, None, (4, 4)),
    "euler-sample": (EulerDiscreteScheduler, {"prediction_type": "sample"}, {}, 5, None, (4, 4)),
    "euler-churn": (EulerDiscreteScheduler, {}, {"s_churn": 2.0, "s_tmin": 0.5, "s_tmax": 10.0, "s_noise": 1.003},
                    6, None, (4, 4)),
    "euler-zero-snr-v": (EulerDiscreteScheduler, {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction",
                                                  "timestep_spacing": "trailing"}, {}, 6, None, (4, 4)),
    "euler-img2img": (EulerDiscreteScheduler, {}, {}, 10, 4, (4, 4)),
    "euler_a-v": (EulerAncestralDiscreteScheduler, {"prediction_type": "v_prediction"}, {}, 6, None, (4, 4)),
    "euler_a-zero-snr-v": (EulerAncestralDiscreteScheduler, {"rescale_betas_zero_snr": True,
                                                             "prediction_type": "v_prediction",
                                                             "timestep_spacing": "trailing"}, {}, 6, None, (4, 4)),
    "euler_a-img2img": (EulerAncestralDiscreteScheduler, {}, {}, 10, 3, (4, 4)),
    "dpm-karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}, {}, 10, None, (4, 4)),
    "dpm-lu-lambdas": (DPMSolverMultistepScheduler, {"use_lu_lambdas": True}, {}, 8, None, (4, 4)),
    "dpm-exponential": (DPMSolverMultistepScheduler, {"use_exponential_sigmas": True}, {}, 8, None, (4, 4)),
    "dpm-order1": (DPMSolverMultistepScheduler, {"solver_order": 1}, {}, 5, None, (4, 4)),
    "dpm-order3": (DPMSolverMultistepScheduler, {"solver_order": 3}, {}, 8, None, (4, 4)),
    "dpm-order3-long": (DPMSolverMultistepScheduler, {"solver_order": 3, "final_sigmas_type": "sigma_min"}, {},
                        16, None, (4, 4)),
    "dpm-heun": (DPMSolverMultistepScheduler, {"solver_type": "heun"}, {}, 6, None, (4, 4)),
    "dpm-sde++": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}, {}, 6, None, (4, 4)),
    "dpm-sde++-heun-order3": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "solver_type": "heun",
                                                            "solver_order": 3}, {}, 7, None, (4, 4)),
    "dpm-dpmsolver": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min"},
                      {}, 6, None, (4, 4)),
    "dpm-dpmsolver-heun-order3": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver", "solver_type": "heun",
                                                                "final_sigmas_type": "sigma_min", "solver_order": 3},
                                  {}, 7, None, (4, 4)),
    "dpm-sde-dpmsolver": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver",
                                                        "final_sigmas_type": "sigma_min"}, {}, 6, None, (4, 4)),
    "dpm-sde-dpmsolver-heun": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver", "solver_type": "heun",
                                                             "final_sigmas_type": "sigma_min"}, {}, 6, None, (4, 4)),
    "dpm-v-threshold": (DPMSolverMultistepScheduler, {"prediction_type": "v_prediction", "thresholding": True,
                                                      "sample_max_value": 2.0}, {}, 6, None, (4, 4)),
    "dpm-dpmsolver-sample-threshold": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver",
                                                                     "final_sigmas_type": "sigma_min",
                                                                     "prediction_type": "sample", "thresholding": True},
                                       {}, 6, None, (4, 4)),
    "dpm-euler-at-final": (DPMSolverMultistepScheduler, {"euler_at_final": True, "final_sigmas_type": "sigma_min"},
                           {}, 20, None, (4, 4)),
    "dpm-cosine-lambda-clipped": (DPMSolverMultistepScheduler, {"beta_schedule": "squaredcos_cap_v2",
                                                                "lambda_min_clipped": -5.1}, {}, 6, None, (4, 4)),
    "dpm-zero-snr-v-trailing": (DPMSolverMultistepScheduler, {"rescale_betas_zero_snr": True,
                                                              "prediction_type": "v_prediction",
                                                              "timestep_spacing": "trailing"}, {}, 6, None, (4, 4)),
    "dpm-flow": (DPMSolverMultistepScheduler, {"use_flow_sigmas": True, "prediction_type": "flow_prediction",
                                               "flow_shift": 3.0}, {}, 6, None, (4, 4)),
    "dpm-learned-variance": (DPMSolverMultistepScheduler, {"variance_type": "learned_range"}, {}, 5, None, (3, 6)),
    "dpm-trained-betas": (DPMSolverMultistepScheduler, {"num_train_timesteps": 100, "trained_betas": TRAINED_100,
                                                        "beta_schedule": "linear"}, {}, 6, None, (4, 4)),
    "dpm-img2img": (DPMSolverMultistepScheduler, {}, {}, 10, 4, (4, 4)),
}


def build(cls, overrides):
    cfg = dict(SD15)
    cfg.update(overrides)
    base = PNDMScheduler.from_config(SD15)
    if cls is PNDMScheduler:
        return PNDMScheduler.from_config(cfg)
    return cls.from_config(base.config, **overrides)


def make_case(out, name, spec):
    cls, overrides, step_kwargs, run_steps, begin, (channels, out_channels) = spec
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    sched = build(cls, overrides)
    pinned.save_scheduler_config(sched, folder)
    tensors, info = {}, {"class": cls.__name__, "overrides": overrides, "step_kwargs": step_kwargs,
                         "run_steps": run_steps, "begin_index": begin, "generator_seed": SEED,
                         "sample_shape": [1, channels, 8, 8], "model_output_shape": [1, out_channels, 8, 8],
                         "timesteps": {}, "errors": {}}
    for n in N_VALUES:
        s = build(cls, overrides)
        try:
            s.set_timesteps(n)
        except Exception as e:
            info["errors"][f"N{n}"] = f"{type(e).__name__}: {e}"
            continue
        tensors[f"N{n}.timesteps"] = s.timesteps.clone()
        info["timesteps"][f"N{n}"] = s.timesteps.tolist()
        if torch.is_tensor(getattr(s, "sigmas", None)):
            tensors[f"N{n}.sigmas"] = s.sigmas.clone().to(torch.float32)

    s = build(cls, overrides)
    s.set_timesteps(run_steps)
    timesteps = s.timesteps
    x = randn(f"{name}/sample0", 1, channels, 8, 8) * s.init_noise_sigma
    if begin is not None:
        timesteps = timesteps[begin * s.order:]
        if hasattr(s, "set_begin_index"):  # as the img2img pipeline checks
            s.set_begin_index(begin * s.order)
        original = randn(f"{name}/original", 1, channels, 8, 8)
        noise = randn(f"{name}/noise", 1, channels, 8, 8)
        x = s.add_noise(original, noise, timesteps[:1])
        tensors["add_noise.original"] = original
        tensors["add_noise.noise"] = noise
        tensors["add_noise.out"] = x.clone()
    tensors["run.sample0"] = x.clone()
    generator = torch.Generator().manual_seed(SEED)
    for i, t in enumerate(timesteps):
        mo = randn(f"{name}/model_output/{i}", 1, out_channels, 8, 8)
        tensors[f"run.model_output.{i}"] = mo
        tensors[f"run.scaled.{i}"] = s.scale_model_input(x, t).clone()
        with NoiseRecorder(MODULES[cls]) as rec:
            kwargs = dict(step_kwargs)
            if cls is not PNDMScheduler:
                kwargs["generator"] = generator
            res = s.step(mo, t, x, **kwargs)
        for k, drawn in enumerate(rec.drawn):
            tensors[f"run.noise.{i}" + (f".{k}" if k else "")] = drawn
        x = res.prev_sample
        tensors[f"run.prev_sample.{i}"] = x.clone()
    info["run_timesteps"] = timesteps.tolist()
    pinned.save_checked(tensors, os.path.join(folder, "reference.safetensors"), {"case": name})
    pinned.write_json(os.path.join(folder, "case.json"), info, indent=1, sort_keys=True)


RANDN_CODE = r'''
import sys, torch
from safetensors.torch import save_file
torch.set_num_threads(2)
assert torch.backends.cpu.get_cpu_capability() == sys.argv[2], torch.backends.cpu.get_cpu_capability()
out = {}
for seed in [0, 3, 2024]:
    for shape in [[5], [16], [17], [2, 3, 7], [1, 4, 16, 16]]:
        torch.manual_seed(seed)
        out["seed%d.%s" % (seed, "x".join(map(str, shape)))] = torch.randn(shape)
g = torch.Generator().manual_seed(99)
for i, n in enumerate([3, 1, 20, 7, 33, 2]):
    out["sequence.%d" % i] = torch.randn(n, generator=g)
save_file(out, sys.argv[1], metadata={"capability": sys.argv[2]})
'''


def make_randn(out):
    import subprocess
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, "-c", RANDN_CODE, os.path.join(out, "randn_portable.safetensors"), "DEFAULT"],
                   check=True, env=env)
    # The same draws with the kernel PyTorch picks on this (AVX-512) machine.
    subprocess.run([sys.executable, "-c", RANDN_CODE, os.path.join(out, "randn_native.safetensors"),
                    torch.backends.cpu.get_cpu_capability()], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/schedulers/extra")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, spec in CASES.items():
        make_case(args.out, name, spec)
    make_randn(args.out)
    print(f"wrote {len(CASES)} cases to {args.out}")


if __name__ == "__main__":
    main()
