#!/usr/bin/env python3
# FlowMatchEulerDiscreteScheduler fixtures for swift-diffusers' Schedulers tests
# (Tests/SchedulersTests/FlowMatchEulerDiscreteSchedulerTests.swift).
#
# Pinned versions: see pinned.py (diffusers 0.42.1, torch 2.15.0, numpy 2.x, python 3.11).
# Run from the repository root:
#   /var/tmp/venv-torch/bin/python tools/reference/make_flow_match_fixtures.py [--out Tests/Fixtures/schedulers/flow-match]
#
# Output (Tests/Fixtures/schedulers/flow-match/; named expected.* so that the generic scheduler fixture tests,
# which take every folder holding a reference.safetensors, leave it alone):
#   flux-dev/scheduler_config.json, flux-schnell/scheduler_config.json
#       FLUX.1-dev's and FLUX.1-schnell's scheduler configs as the Hub ships them (the keys they state;
#       docs/reference values: dev dynamic with shift 3.0, schnell shift 1.0, both 256/4096/0.5/1.15).
#   expected.json
#       "cases": one per set_timesteps call: the config (dev, schnell, or an inline dict of overrides on the
#       class defaults), the call's arguments exactly as passed (steps, sigmas as float64, mu, timesteps) and
#       the tensor names; "mu": FluxPipeline's calculate_shift for each image size; "runs": the step and
#       scale_noise runs (shapes, begin index, seed); "versions".
#   expected.safetensors
#       <case>.sigmas, <case>.timesteps (float32, as the scheduler holds them after set_timesteps);
#       run tensors: <run>.sample0, <run>.model_output.<i>, <run>.prev_sample.<i>, scale_noise inputs and
#       outputs. bf16 runs keep bf16 tensors.
#
# FLUX cases follow FluxPipeline.__call__: sigmas = np.linspace(1.0, 1/N, N), image_seq_len =
# (H//16)*(W//16), mu = calculate_shift(image_seq_len, base_image_seq_len, max_image_seq_len, base_shift,
# max_shift) with the config's values, set_timesteps(sigmas=sigmas, mu=mu) (retrieve_timesteps passes no
# step count with sigmas), then set_begin_index(0).

import argparse
import json
import os

import pinned  # first: offline mode and version pins before diffusers is imported
from pinned import randn
import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift

pinned.setup(threads=2)
VERSIONS = pinned.versions("numpy")

FLUX_DEV = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.30.0.dev0",
            "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15,
            "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True}
FLUX_SCHNELL = dict(FLUX_DEV, shift=1.0, use_dynamic_shifting=False)
CONFIGS = {"flux-dev": FLUX_DEV, "flux-schnell": FLUX_SCHNELL}
SIZES = [(256, 256), (512, 512), (1024, 1024), (768, 1360)]  # (height, width)
SEED = 4321


def flux_sigmas(n):
    return np.linspace(1.0, 1 / n, n)


def mu_for(config, height, width):
    seq = (height // 16) * (width // 16)
    return calculate_shift(seq, config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096),
                           config.get("base_shift", 0.5), config.get("max_shift", 1.15))


