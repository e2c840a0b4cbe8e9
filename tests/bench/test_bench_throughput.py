"""Control-loop throughput runs each loop for exactly the requested steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from hd_deploy.bench.throughput import steps_per_s
from hd_deploy.envs.task import LocomotionTask


def test_physics_and_controller_loops(robot_sets: list[Path]) -> None:
    task = LocomotionTask(robot_sets[1])
    calls = []

    class Counting:
        def __init__(self) -> None:
            from hd_deploy.runtime import build_metadata

            self.metadata = build_metadata(task.robot, kind="student", mjcf="", source_hash="")

        def reset(self) -> None:
            pass

        def act(self, obs):
            calls.append(obs.shape)
            return task.robot.scale_ctrl(0.0 * obs[: task.robot.n_actuators])

    speed = steps_per_s({"physics": None, "counting": Counting()}, task, steps=7, rounds=3)
    assert set(speed) == {"physics", "counting"}
    assert all(v > 0 for v in speed.values())
    assert calls == [(task.robot.n_limbs * 17,)] * 7
    with pytest.raises(ValueError, match="steps and rounds"):
        steps_per_s({"physics": None}, task, steps=0)
