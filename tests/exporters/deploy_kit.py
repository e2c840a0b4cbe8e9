"""Shared test kit for export, runtime and deploy-CLI tests.

Tiny student and teacher checkpoints with non-trivial weights and normaliser statistics,
and controllers exported from them, built once per test session (cached on the session's
temporary folder, so every conftest that imports these fixtures shares one copy).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.exporters import ExportResult, export_robots
from hd_deploy.models import (
    BakedMLP,
    HyperNetConfig,
    HyperNetPolicy,
    TeacherConfig,
    TeacherExport,
    TeacherPolicy,
    load_student,
    load_teacher,
    save_checkpoint,
)
from hd_deploy.morphology.sources import BUNDLED_ROBOTS

# The smallest bundled robot: 5 limbs (85 observations), 6 actuators.
ROBOT_FILE = BUNDLED_ROBOTS / "gen-11.xml"
OTHER_ROBOT_FILE = BUNDLED_ROBOTS / "gen-1.xml"
SEED = 0
# Scale of the generator matrices, relative to the shared base weights: robots differ and
# actions stay mostly inside [-1, 1] so parity is not checked on clipped outputs only.
GENERATOR_SCALE = 1.0
TEACHER_HEAD_STD = 0.3
TOL = 1e-5


@dataclass(frozen=True)
class Kit:
    """Checkpoints and the robot the runtime tests drive."""

    root: Path
    student_ckpt: Path
    teacher_ckpt: Path
    robot_file: Path


@dataclass(frozen=True)
class Exported:
    """An exported controller and the torch module it came from."""

    result: ExportResult
    module: BakedMLP | TeacherExport
    task: LocomotionTask

    @property
    def path(self) -> Path:
        return self.result.path


def tiny_student(seed: int = SEED) -> HyperNetPolicy:
    """A tiny hypernetwork whose generators are no longer zero, with real-looking stats."""
    torch.manual_seed(seed)
    hn = HyperNetPolicy(HyperNetConfig.tiny())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in hn.named_modules():
            if isinstance(mod, torch.nn.Linear) and name.split(".")[0].endswith(("_w", "_b")):
                base = float(mod.bias.abs().max()) or 0.1
                std = GENERATOR_SCALE * base / mod.in_features**0.5
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * std)
        _stats(hn.normalizer, g)
    return hn.eval()


def tiny_teacher(seed: int = SEED) -> TeacherPolicy:
    """A tiny teacher whose actions are not all near zero, with real-looking stats."""
    torch.manual_seed(seed)
    teacher = TeacherPolicy(TeacherConfig.tiny())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        head = teacher.actor.head.weight
        head.copy_(torch.randn(head.shape, generator=g) * TEACHER_HEAD_STD)
        _stats(teacher.normalizer, g)
    return teacher.eval()


def _stats(norm: torch.nn.Module, g: torch.Generator) -> None:
    norm.mean.copy_(torch.randn(norm.dim, generator=g) * 0.5)
    norm.var.copy_(torch.rand(norm.dim, generator=g) * 2.0 + 0.5)
    norm.count.fill_(1000.0)


@functools.cache
def build_kit(root: Path) -> Kit:
    root.mkdir(parents=True, exist_ok=True)
    student = save_checkpoint(root / "student", tiny_student(), robots=["gen-11"])
    teacher = save_checkpoint(root / "teacher", tiny_teacher(), robots=["gen-11"])
    return Kit(root=root, student_ckpt=student, teacher_ckpt=teacher, robot_file=ROBOT_FILE)


@functools.cache
def build_export(root: Path, kind: str, dynamic_batch: bool) -> Exported:
    kit = build_kit(root)
    teacher = kind == "teacher"
    out = root / f"{kind}-{'dynamic' if dynamic_batch else 'static'}"
    (result,) = export_robots(
        [kit.robot_file],
        checkpoint=kit.teacher_ckpt if teacher else kit.student_ckpt,
        out_dir=out,
        dynamic_batch=dynamic_batch,
        teacher=teacher,
    )
    task = LocomotionTask(kit.robot_file)
    if teacher:
        module = load_teacher(kit.teacher_ckpt).for_robot(task.robot, task.context)
    else:
        (module,) = load_student(kit.student_ckpt).bake([task.robot], [task.context])
    return Exported(result=result, module=module.eval(), task=task)


def rollout_obs(task: LocomotionTask, steps: int, *, seed: int = 1) -> np.ndarray:
    """Observations ``(steps, obs_dim)`` of a rollout with random controls."""
    rng = np.random.default_rng(seed)
    obs = [task.reset(rng).reshape(-1)]
    for _ in range(steps - 1):
        result = task.step(rng.uniform(-1, 1, size=task.model.nu))
        done = result.terminated or result.truncated
        obs.append((task.reset(rng) if done else task.observe()).reshape(-1))
    return np.stack(obs).astype(np.float32)


def torch_ctrl(module: torch.nn.Module, obs: np.ndarray) -> np.ndarray:
    """The torch module's controls for a batch ``(B, obs_dim)`` -> ``(B, n_actuators)``."""
    with torch.inference_mode():
        return module(torch.from_numpy(np.asarray(obs, dtype=np.float32))).numpy()


# --- fixtures (import them into a conftest or test module) -----------------------------


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return build_kit(tmp_path_factory.getbasetemp() / "deploy-kit")


@pytest.fixture(scope="session")
def student(kit: Kit) -> Exported:
    """The kit robot's student, batch 1."""
    return build_export(kit.root, "student", False)


@pytest.fixture(scope="session")
def student_dynamic(kit: Kit) -> Exported:
    """The kit robot's student, dynamic batch."""
    return build_export(kit.root, "student", True)


@pytest.fixture(scope="session")
def teacher(kit: Kit) -> Exported:
    """The kit robot's teacher, batch 1."""
    return build_export(kit.root, "teacher", False)
