"""Control-loop throughput: control steps per second with the physics included.

The loops being compared run side by side: in rounds, each loop takes a block of steps in
turn (the order rotating), so background load is shared among them as in the latency
measurement. Every loop has its own simulation state and keeps it between blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.runtime import Controller, ControlLoop, ObservationBuilder

DEFAULT_STEPS = 1000
DEFAULT_ROUNDS = 5


def _runner(
    controller: Controller | None, task: LocomotionTask, rng: np.random.Generator
) -> Callable[[int], None]:
    """``run(n)``: n control steps, resetting a robot that falls or diverges.

    With a controller: the runtime loop (observe, act, ``frame_skip`` physics steps).
    Without: the same with zero controls and no policy call (observation still built).
    """
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

        return physics

    loop = ControlLoop(controller, task.model, task.data, name=task.robot.name)
    loop.reset()

    def control(n: int) -> None:
        for _ in range(n):
            result = task.step(loop.control())
            if result.terminated or result.truncated:
                task.reset(rng)
                loop.reset()

    return control


def steps_per_s(
    controllers: Mapping[str, Controller | None],
    task: LocomotionTask,
    *,
    steps: int = DEFAULT_STEPS,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> dict[str, float]:
    """Control steps per second of each loop, measured side by side.

    Args:
        controllers: Name -> controller, or None for physics alone (zero controls).
        task: The robot's task; each loop runs on its own fork of it.
        steps: Control steps timed per loop (resets of fallen robots included).
        rounds: Blocks per loop; the order of the loops rotates every round.
        seed: Seed of the reset noise (the same for every loop).

    Returns:
        Name -> control steps per second.
    """
    if steps < 1 or rounds < 1:
        raise ValueError(f"steps and rounds must be >= 1, got {steps} and {rounds}")
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
            runners[name](n)
            elapsed[name] += time.perf_counter() - t0
    return {name: steps / elapsed[name] for name in names}
