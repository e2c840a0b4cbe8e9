"""Open-loop imitation error of a student on teacher-driven states, per robot and per set.

The teacher drives (deterministic action mean) for ``--samples`` steps on each robot; the
student (hypernetwork, the same forward pass as training) predicts the teacher's action in
every visited state. Reported per robot: the training loss (0.5 x squared error over real
actuators) and that loss relative to predicting zero (``err / (0.5 x teacher mean square)``:
0 is a perfect copy, 1 is no better than standing still); and both again on the actions the
robot executes (``executed``: student and teacher clipped to [-1, 1], as the controls are).
Per set, also the share of the teacher's commands beyond [-1, 1]. A large gap between the training
robots and unseen ones says the student's context -> weights mapping does not generalise,
whatever happens in closed loop.

    python scripts/imitation_gap.py training/student_gpu3/checkpoint \\
        --teacher training/teacher_gpu/checkpoint \\
        --robots ../shared/unimal/train --robots ../shared/unimal/test --json gap.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hd_deploy.models import load_student
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.config import DistillConfig
from hd_deploy.train.distill import imitation_errors
from hd_deploy.train.rollout import collect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("student", type=Path)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--robots", type=Path, action="append", required=True)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    student = load_student(args.student).eval()
    config = DistillConfig(samples_per_robot=args.samples, n_workers=args.workers,
                           seed=args.seed)  # fmt: skip
    report: dict = {"student": str(args.student), "teacher": str(args.teacher),
                    "samples": args.samples, "seed": args.seed, "sets": []}  # fmt: skip
    for folder in args.robots:
        files = resolve_robots([folder])
        data = collect(args.teacher, files, config=config, show_progress=False)
        errs = imitation_errors(student, data)
        rows = [{"name": f.stem, **e._asdict()} for f, e in zip(files, errs, strict=True)]
        summary = {
            "set": str(folder),
            "n_robots": len(rows),
            "loss_mean": float(np.mean([r["loss"] for r in rows])),
            "relative_median": float(np.median([r["relative"] for r in rows])),
            "executed_loss_mean": float(np.mean([r["executed"] for r in rows])),
            "executed_relative_median": float(np.median([r["executed_relative"] for r in rows])),
            # the share of the teacher's commands beyond [-1, 1]: the motor runs them at +-1
            "teacher_saturated": data.saturated,
            "robots": rows,
        }
        report["sets"].append(summary)
        print(f"{folder}: {len(rows)} robots, loss mean {summary['loss_mean']:.4f}, "
              f"relative to zero action: median {summary['relative_median']:.3f}; "
              f"on the executed (clipped) actions: loss mean "
              f"{summary['executed_loss_mean']:.4f}, relative median "
              f"{summary['executed_relative_median']:.3f}; teacher commands beyond +-1: "
              f"{summary['teacher_saturated']:.0%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
