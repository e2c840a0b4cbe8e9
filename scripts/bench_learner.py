"""Learner cost per sample of teacher sizes and precisions, side by side in one process
(PPO's update cost).

    python scripts/bench_learner.py

Times one forward and backward pass of the actor and critic on the packed path (batch 1024,
12 limb slots of which 8 are real, as UNIMAL robots average), median of 5, on 2 threads,
and prints each size's cost as a multiple of the small teacher's, then the reference
teacher's cost in float32 against bfloat16 matmuls (``hd-train --precision bf16``: torch's
autocast, as PPO's update runs it). Last, the same comparison for one distillation step of
the reference hypernetwork (16 robots x 320 samples: generate the base MLPs, apply them,
backward): 1.35x and 1.4x in two runs, too little for ``hd-distill`` to trade the
student's imitation accuracy for it, so it has no bf16 option. On a CPU without native
bfloat16 (AVX2 only) both are slower in bfloat16 (oneDNN emulates it): the script says
which CPU it ran on.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from hd_deploy.models import HyperNetConfig, HyperNetPolicy, TeacherConfig, TeacherPolicy
from hd_deploy.models.counting import teacher_actor_params
from hd_deploy.train.collect import native_bf16

BF16 = "reference, bf16"
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
    models[BF16] = models["reference"]
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every size
        for name, model in models.items():
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == BF16):
                _, mean, value = model.packed(p, c, mask)
            assert value is not None
            (mean.float().pow(2).mean() + value.float().pow(2).mean()).backward()
            times[name].append(time.perf_counter() - t0)
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    for name in SIZES:
        params = teacher_actor_params(SIZES[name])
        print(
            f"{name}: {median[name] / median['small']:.1f}x the small teacher's cost per "
            f"sample, actor parameters {params}"
        )
    print(f"this CPU: native bfloat16 (AVX512-BF16 or AMX) {native_bf16('cpu')}")
    print(f"reference in bfloat16 matmuls: {_speed(median['reference'] / median[BF16])}")
    student = _student_step_times(limbs, real, repeats)
    print(f"student distillation step in bfloat16 matmuls: {_speed(student)}")


def _speed(ratio: float) -> str:
    """A float32-over-bfloat16 time ratio in words."""
    if ratio >= 1:
        return f"{ratio:.1f}x faster than in float32"
    return f"{1 / ratio:.1f}x slower than in float32"


def _student_step_times(limbs: int, real: int, repeats: int, robots: int = 16,
                        per_robot: int = 320) -> float:  # fmt: skip
    """float32 over bfloat16 median time of one reference-hypernetwork distillation step."""
    model = HyperNetPolicy(HyperNetConfig.reference())
    c = torch.randn(robots, limbs, 53)
    mask = torch.zeros(robots, limbs, dtype=torch.bool)
    mask[:, :real] = True
    p = torch.randn(robots * per_robot, limbs, 17)
    local = torch.arange(robots).repeat_interleave(per_robot)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for bf16 in times:
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model.apply(model.generate(c, mask), p, local)
            out.float().pow(2).mean().backward()
            times[bf16].append(time.perf_counter() - t0)
    fp32, half = (sorted(times[b])[len(times[b]) // 2] for b in (False, True))
    return fp32 / half


if __name__ == "__main__":
    main()
