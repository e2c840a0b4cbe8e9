"""The checkpoints shipped inside the package (the embedded defaults)."""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"


def shipped(kind: str) -> Path:
    """Folder of the shipped ``teacher`` or ``student`` checkpoint.

    Raises:
        FileNotFoundError: The package ships no such checkpoint.
    """
    path = SHIPPED / kind
    if not (path / "checkpoint.json").exists():
        raise FileNotFoundError(f"no shipped {kind} checkpoint at {path}; pass a checkpoint path")
    return path


def resolve_policy(policy: str) -> tuple[str, Path]:
    """Turn a policy argument into (kind, path): kind is teacher, student or onnx.

    Raises:
        FileNotFoundError: The path does not exist.
        CheckpointError: The path is neither a readable checkpoint folder nor an ONNX file.
    """
    if policy in ("teacher", "student"):
        return policy, shipped(policy)
    path = Path(policy)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint or controller file")
    if path.is_file() and path.suffix == ".onnx":
        return "onnx", path
    from hd_deploy.models.checkpoint import CheckpointError  # torch, for checkpoint folders only

    meta = path / "checkpoint.json"
    if path.is_dir() and meta.exists():
        try:
            kind = json.loads(meta.read_text())["kind"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{meta}: not a readable checkpoint ({exc})") from None
        if kind not in ("teacher", "student"):
            raise CheckpointError(f"{path}: unknown checkpoint kind {kind!r}")
        return kind, path
    if path.is_dir() and (path / "checkpoint" / "checkpoint.json").exists():
        raise CheckpointError(f"{path}: a run folder, not a checkpoint; pass {path / 'checkpoint'}")
    raise CheckpointError(f"{path}: neither a checkpoint folder nor an .onnx controller")


def golden_outputs(teacher: str | Path, student: str | Path, *, seed: int = 0) -> dict:
    """Reference outputs of two checkpoints on the bundled robots (for drift tests).

    For each bundled robot: the observation after a seeded reset, the teacher's controls and
    the baked student's controls for it, plus both checkpoints' hashes.
    """
    import numpy as np
    import torch

    from hd_deploy.envs.task import LocomotionTask
    from hd_deploy.models import load_student, load_teacher
    from hd_deploy.models.checkpoint import checkpoint_hash
    from hd_deploy.morphology.sources import bundled_robots

    t_model, s_model = load_teacher(teacher), load_student(student)
    robots = {}
    for src in bundled_robots():
        task = LocomotionTask(src)
        obs = task.reset(np.random.default_rng(seed)).reshape(-1)
        x = torch.as_tensor(obs[None])
        with torch.no_grad():
            t_ctrl = t_model.for_robot(task.robot, task.context)(x)[0]
            s_ctrl = s_model.bake([task.robot], [task.context])[0](x)[0]
        robots[task.robot.name] = {
            "obs": obs.tolist(),
            "teacher_ctrl": t_ctrl.tolist(),
            "student_ctrl": s_ctrl.tolist(),
        }
    return {
        "seed": seed,
        "teacher_hash": checkpoint_hash(teacher),
        "student_hash": checkpoint_hash(student),
        "robots": robots,
    }
