"""Run a controller on the locomotion task for whole episodes and report how it did."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.errors import ConfigError
from hd_deploy.runtime.controllers import Controller
from hd_deploy.runtime.loop import ControlLoop
from hd_deploy.runtime.metadata import ControllerError

#: Mean forward speed (m/s) under which a controller is taken to stand still: a return (the
#: sum of the torso's forward speed over the control steps) of 100 in a 1000-step episode.
STANDSTILL_SPEED = 0.1
#: Mean return under which a controller is taken to stand still on a robot (a full episode
#: at :data:`STANDSTILL_SPEED`). A student / teacher ratio of two standstills is noise.
STANDSTILL_RETURN = STANDSTILL_SPEED * TaskConfig().episode_steps


@dataclass(frozen=True)
class RunReport:
    """Outcome of :func:`run_episodes`.

    Attributes:
        robot: Robot name.
        returns: Return of each episode.
        lengths: Control steps of each episode.
        latency_us_p50: Median policy-call latency, microseconds.
        latency_us_p99: 99th-percentile policy-call latency, microseconds.
        steps_per_s: Control steps per second of the whole loop (observe, act, physics).
        nonfinite_events: Steps that sent zero control because of a non-finite value.
        unstable_episodes: Episodes that ended because the simulation diverged.
        obs_us_p50: Median time to build the observation, microseconds.
        physics_us_p50: Median time of one control step's physics (``frame_skip`` x
            ``mj_step``), microseconds.
        clipped_ctrl_events: Steps whose controls were clipped into the ctrlrange.
    """

    robot: str
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    latency_us_p50: float
    latency_us_p99: float
    steps_per_s: float
    nonfinite_events: int
    unstable_episodes: int
    obs_us_p50: float = float("nan")
    physics_us_p50: float = float("nan")
    clipped_ctrl_events: int = 0

    @property
    def overhead_ratio(self) -> float:
        """(observation + policy) / physics per control step, from the medians."""
        return (self.obs_us_p50 + self.latency_us_p50) / self.physics_us_p50

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def return_mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def return_std(self) -> float:
        return float(np.std(self.returns))

    @property
    def episode_length_mean(self) -> float:
        return float(np.mean(self.lengths))

    @property
    def mean_speed(self) -> float:
        """Mean forward speed of the torso over every control step, m/s."""
        return float(np.sum(self.returns) / max(1, int(np.sum(self.lengths))))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (and the per-episode values)."""
        return {
            "robot": self.robot,
            "episodes": self.episodes,
            "return_mean": self.return_mean,
            "return_std": self.return_std,
            "episode_length_mean": self.episode_length_mean,
            "latency_us_p50": self.latency_us_p50,
            "latency_us_p99": self.latency_us_p99,
            "steps_per_s": self.steps_per_s,
            "nonfinite_events": self.nonfinite_events,
            "unstable_episodes": self.unstable_episodes,
            "clipped_ctrl_events": self.clipped_ctrl_events,
            "obs_us_p50": self.obs_us_p50,
            "physics_us_p50": self.physics_us_p50,
            "obs_policy_over_physics": self.overhead_ratio,
            "returns": list(self.returns),
            "lengths": list(self.lengths),
        }

    def summary(self) -> str:
        """One line for a terminal."""
        return (
            f"{self.robot}: return {self.return_mean:.1f} +- {self.return_std:.1f} over "
            f"{self.episodes} episode(s), length {self.episode_length_mean:.0f}, policy latency "
            f"p50 {self.latency_us_p50:.1f} us p99 {self.latency_us_p99:.1f} us, "
            f"{self.steps_per_s:.0f} control steps/s (per step: obs {self.obs_us_p50:.1f} us, "
            f"physics {self.physics_us_p50:.1f} us)"
            + (f", {self.nonfinite_events} non-finite steps" if self.nonfinite_events else "")
        )


