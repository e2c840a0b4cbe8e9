"""``TorchController``: a torch export wrapper behind the runtime's controller interface.

Evaluation and benchmarks run the torch modules (``BakedMLP``, ``TeacherExport``) through
the same ``reset()`` / ``act(obs)`` interface and control loop as the exported files.
"""

from __future__ import annotations

import numpy as np
import torch

from hd_deploy.envs.task import TaskConfig
from hd_deploy.models.baked import BakedMLP
from hd_deploy.models.teacher import TeacherExport
from hd_deploy.morphology.robot import Robot
from hd_deploy.runtime.metadata import build_metadata


def policy_kind(module: BakedMLP | TeacherExport) -> str:
    """``"student"`` for a baked MLP, ``"teacher"`` for a teacher export wrapper.

    Raises:
        TypeError: Any other module.
    """
    if isinstance(module, BakedMLP):
        return "student"
    if isinstance(module, TeacherExport):
        return "teacher"
    raise TypeError(
        f"expected a BakedMLP or a TeacherExport, got {type(module).__name__}; export "
        "wrappers come from HyperNetPolicy.bake or TeacherPolicy.for_robot"
    )


class TorchController:
    """Run a per-robot torch module one observation at a time (no gradients).

    Args:
        module: A ``BakedMLP`` or ``TeacherExport`` for ``robot``.
        robot: The robot it drives.
        mjcf: The robot's MJCF text, kept in :attr:`metadata` (optional).
        source_hash: Hash of the checkpoint the module came from (optional).
        config: Task timing the policy was trained under.

    Raises:
        TypeError: ``module`` is not an export wrapper.
        ValueError: The module was made for another robot.
    """

    def __init__(
        self,
        module: BakedMLP | TeacherExport,
        robot: Robot,
        *,
        mjcf: str = "",
        source_hash: str = "",
        config: TaskConfig = TaskConfig(),
    ) -> None:
        kind = policy_kind(module)
        if module.fingerprint != robot.fingerprint:
            raise ValueError(
                f"module for '{module.robot_name}' (fingerprint {module.fingerprint}) does not "
                f"fit robot '{robot.name}' (fingerprint {robot.fingerprint})"
            )
        self.module = module.eval()
        self.metadata = build_metadata(
            robot, kind=kind, mjcf=mjcf, source_hash=source_hash, config=config
        )
        self.obs_dim = int(self.metadata["obs_dim"])
        self.n_actuators = robot.n_actuators
        self._obs = torch.zeros(1, self.obs_dim)

    def reset(self) -> None:
        """Stateless policies: nothing to forget."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Controls for one observation ``(obs_dim,)`` -> ``(n_actuators,)`` float32."""
        if np.shape(obs) != (self.obs_dim,):
            raise ValueError(
                f"{self.metadata['robot_name']}: observation must have shape "
                f"({self.obs_dim},), got {np.shape(obs)}"
            )
        with torch.inference_mode():
            self._obs[0] = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            return self.module(self._obs)[0].numpy().copy()
