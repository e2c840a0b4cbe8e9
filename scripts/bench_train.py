"""Training throughput: hd-train's samples per second against the physics-only bound.

Measures, in one run on the same robots: bare ``mj_step`` physics on one core (the bound
per core, times the machine's cores), then ``train_teacher`` with the given configuration
for a few iterations; steady-state throughput counts from the second logged iteration on.
Pause other heavy work while it runs (a training run in the background: ``kill -STOP``).

    python scripts/bench_train.py ../shared/unimal/train --robots 16 --iterations 6
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hd_deploy.bench.physics import physics_steps_per_s
from hd_deploy.models import TeacherConfig
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.config import PPOConfig
from hd_deploy.train.ppo import train_teacher


def measure(robots: Sequence[Path], *, iterations: int, ppo: PPOConfig) -> dict:
    """Physics bound and steady-state training throughput of ``ppo`` on ``robots``."""
    if iterations < 2:
        raise ValueError(f"iterations must be >= 2 (the first is not steady), got {iterations}")
    cores = os.cpu_count() or 1
    physics = physics_steps_per_s(robots, steps_per_robot=200)
    ppo = dataclasses.replace(ppo, total_steps=iterations * ppo.batch_size, checkpoint_every=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        train_teacher(robots, Path(tmp) / "run", teacher_config=TeacherConfig.small(), ppo=ppo,
                      show_progress=False)  # fmt: skip
        rows = list(csv.DictReader((Path(tmp) / "run" / "progress.csv").open()))
    steady = rows[1:]
    seconds = float(steady[-1]["wall_s"]) - float(rows[0]["wall_s"])
    samples = int(steady[-1]["env_steps"]) - int(rows[0]["env_steps"])
    train = samples / seconds
    return {
        "robots": len(robots),
        "cores": cores,
        "physics_per_core": round(physics, 1),
        "physics_bound": round(physics * cores, 1),
        "train_samples_per_s": round(train, 1),
        "ratio": round(train / (physics * cores), 4),
        "ppo": {k: v for k, v in ppo.to_dict().items() if k != "total_steps"},
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("robots", type=Path, nargs="+", help="MJCF files or folders")
    parser.add_argument("--robots-max", "--robots", dest="limit", type=int, default=16,
                        help="use the first N robots (sorted)")  # fmt: skip
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--no-overlap", action="store_true", help="collect, then update")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    files = resolve_robots(args.robots)[: args.limit]
    res = measure(files, iterations=args.iterations,
                  ppo=PPOConfig(overlap=not args.no_overlap))  # fmt: skip
    print(
        f"{res['robots']} robots, {res['cores']} cores: physics bound "
        f"{res['physics_bound']:,.0f} steps/s ({res['physics_per_core']:,.0f} per core); "
        f"hd-train {res['train_samples_per_s']:,.0f} samples/s = {res['ratio']:.3f} of the bound"
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