def scene(controller: Controller | str | Path) -> mujoco.MjModel:
    """A simulation-ready model for a controller: the robot stored in it, the task's floor
    and the controller's timestep (what :class:`ControlLoop` and the policy expect).

    Args:
        controller: A loaded controller or the path of an exported file.

    Raises:
        ControllerError: The controller carries no robot MJCF.
    """
    if isinstance(controller, str | Path):
        from hd_deploy.runtime.controllers import load_controller

        controller = load_controller(controller)
    return task_for(controller).model


def task_for(
    controller: Controller,
    robot: str | Path | LocomotionTask | None = None,
    *,
    config: TaskConfig | None = None,
) -> LocomotionTask:
    """The locomotion task a controller runs in.

    Args:
        controller: The controller (its metadata gives timing and, by default, the robot).
        robot: MJCF path or text, a ready task, or None for the MJCF in the controller.
        config: Task settings; default: the controller's timestep and frame skip.

    Raises:
        ControllerError: ``robot`` is None and the controller carries no MJCF.
    """
    if isinstance(robot, LocomotionTask):
        return robot
    meta = controller.metadata
    if config is None:
        config = TaskConfig(timestep=meta["sim_timestep"], frame_skip=meta["frame_skip"])
    if robot is None:
        if not meta.get("robot_mjcf"):
            raise ControllerError(
                f"controller for '{meta['robot_name']}' carries no robot MJCF; pass the robot"
            )
        return LocomotionTask(meta["robot_mjcf"], config=config, name=meta["robot_name"])
    return LocomotionTask(robot, config=config)


def run_episodes(
    controller: Controller,
    robot: str | Path | LocomotionTask | None = None,
    *,
    episodes: int = 1,
    seed: int = 0,
    config: TaskConfig | None = None,
    allow_mismatch: bool = False,
    on_step: Callable[[LocomotionTask], None] | None = None,
    native: bool | None = None,
    fuse: bool = True,
) -> RunReport:
    """Run whole episodes of flat-terrain locomotion.

    Args:
        controller: Any controller; the loop does not care which backend runs it.
        robot: MJCF path or text, a task, or None for the robot stored in the controller.
        episodes: Number of episodes (each up to ``config.episode_steps`` control steps).
        seed: Seed of the reset noise (episodes reset one after another from it).
        config: Task settings; default: the controller's timestep and frame skip.
        allow_mismatch: See :class:`ControlLoop`.
        on_step: Called after every control step with the task (rendering, viewers); its
            time counts towards ``steps_per_s``.
        native: The C observation (None: when available); see :class:`ControlLoop`.
        fuse: One C call per step where possible; see :class:`ControlLoop`.

    Raises:
        ControllerError: The controller does not fit the robot.
        ConfigError: ``episodes`` < 1.
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    task = task_for(controller, robot, config=config)
    loop = ControlLoop(
        controller, task.model, task.data, allow_mismatch=allow_mismatch, name=task.robot.name,
        native=native, fuse=fuse,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    returns, lengths, unstable, wall = [], [], 0, 0.0
    for _ in range(episodes):
        task.reset(rng)
        loop.reset()
        total, steps = 0.0, 0
        t0 = time.perf_counter()
        while True:
            result = task.step(loop.control())
            loop.record_physics(task.physics_ns)
            total += result.reward
            steps += 1
            if on_step is not None:
                on_step(task)
            if result.terminated or result.truncated:
                break
        wall += time.perf_counter() - t0
        unstable += int(result.unstable)
        returns.append(total)
        lengths.append(steps)
    latency = loop.latency_us()
    stages = loop.stage_us()
    return RunReport(
        robot=task.robot.name,
        returns=tuple(returns),
        lengths=tuple(lengths),
        latency_us_p50=latency["p50"],
        latency_us_p99=latency["p99"],
        steps_per_s=sum(lengths) / wall if wall > 0 else float("inf"),
        nonfinite_events=loop.nonfinite_events,
        unstable_episodes=unstable,
        obs_us_p50=stages["obs"]["p50"],
        physics_us_p50=stages["physics"]["p50"],
        clipped_ctrl_events=loop.clipped_ctrl_events,
    )
