"""Learner cost per sample of teacher sizes, side by side in one process (PPO's update cost).

    python scripts/bench_learner.py

Times one forward and backward pass of the actor and critic on the packed path (batch 1024,
12 limb slots of which 8 are real, as UNIMAL robots average), median of 5, on 2 threads,
and prints each size's cost as a multiple of the small teacher's.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from hd_deploy.models import TeacherConfig, TeacherPolicy
from hd_deploy.models.counting import teacher_actor_params

SIZES = {
    "small": TeacherConfig.small(),
    "medium (d 128, 3 layers, ff 256)": dataclasses.replace(
        TeacherConfig.small(), d_model=128, n_layers=3, ff_dim=256
    ),
    "reference": TeacherConfig.reference(),
}


def main(batch: int = 1024, limbs: int = 12, real: int = 8, repeats: int = 5) -> None:
    torch.set_num_threads(2)
    p, c = torch.randn(batch, limbs, 17), torch.randn(batch, limbs, 53)
    mask = torch.zeros(batch, limbs, dtype=torch.bool)
    mask[:, :real] = True
    models = {name: TeacherPolicy(cfg) for name, cfg in SIZES.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every size
        for name, model in models.items():
            t0 = time.perf_counter()
            _, mean, value = model.packed(p, c, mask)
            assert value is not None
            (mean.pow(2).mean() + value.pow(2).mean()).backward()
            times[name].append(time.perf_counter() - t0)
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    for name in models:
        params = teacher_actor_params(SIZES[name])
        print(
            f"{name}: {median[name] / median['small']:.1f}x the small teacher's cost per "
            f"sample, actor parameters {params}"
        )


if __name__ == "__main__":
    main()
