"""One robot's teacher and student in every backend: build, export, open, time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hd_deploy.bench.latency import TimingPlan, gc_paused, time_interleaved
from hd_deploy.envs.task import LocomotionTask
from hd_deploy.exporters.onnx import export_controller
from hd_deploy.models import BakedMLP, HyperNetPolicy, TeacherExport, TeacherPolicy
from hd_deploy.models.controller import TorchController
from hd_deploy.runtime import Controller, load_controller
from hd_deploy.runtime.native import SharedController, find_compiler

#: Backends timed per model (the numpy runtime and C run baked MLPs only; C when a
#: compiler is present).
BACKENDS = {"teacher": ("torch", "onnx"), "student": ("torch", "onnx", "numpy", "c")}


@dataclass(frozen=True)
class Deployed:
    """One robot's two controllers in every backend, and where their ONNX files went.

    Attributes:
        teacher: The teacher on the robot's limbs.
        student: The baked MLP.
        teacher_onnx: Exported teacher file.
        student_onnx: Exported student file.
        controllers: ``(model, backend)`` -> controller, see :data:`BACKENDS`.
        student_c: The student's C library (ctypes), also timed inside C; None without a
            C compiler.
    """

    teacher: TeacherExport
    student: BakedMLP
    teacher_onnx: Path
    student_onnx: Path
    controllers: dict[tuple[str, str], Controller]
    student_c: SharedController | None = None


def deploy(
    teacher: TeacherPolicy,
    student: HyperNetPolicy,
    task: LocomotionTask,
    mjcf: str,
    onnx_dir: Path,
    stem: str,
    *,
    hashes: tuple[str, str],
) -> Deployed:
    """Build both per-robot modules, export them (verified) and open every backend.

    Args:
        teacher: The teacher policy.
        student: The hypernetwork (bakes the MLP).
        task: The robot's task (robot and context).
        mjcf: The robot's MJCF text (stored in the ONNX files).
        onnx_dir: Folder of the exported files ``<stem>.teacher.onnx``, ``<stem>.student.onnx``.
        stem: File name stem.
        hashes: Source checkpoint hashes ``(teacher, student)``.
    """
    robot = task.robot
    t_mod = teacher.for_robot(robot, task.context)
    s_mod = student.bake([robot], [task.context])[0]
    t_path, s_path = onnx_dir / f"{stem}.teacher.onnx", onnx_dir / f"{stem}.student.onnx"
    export_controller(t_mod, robot, mjcf, t_path, kind="teacher", source_hash=hashes[0])
    export_controller(s_mod, robot, mjcf, s_path, kind="student", source_hash=hashes[1])
    controllers: dict[tuple[str, str], Controller] = {
        ("teacher", "torch"): TorchController(t_mod, robot, mjcf=mjcf, source_hash=hashes[0]),
        ("teacher", "onnx"): load_controller(t_path, "onnx", threads=1),
        ("student", "torch"): TorchController(s_mod, robot, mjcf=mjcf, source_hash=hashes[1]),
        ("student", "onnx"): load_controller(s_path, "onnx", threads=1),
        ("student", "numpy"): load_controller(s_path, "numpy"),
    }
    student_c = None
    if find_compiler() is not None:  # the c backend, as hd-run --backend c builds it
        c = load_controller(s_path, "c")
        controllers["student", "c"] = c
        student_c = c.library  # type: ignore[attr-defined]
    return Deployed(t_mod, s_mod, t_path, s_path, controllers, student_c)


def floor_us(c: SharedController, obs: np.ndarray, *, blocks: int = 200, calls: int = 50) -> float:
    """The arithmetic floor: the median over ``blocks`` of the mean ``hd_act`` time of
    ``calls`` back-to-back calls timed inside C (no Python, no ctypes), microseconds."""
    c.inside_us(obs, calls=calls)  # warm-up
    with gc_paused():
        return float(np.median([c.inside_us(obs, calls=calls) for _ in range(blocks)]))


def time_backends(
    controllers: dict[tuple[str, str], Controller], obs: np.ndarray, plan: TimingPlan
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Interleaved latency of every controller's ``act`` on one observation.

    Args:
        controllers: ``(model, backend)`` -> controller.
        obs: Flat observation, shape ``(obs_dim,)``.
        plan: Warm-up, rounds and calls per round.

    Returns:
        ``{model: {backend: {"p50", "p99", "mean", "min", "n"}}}`` in microseconds.
    """
    x = np.ascontiguousarray(obs, dtype=np.float32)

    def call(ctl: Controller) -> Callable[[], object]:
        return lambda: ctl.act(x)

    stats = time_interleaved({f"{k}/{b}": call(c) for (k, b), c in controllers.items()}, plan)
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for kind, backend in controllers:
        out.setdefault(kind, {})[backend] = stats[f"{kind}/{backend}"].to_dict()
    return out
