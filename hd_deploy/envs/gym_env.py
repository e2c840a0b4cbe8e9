"""Single-robot locomotion with the gymnasium ``Env`` API (padded per-limb observations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.morphology.features import CONTEXT_DIM, PROPRIO_DIM
from hd_deploy.morphology.robot import JOINT_SLOTS


class LocomotionEnv(gym.Env):
    """One robot on flat ground.

    Observations are a dict of padded per-limb arrays: ``proprio`` ``(max_limbs, 17)``,
    ``context`` ``(max_limbs, 53)``, ``limb_mask`` ``(max_limbs,)`` and ``action_mask``
    ``(max_limbs, 2)``. Actions are per-slot values in [-1, 1], ``(max_limbs, 2)``; slots
    without an actuator are ignored. ``info`` carries ``unstable`` and ``torso_x``.

    Args:
        robot: MJCF path or text.
        config: Task settings.
    """

    metadata = {"render_modes": []}

    def __init__(self, robot: str | Path, *, config: TaskConfig = TaskConfig()) -> None:
        self.task = LocomotionTask(robot, config=config)
        L = config.max_limbs
        self._limb_mask = self.task.robot.limb_mask(L)
        self._action_mask = self.task.robot.action_mask(L)
        self._context = np.zeros((L, CONTEXT_DIM), dtype=np.float32)
        self._context[: self.task.robot.n_limbs] = self.task.context
        self.observation_space = spaces.Dict(
            {
                "proprio": spaces.Box(-np.inf, np.inf, (L, PROPRIO_DIM), np.float32),
                "context": spaces.Box(-1.0, 1.0, (L, CONTEXT_DIM), np.float32),
                "limb_mask": spaces.MultiBinary(L),
                "action_mask": spaces.MultiBinary((L, JOINT_SLOTS)),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (L, JOINT_SLOTS), np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        proprio = self.task.reset(self.np_random)
        return self._obs(proprio), {"unstable": False, "torso_x": self.task.torso_x}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape}, got {action.shape}"
            )
        res = self.task.step(self.task.robot.actions_to_ctrl(action))
        proprio = (
            self.task.observe()
            if not res.unstable
            else np.zeros((self.task.robot.n_limbs, PROPRIO_DIM), np.float32)
        )
        info = {"unstable": res.unstable, "torso_x": self.task.torso_x}
        return self._obs(proprio), res.reward, res.terminated, res.truncated, info

    def _obs(self, proprio: np.ndarray) -> dict[str, np.ndarray]:
        padded = np.zeros((self.task.config.max_limbs, PROPRIO_DIM), dtype=np.float32)
        padded[: len(proprio)] = proprio
        return {
            "proprio": padded,
            "context": self._context.copy(),
            "limb_mask": self._limb_mask.astype(np.int8),
            "action_mask": self._action_mask.astype(np.int8),
        }