def scheduler(config):
    return FlowMatchEulerDiscreteScheduler.from_config(config)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/schedulers/flow-match")
    args = ap.parse_args()
    out = args.out
    for name, cfg in CONFIGS.items():
        os.makedirs(os.path.join(out, name), exist_ok=True)
        pinned.write_json(os.path.join(out, name, "scheduler_config.json"), cfg)

    tensors, cases, runs, mus = {}, [], {}, {}
    for h, w in SIZES:
        mus[f"{h}x{w}"] = mu_for(FLUX_DEV, h, w)
    assert abs(mus["1024x1024"] - 1.15) < 1e-12 and abs(mus["512x512"] - 0.63) < 1e-12, mus

    def add_case(name, config_name, config, steps=None, sigmas=None, mu=None, timesteps=None):
        s = scheduler(config)
        s.set_timesteps(num_inference_steps=steps, sigmas=None if sigmas is None else list(sigmas), mu=mu,
                        timesteps=None if timesteps is None else list(timesteps))
        assert s.sigmas.dtype == torch.float32 and s.timesteps.dtype == torch.float32
        tensors[f"{name}.sigmas"] = s.sigmas.clone()
        tensors[f"{name}.timesteps"] = s.timesteps.clone()
        cases.append({"name": name, "config": config_name if config_name else {k: v for k, v in config.items()},
                      "steps": steps, "sigmas": None if sigmas is None else [float(x) for x in sigmas],
                      "mu": mu, "timesteps": None if timesteps is None else [float(x) for x in timesteps]})
        return s

    # FLUX.1-dev as FluxPipeline drives it
    for size, mu in mus.items():
        for n in (1, 2, 4, 28, 50):
            add_case(f"dev-{size}-{n}", "flux-dev", FLUX_DEV, sigmas=flux_sigmas(n), mu=mu)
    # and without the pipeline's sigmas (the float64 layout)
    for n in (1, 4, 28):
        add_case(f"dev-default-1024x1024-{n}", "flux-dev", FLUX_DEV, steps=n, mu=mus["1024x1024"])
    # FLUX.1-schnell (mu is computed and passed, and unused)
    for n in (1, 2, 4):
        add_case(f"schnell-{n}", "flux-schnell", FLUX_SCHNELL, sigmas=flux_sigmas(n), mu=mu_for(FLUX_SCHNELL, 1024, 1024))
    s4 = scheduler(FLUX_SCHNELL)
    s4.set_timesteps(sigmas=list(flux_sigmas(4)), mu=1.15)
    assert s4.sigmas.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0] and s4.timesteps.tolist() == [1000, 750, 500, 250]

    # other configurations of the class
    sd3 = {"shift": 3.0}
    add_case("shift3-default-28", None, sd3, steps=28)
    add_case("shift3-sigmas-28", None, sd3, sigmas=flux_sigmas(28))
    add_case("shift3-default-1200", None, sd3, steps=1200)  # more steps than training timesteps: allowed
    add_case("linear-time-shift-10", None, {"use_dynamic_shifting": True, "time_shift_type": "linear"},
             sigmas=flux_sigmas(10), mu=0.8)
    add_case("linear-time-shift-default-10", None, {"use_dynamic_shifting": True, "time_shift_type": "linear"},
             steps=10, mu=1.3)
    ltx = {"use_dynamic_shifting": True, "base_shift": 0.95, "max_shift": 2.05, "base_image_seq_len": 1024,
           "max_image_seq_len": 4096, "shift_terminal": 0.1}
    add_case("shift-terminal-sigmas-20", None, ltx, sigmas=flux_sigmas(20), mu=1.7)
    add_case("shift-terminal-default-20", None, ltx, steps=20, mu=1.7)
    add_case("karras-default-10", None, {"shift": 3.0, "use_karras_sigmas": True}, steps=10)
    add_case("karras-sigmas-10", None, {"use_dynamic_shifting": True, "use_karras_sigmas": True},
             sigmas=flux_sigmas(10), mu=1.15)
    add_case("exponential-default-10", None, {"shift": 3.0, "use_exponential_sigmas": True}, steps=10)
    add_case("invert-default-8", None, {"invert_sigmas": True, "shift": 2.0}, steps=8)
    add_case("timesteps-only-4", None, sd3, timesteps=[1000.0, 750.0, 500.0, 250.0])
    add_case("sigmas-and-timesteps-3", None, sd3, sigmas=[1.0, 0.6, 0.2], timesteps=[999.0, 600.5, 200.25])
    add_case("shift-0.7-sigmas-7", None, {"shift": 0.7}, sigmas=flux_sigmas(7))

    # ------------------------------------------------------------------ step runs
    def step_run(name, case_config, n, size, dtype=torch.float32, stochastic=False, shape=(2, 8, 16)):
        cfg = dict(case_config, stochastic_sampling=stochastic)
        s = scheduler(cfg)
        s.set_timesteps(sigmas=list(flux_sigmas(n)), mu=mus[size])
        s.set_begin_index(0)
        x = randn(f"flow-match/{name}/sample0", *shape).to(dtype)
        tensors[f"{name}.sample0"] = x
        g = torch.Generator().manual_seed(SEED) if stochastic else None
        for i, t in enumerate(s.timesteps):
            v = randn(f"flow-match/{name}/model_output.{i}", *shape).to(dtype)
            x = s.step(v, t, x, generator=g).prev_sample
            assert x.dtype == dtype
            tensors[f"{name}.model_output.{i}"] = v
            tensors[f"{name}.prev_sample.{i}"] = x
        runs[name] = {"config": "flux-dev", "stochastic_sampling": stochastic, "steps": n, "mu_size": size,
                      "dtype": str(dtype).replace("torch.", ""), "shape": list(shape), "begin_index": 0,
                      "generator_seed": SEED if stochastic else None}

    step_run("step-f32", FLUX_DEV, 4, "1024x1024")
    step_run("step-bf16", FLUX_DEV, 4, "1024x1024", dtype=torch.bfloat16)
    step_run("step-stochastic", FLUX_DEV, 3, "512x512", stochastic=True)

    # img2img as FluxImg2ImgPipeline: strength 0.6 of 28 steps, begin index t_start
    for dtype in (torch.float32, torch.bfloat16):
        name = f"scale-noise-img2img-{str(dtype).replace('torch.', '')}"
        s = scheduler(FLUX_DEV)
        n, strength = 28, 0.6
        s.set_timesteps(sigmas=list(flux_sigmas(n)), mu=mus["1024x1024"])
        init_timestep = min(n * strength, n)
        t_start = int(max(n - init_timestep, 0))
        timesteps = s.timesteps[t_start * s.order:]
        s.set_begin_index(t_start * s.order)
        latent_timestep = timesteps[:1].repeat(2)
        x0 = randn(f"flow-match/{name}/x0", 2, 8, 16).to(dtype)
        noise = randn(f"flow-match/{name}/noise", 2, 8, 16).to(dtype)
        y = s.scale_noise(x0, latent_timestep, noise)
        assert y.dtype == dtype
        tensors[f"{name}.x0"], tensors[f"{name}.noise"], tensors[f"{name}.out"] = x0, noise, y
        runs[name] = {"config": "flux-dev", "steps": n, "mu_size": "1024x1024", "strength": strength, "t_start": t_start,
                      "dtype": str(dtype).replace("torch.", ""), "shape": [2, 8, 16]}
    # without a begin index: each batch item's sigma from its timestep's position (the 2nd of duplicates)
    name = "scale-noise-lookup"
    s = scheduler(FLUX_DEV)
    s.set_timesteps(sigmas=list(flux_sigmas(28)), mu=mus["1024x1024"])
    t = torch.stack([s.timesteps[3], s.timesteps[10]])
    x0, noise = randn(f"flow-match/{name}/x0", 2, 8, 16), randn(f"flow-match/{name}/noise", 2, 8, 16)
    tensors[f"{name}.x0"], tensors[f"{name}.noise"] = x0, noise
    tensors[f"{name}.out"] = s.scale_noise(x0, t, noise)
    runs[name] = {"config": "flux-dev", "steps": 28, "mu_size": "1024x1024", "timestep_indices": [3, 10], "shape": [2, 8, 16]}

    os.makedirs(out, exist_ok=True)
    pinned.save_checked(tensors, os.path.join(out, "expected.safetensors"), {"format": "pt"})
    pinned.write_json(os.path.join(out, "expected.json"),
                      {"cases": cases, "mu": mus, "runs": runs, "versions": VERSIONS}, indent=1)
    print(f"{out}: {len(cases)} cases, {len(runs)} runs, {pinned.folder_bytes(out)} bytes")


if __name__ == "__main__":
    main()
