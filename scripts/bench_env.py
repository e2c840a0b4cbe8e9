"""Environment throughput: env steps per second of VecLocomotionEnv, random actions,
against the physics-only bound of the same robots measured in the same run.

Runs the bundled robots (and the UNIMAL training robots when ``../shared/unimal/train``
exists) with 0 workers (everything in this process) and with 2 worker processes. The
bound is bare ``mj_step`` on the same robots on one core, times the cores the
configuration can use (``min(workers, cores)``, 1 for 0 workers); the last column is the
environment's share of it. Start-up and the first reset are not timed.

    python scripts/bench_env.py --steps 300 --envs 32
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hd_deploy.bench.physics import physics_steps_per_s
from hd_deploy.envs.task import TaskConfig
from hd_deploy.envs.vec_env import VecLocomotionEnv
from hd_deploy.morphology.robot import JOINT_SLOTS
from hd_deploy.morphology.sources import bundled_robots

UNIMAL_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "unimal" / "train"


@dataclass(frozen=True)
class Throughput:
    """One measurement."""

    robot_set: str
    n_robots: int
    workers: int
    n_envs: int
    steps: int
    seconds: float
    episodes: int
    physics_per_core: float = float("nan")  # bare mj_step, same robots, one core

    @property
    def env_steps_per_s(self) -> float:
        return self.steps * self.n_envs / self.seconds

    @property
    def cores(self) -> int:
        return max(1, min(self.workers, os.cpu_count() or 1))

    @property
    def bound(self) -> float:
        return self.physics_per_core * self.cores

    @property
    def ratio(self) -> float:
        return self.env_steps_per_s / self.bound


def measure(
    robots: Sequence[Path], *, label: str, workers: int, n_envs: int, steps: int, seed: int = 0
) -> Throughput:
    """Time ``steps`` vectorised steps of ``n_envs`` slots with uniform random actions.

    Args:
        robots: MJCF files; every slot samples among them at each reset.
        label: Name of the robot set (for the table).
        workers: Worker processes (0: in this process).
        n_envs: Environment slots.
        steps: Vectorised steps timed (each steps every slot once).
        seed: Seed of the environments and the actions.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    config = TaskConfig()
    rng = np.random.default_rng(seed)
    shape = (n_envs, config.max_limbs, JOINT_SLOTS)
    actions = rng.uniform(-1.0, 1.0, size=(steps, *shape))
    episodes = 0
    with VecLocomotionEnv(robots, n_envs=n_envs, n_workers=workers, config=config,
                          seed=seed) as env:  # fmt: skip
        env.reset()
        t0 = time.perf_counter()
        for a in actions:
            episodes += len(env.step(a).episodes)
        seconds = time.perf_counter() - t0
    return Throughput(label, len(robots), workers, n_envs, steps, seconds, episodes)


def robot_sets(unimal: Path | None) -> list[tuple[str, list[Path]]]:
    """The bundled robots, plus the UNIMAL training robots when the folder has any."""
    sets = [("bundled", bundled_robots())]
    if unimal is not None and unimal.is_dir():
        files = sorted(unimal.glob("*.xml"))
        if files:
            sets.append((f"unimal/{unimal.name}", files))
    return sets


def print_table(rows: Sequence[Throughput]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="VecLocomotionEnv throughput (random actions)", title_justify="left")
    for col in ("robot set", "robots", "workers", "envs", "steps", "episodes ended",
                "seconds", "env steps/s", "physics bound/s", "share of bound"):  # fmt: skip
        table.add_column(col, justify="left" if col == "robot set" else "right")
    for r in rows:
        table.add_row(r.robot_set, str(r.n_robots), str(r.workers), str(r.n_envs),
                      str(r.steps), str(r.episodes), f"{r.seconds:.2f}",
                      f"{r.env_steps_per_s:,.0f}", f"{r.bound:,.0f} ({r.cores} core)",
                      f"{r.ratio:.2f}")  # fmt: skip
    Console().print(table)


def main(argv: Sequence[str] | None = None) -> list[Throughput]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="vectorised steps timed per run")
    parser.add_argument("--envs", type=int, default=8, help="environment slots")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="worker counts to compare")  # fmt: skip
    parser.add_argument("--unimal", type=Path, default=UNIMAL_TRAIN,
                        help="UNIMAL robot folder (skipped when absent)")  # fmt: skip
    parser.add_argument("--physics-steps", type=int, default=200,
                        help="control steps per robot timed for the physics bound")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.envs < 1 or min(args.workers) < 0:
        parser.error("--steps and --envs must be >= 1 and --workers >= 0")
    rows = []
    for label, files in robot_sets(args.unimal):
        physics = physics_steps_per_s(files, steps_per_robot=args.physics_steps, seed=args.seed)
        for w in args.workers:
            r = measure(files, label=label, workers=w, n_envs=args.envs, steps=args.steps,
                        seed=args.seed)  # fmt: skip
            rows.append(dataclasses.replace(r, physics_per_core=physics))
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
