"""The physics-only bound that training and environment throughput are measured against.

Plain ``mujoco.mj_step`` on the same robots, ``frame_skip`` substeps per control step,
uniform random controls, no observation, no policy, no bookkeeping, one core: what a
trainer would reach per core if everything but the simulation were free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.errors import ConfigError


def physics_steps_per_s(
    robots: Sequence[str | Path],
    *,
    steps_per_robot: int = 200,
    config: TaskConfig = TaskConfig(),
    seed: int = 0,
) -> float:
    """Control steps per second of bare physics on one core, over all ``robots``.

    Every robot starts from a noisy reset and takes ``steps_per_robot`` control steps of
    random controls (a robot that falls keeps lying, as it would until a trainer resets it).

    Args:
        robots: MJCF files (or texts).
        steps_per_robot: Control steps timed per robot.
        config: Task settings (timestep, frame skip).
        seed: Seed of resets and controls.

    Raises:
        ConfigError: ``steps_per_robot`` < 1.
    """
    if steps_per_robot < 1:
        raise ConfigError(f"steps_per_robot must be >= 1, got {steps_per_robot}")
    rng = np.random.default_rng(seed)
    elapsed, total = 0.0, 0
    for source in robots:
        task = LocomotionTask(source, config=config)
        task.reset(rng)
        m, d = task.model, task.data
        lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
        ctrl = rng.uniform(lo, hi, size=(steps_per_robot, m.nu))
        t0 = time.perf_counter()
        for u in ctrl:
            d.ctrl[:] = u
            mujoco.mj_step(m, d, nstep=config.frame_skip)
        elapsed += time.perf_counter() - t0
        total += steps_per_robot
    return total / elapsed
