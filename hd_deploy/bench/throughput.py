"""Control-loop throughput: control steps per second with the physics included.

The loops being compared run side by side: in rounds, each loop takes a block of steps in
turn (the order rotating), so background load is shared among them as in the latency
measurement. Every loop has its own simulation state and keeps it between blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.errors import ConfigError
from hd_deploy.runtime import Controller, ControlLoop, ObservationBuilder

DEFAULT_STEPS = 1000
DEFAULT_ROUNDS = 5


@dataclass
class _Loop:
    """``run(n)``: n control steps, resetting a robot that falls or diverges."""

    run: Callable[[int], None]
    loop: ControlLoop | None = None


def _runner(controller: Controller | None, task: LocomotionTask, rng: np.random.Generator) -> _Loop:
    """With a controller: the runtime loop (observe, act, ``frame_skip`` physics steps).
    Without: the same with zero controls and no policy call (observation still built)."""
    task.reset(rng)
    if controller is None:
        observe = ObservationBuilder(task.robot, task.model, task.data)
        zero = np.zeros(task.model.nu)

        def physics(n: int) -> None:
            for _ in range(n):
                observe()
                result = task.step(zero)
                if result.terminated or result.truncated:
                    task.reset(rng)

        return _Loop(physics)

    loop = ControlLoop(controller, task.model, task.data, name=task.robot.name)
    loop.reset()

    def control(n: int) -> None:
        for _ in range(n):
            result = task.step(loop.control())
            loop.record_physics(task.physics_ns)
            if result.terminated or result.truncated:
                task.reset(rng)
                loop.reset()

    return _Loop(control, loop)


@dataclass(frozen=True)
class LoopTiming:
    """One loop's speed, and per control step the p50 of each stage (microseconds; NaN
    for the physics-only loop, which has no policy).

    Attributes:
        steps_per_s: Control steps per second, everything included.
        obs_us_p50: Building the observation (state checks included).
        policy_us_p50: The controller's ``act``.
        physics_us_p50: ``frame_skip`` MuJoCo steps.
    """

    steps_per_s: float
    obs_us_p50: float = float("nan")
    policy_us_p50: float = float("nan")
    physics_us_p50: float = float("nan")

    @property
    def obs_policy_over_physics(self) -> float:
        """(observation + policy) / physics: what the controller adds to the simulation."""
        return (self.obs_us_p50 + self.policy_us_p50) / self.physics_us_p50


def control_loops(
    controllers: Mapping[str, Controller | None],
    task: LocomotionTask,
    *,
    steps: int = DEFAULT_STEPS,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> dict[str, LoopTiming]:
    """Speed and per-stage timing of each loop, measured side by side.

    Args:
        controllers: Name -> controller, or None for physics alone (zero controls).
        task: The robot's task; each loop runs on its own fork of it.
        steps: Control steps timed per loop (resets of fallen robots included).
        rounds: Blocks per loop; the order of the loops rotates every round.
        seed: Seed of the reset noise (the same for every loop).

    Raises:
        ConfigError: ``steps`` or ``rounds`` < 1.
    """
    if steps < 1 or rounds < 1:
        raise ConfigError(f"steps and rounds must be >= 1, got {steps} and {rounds}")
    names = list(controllers)
    runners = {
        name: _runner(controllers[name], task.fork(), np.random.default_rng(seed)) for name in names
    }
    rounds = min(rounds, steps)
    blocks = [steps // rounds + (r < steps % rounds) for r in range(rounds)]
    elapsed = dict.fromkeys(names, 0.0)
    for r, n in enumerate(blocks):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            runners[name].run(n)
            elapsed[name] += time.perf_counter() - t0
    out = {}
    for name in names:
        loop = runners[name].loop
        if loop is None:
            out[name] = LoopTiming(steps / elapsed[name])
            continue
        stages = loop.stage_us()
        out[name] = LoopTiming(
            steps / elapsed[name],
            obs_us_p50=stages["obs"]["p50"],
            policy_us_p50=stages["policy"]["p50"],
            physics_us_p50=stages["physics"]["p50"],
        )
    return out


def steps_per_s(
    controllers: Mapping[str, Controller | None],
    task: LocomotionTask,
    *,
    steps: int = DEFAULT_STEPS,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> dict[str, float]:
    """Control steps per second of each loop, measured side by side (see
    :func:`control_loops`, which also times each stage)."""
    loops = control_loops(controllers, task, steps=steps, rounds=rounds, seed=seed)
    return {name: timing.steps_per_s for name, timing in loops.items()}
