"""The paper-sized architectures with random weights on a generated 12-limb robot.

Parameters, MACs and latency do not depend on the weights, so the reference teacher
(``TeacherConfig.reference()``) and hypernetwork (``HyperNetConfig.reference()``) can be
profiled without training and compared with the paper's headline ratios (6-14x fewer
parameters, 67-160x fewer FLOPs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hd_deploy.bench.backends import deploy, time_backends
from hd_deploy.bench.latency import TimingPlan, time_repeated
from hd_deploy.bench.profile import student_cost, teacher_cost
from hd_deploy.envs.task import LocomotionTask
from hd_deploy.models import (
    HyperNetConfig,
    HyperNetPolicy,
    TeacherConfig,
    TeacherPolicy,
    baked_macs,
    baked_params,
    count_params,
)
from hd_deploy.morphology.features import PROPRIO_DIM
from hd_deploy.morphology.generator import GeneratorConfig, generate_robot
from hd_deploy.morphology.robot import JOINT_SLOTS, MAX_LIMBS

if TYPE_CHECKING:
    from hd_deploy.bench.progress import Progress

#: Generator seed of the reference robot; every limb gets two hinges, so a 12-limb robot
#: (torso included; the torso has no hinge) has 22 actuators.
REFERENCE_SEED = 0
REFERENCE_LIMBS = MAX_LIMBS
PAPER = {"params_ratio": [6, 14], "flops_ratio": [67, 160]}
REFERENCE_SOURCE_HASH = "random-weights"


def reference_robot(seed: int = REFERENCE_SEED) -> tuple[str, str]:
    """``(name, MJCF text)`` of the generated 12-limb robot with two hinges per limb."""
    xml = generate_robot(seed, n_limbs=REFERENCE_LIMBS, config=GeneratorConfig(two_joint_prob=1.0))
    return f"gen-{seed}-{REFERENCE_LIMBS}limbs", xml


def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def profile_reference(
    onnx_dir: Path,
    *,
    plan: TimingPlan,
    bake_repeats: int,
    seed: int = 0,
    progress: Progress | None = None,
    teacher_config: TeacherConfig | None = None,
    hypernet_config: HyperNetConfig | None = None,
) -> dict[str, Any]:
    """Counts, cross-checks, ONNX sizes and latency of the reference architectures.

    Args:
        onnx_dir: Where the two reference ONNX files go.
        plan: Latency timing plan.
        bake_repeats: Timed bakes (median reported).
        seed: Seed of the random weights and of the observation.
        progress: Progress bar to advance (three units).
        teacher_config: Teacher architecture (default: ``TeacherConfig.reference()``;
            tests pass a tiny one).
        hypernet_config: Hypernetwork architecture (default: ``HyperNetConfig.reference()``).

    Returns:
        The ``reference`` section of the report.
    """

    def step(text: str | None) -> None:
        if progress is not None:
            if text is None:
                progress.advance()
            else:
                progress.status(text)

    step("reference: building and exporting")
    torch.manual_seed(seed)
    t_cfg = teacher_config if teacher_config is not None else TeacherConfig.reference()
    h_cfg = hypernet_config if hypernet_config is not None else HyperNetConfig.reference()
    teacher, student = TeacherPolicy(t_cfg).eval(), HyperNetPolicy(h_cfg).eval()
    name, xml = reference_robot()
    task = LocomotionTask(xml, name=name)
    robot = task.robot
    hashes = (REFERENCE_SOURCE_HASH, REFERENCE_SOURCE_HASH)
    d = deploy(teacher, student, task, xml, onnx_dir, f"reference-{name}", hashes=hashes)
    t_cost = teacher_cost(d.teacher, t_cfg)
    s_cost = student_cost(d.student)
    bake = time_repeated(lambda: student.bake([robot], [task.context]), repeats=bake_repeats)
    step(None)

    step(f"reference: latency ({plan.calls} calls x 5 backends)")
    obs = task.reset(np.random.default_rng(seed)).reshape(-1)
    latency = time_backends(d.controllers, obs, plan)
    step(None)

    padded = (REFERENCE_LIMBS, REFERENCE_LIMBS * JOINT_SLOTS, h_cfg.hidden, h_cfg.n_hidden_layers)
    p_params, p_macs = baked_params(*padded), baked_macs(*padded)
    t_lat, s_lat = latency["teacher"], latency["student"]
    entry = {
        "robot": robot.name,
        "seed": REFERENCE_SEED,
        "n_limbs": robot.n_limbs,
        "n_actuators": robot.n_actuators,
        "teacher": {
            "config": t_cfg.to_dict(),
            **t_cost,
            "onnx_file": d.teacher_onnx.name,
            "onnx_bytes": d.teacher_onnx.stat().st_size,
            "latency_us": t_lat,
        },
        "student": {
            "config": h_cfg.to_dict(),
            **s_cost,
            "onnx_file": d.student_onnx.name,
            "onnx_bytes": d.student_onnx.stat().st_size,
            "latency_us": s_lat,
            "hypernet_params": count_params(student),
            "bake_ms": bake.p50_us / 1e3,
        },
        "params_ratio": _ratio(t_cost["params"], s_cost["params"]),
        "macs_ratio": _ratio(t_cost["macs"], s_cost["macs"]),
        "latency_ratio_onnx": _ratio(t_lat["onnx"]["p50"], s_lat["onnx"]["p50"]),
        "latency_ratio_torch_vs_onnx": _ratio(t_lat["torch"]["p50"], s_lat["onnx"]["p50"]),
        "paper_layout": {
            "widths": "->".join(
                str(w)
                for w in (
                    REFERENCE_LIMBS * PROPRIO_DIM,
                    *[h_cfg.hidden] * (1 + h_cfg.n_hidden_layers),
                    REFERENCE_LIMBS * JOINT_SLOTS,
                )
            ),
            "student_params": p_params,
            "student_macs": p_macs,
            "params_ratio": _ratio(t_cost["params"], p_params),
            "macs_ratio": _ratio(t_cost["macs"], p_macs),
        },
        "paper": dict(PAPER),
    }
    step(None)
    return entry
