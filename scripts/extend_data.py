"""Seed a new distillation run with a finished run's data plus teacher data for more robots.

``hd-distill`` reuses the ``data.npz`` it finds in a new run folder when the robot count
matches. This script writes that file for "the old run's robots, then the new ones": it
copies the old run's samples (its DAgger rounds included) and collects the teacher's labels
on the new robots only, with the old run's sampling settings. The robot list to give
``hd-distill`` (in this order) is written beside it, ``robots.txt``, and what the
collection took (robots, samples, wall time; the model card cites it), ``extended.json``:

    python scripts/extend_data.py training/student_gpu training/generated \\
        --out training/student_gpu2
    hd-distill $(cat training/student_gpu2/robots.txt) --teacher ... --init ... \\
        --out training/student_gpu2 ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hd_deploy.files import atomic_write_text
from hd_deploy.models import load_teacher
from hd_deploy.models.checkpoint import CheckpointError
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.config import DistillConfig
from hd_deploy.train.rollout import DistillData, collect


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="finished hd-distill run (run.json, data.npz)")
    parser.add_argument("robots", type=Path, nargs="+", help="robot files or folders to add")
    parser.add_argument("--out", type=Path, required=True, help="the new run folder")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    if (args.out / "run.json").exists() or (args.out / "data.npz").exists():
        sys.exit(f"{args.out}: already holds a run or its data")
    try:
        meta = json.loads((args.run / "run.json").read_text())
        old = DistillData.load(args.run / "data.npz")
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"{args.run}: not a finished distillation run ({exc})")
    old_robots = [str(r) for r in meta["robots"]]
    if old.n_robots != len(old_robots):
        sys.exit(f"{args.run}: data of {old.n_robots} robots, run.json lists {len(old_robots)}")
    new_robots = [str(r) for r in resolve_robots(args.robots) if str(r) not in old_robots]
    if not new_robots:
        sys.exit("every robot given is already in the run")
    try:
        load_teacher(meta["teacher"])  # fail here, not in a worker after minutes of rollouts
    except CheckpointError as exc:
        sys.exit(f"{args.run}: its teacher does not load ({exc})")
    config = DistillConfig.from_dict({**meta["distill"], "n_workers": args.workers})
    t0 = time.time()
    new = collect(meta["teacher"], new_robots, config=config, seed_offset=len(old_robots))
    record = {"run": str(args.run), "robots_added": len(new_robots),
              "samples_added": new.n_samples, "wall_s": round(time.time() - t0, 1),
              "workers": args.workers}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    # data.npz last (each file atomic): its presence marks a finished seed, and an interrupted
    # write leaves a folder this script fills again
    atomic_write_text(args.out / "robots.txt", "\n".join(old_robots + new_robots) + "\n")
    atomic_write_text(args.out / "extended.json", json.dumps(record, indent=2) + "\n")
    old.concat(new).save(args.out / "data.npz")
    print(f"{args.out}/data.npz: {len(old_robots)} + {len(new_robots)} robots, "
          f"{old.n_samples} + {new.n_samples} samples")  # fmt: skip


if __name__ == "__main__":
    main()
