"""Whether a teacher's falls come from how hard it commands: its return with its torques scaled.

Runs a teacher deterministically on every robot with every control it sends multiplied by
each gain, at ``hd-eval``'s reset seeds, and prints each gain's mean return and how many
robots fall (in more than half their episodes). The controls are the teacher's actions
clipped to [-1, 1] and mapped to each motor's control range; UNIMAL's ranges are symmetric
about 0, so gain 0.7 applies 70% of the torque the teacher asks for, and gain 0 is motors
off. If a smaller gain keeps robots up that fall at gain 1, the
teacher drives them harder than their bodies take; if the return falls with the gain
everywhere, it does not.

    python scripts/gain_probe.py hd_deploy/assets/checkpoints/teacher \\
        --robots ../shared/unimal/test [--gains 1 0.7 0.5] [--episodes 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.errors import HdError
from hd_deploy.models import TeacherPolicy, load_teacher
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.rollout import run_episodes
from hd_deploy.train.runlog import progress_bar


def probe(
    teacher: TeacherPolicy, files: Sequence[Path], *, gains: Sequence[float], episodes: int,
    seed: int = 0, show_progress: bool = False,
) -> dict:  # fmt: skip
    """Each robot's return and episode length at every gain, and each gain's summary."""
    full = TaskConfig().episode_steps
    rows = []
    with progress_bar(disable=not show_progress) as bar:
        job = bar.add_task("robots", total=len(files), status="")
        for file in files:
            task = LocomotionTask(file, headless=True)
            module = teacher.for_robot(task.robot, task.context).eval()
            row: dict = {"name": file.stem, "n_limbs": task.robot.n_limbs, "gains": {}}
            for gain in gains:

                def act(obs: np.ndarray, gain: float = gain, module=module) -> np.ndarray:
                    with torch.no_grad():
                        return gain * module(torch.as_tensor(obs[None])).numpy()[0]

                returns, lengths = run_episodes(task, act, episodes, seed)
                row["gains"][f"{gain:g}"] = {
                    "return": float(np.mean(returns)),
                    "falls": sum(n < full for n in lengths),
                    "length": float(np.mean(lengths)),
                }
            rows.append(row)
            bar.update(job, advance=1, status=file.stem)
    summary = {}
    for gain in gains:
        got = [r["gains"][f"{gain:g}"] for r in rows]
        summary[f"{gain:g}"] = {
            "return_mean": float(np.mean([g["return"] for g in got])),
            "robots_falling": sum(g["falls"] > episodes / 2 for g in got),
        }
    return {"episodes": episodes, "seed": seed, "summary": summary, "robots": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a teacher checkpoint folder")
    parser.add_argument("--robots", type=Path, action="append", required=True,
                        help="MJCF files or folders")  # fmt: skip
    parser.add_argument("--gains", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    parser.add_argument("--episodes", type=int, default=1, help="episodes per robot and gain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.episodes < 1 or any(not np.isfinite(g) or g < 0 for g in args.gains):
        sys.exit("error: --episodes must be >= 1 and every gain a finite number >= 0")
    torch.set_num_threads(1)
    try:
        teacher = load_teacher(args.checkpoint)
        files = resolve_robots(args.robots)
        result = probe(teacher, files, gains=args.gains, episodes=args.episodes,
                       seed=args.seed, show_progress=True)  # fmt: skip
    except (HdError, ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
    result["checkpoint"] = str(args.checkpoint)
    for gain, s in result["summary"].items():
        print(f"gain {gain}: mean return {s['return_mean']:.1f}, "
              f"{s['robots_falling']} of {len(files)} robots falling")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
