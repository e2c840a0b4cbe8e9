"""Every robot we know of loads, steps 200 control steps with random actions, stays finite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.morphology import CONTEXT_DIM, PROPRIO_DIM
from hd_deploy.morphology.generator import generate_robot
from tests.conftest import gym_robots, unimal_robots

STEPS = 200


def _roll(source: str | Path, seed: int) -> None:
    task = LocomotionTask(source)
    rng = np.random.default_rng(seed)
    obs = task.reset(rng)
    assert obs.shape == (task.robot.n_limbs, PROPRIO_DIM)
    assert task.context.shape == (task.robot.n_limbs, CONTEXT_DIM)
    assert np.all(np.abs(task.context) <= 1.0)
    for _ in range(STEPS):
        ctrl = task.robot.scale_ctrl(rng.uniform(-1, 1, task.robot.n_actuators))
        res = task.step(ctrl)
        assert not res.unstable, f"{task.robot.name} became unstable"
        obs = task.observe()
        assert np.all(np.isfinite(obs)), f"{task.robot.name}: non-finite observation"
        if res.terminated or res.truncated:
            obs = task.reset(rng)


@pytest.mark.parametrize("split", ["train", "test"])
def test_unimal_robots_step(split: str) -> None:
    files = unimal_robots(split)
    assert files, f"no UNIMAL {split} robots found"
    for i, path in enumerate(files):
        _roll(path, i)


@pytest.mark.parametrize("path", gym_robots(), ids=lambda p: p.stem)
def test_gym_robots_step(path: Path) -> None:
    _roll(path, 0)


def test_generated_robots_step() -> None:
    for seed in range(40):
        _roll(generate_robot(seed), seed)


@pytest.mark.slow
def test_500_generated_robots_step() -> None:
    for seed in range(500):
        _roll(generate_robot(seed), seed)
