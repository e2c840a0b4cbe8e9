"""Which robots a policy lets fall, and whether they stand without it.

The task ends an episode early only when the torso falls below its threshold, so an
``hd-eval`` episode shorter than 1000 steps is a fall. For every robot of an ``hd-eval
--json`` report whose mean episode is shorter than ``--below`` steps, this runs the same
number of episodes (same reset seeds) with the motors off (zero action) and prints the
policy's episode length and return beside them. A robot that stands the whole episode with
its motors off but falls under the policy is one the policy throws over (a lunge for
speed); one that collapses either way has to be held up actively.

    python scripts/falls.py training/eval_teacher_cpu_mb4b_train.json \\
        --robots ../shared/unimal/train [--below 1000] [--json falls.json]
    python scripts/falls.py training/eval_teacher_*_test.json   # one line per report
    python scripts/falls.py training/eval_teacher_cpu_mb4b_test.json --by-limbs

``--by-limbs`` adds, per report, the robots grouped by their number of limbs: how many,
their mean return and how many of them fall.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.rollout import run_episodes


def motors_off(path: Path, episodes: int, seed: int) -> tuple[float, float]:
    """Mean episode length and return with zero action, at ``hd-eval``'s reset seeds."""
    task = LocomotionTask(path, config=TaskConfig(), headless=True)
    zero = np.zeros(task.model.nu)
    returns, lengths = run_episodes(task, lambda obs: zero, episodes, seed)
    return float(np.mean(lengths)), float(np.mean(returns))


def falls(report: dict, files: list[Path] | None, *, below: float, seed: int) -> dict:
    """The report's robots that fall before ``below`` steps, each beside motors off
    (``files``: the robots' MJCF files; None: the policy's numbers only).

    Raises:
        SystemExit: A robot of the report is not among ``files``.
    """
    by_name = {f.stem: f for f in files or []}
    rows = []
    for robot in report["robots"]:
        if robot["episode_length_mean"] >= below:
            continue
        row = {"name": robot["name"], "length": robot["episode_length_mean"],
               "return": robot["return_mean"]}  # fmt: skip
        if files is not None:
            if robot["name"] not in by_name:
                raise SystemExit(f"error: {robot['name']} (in the report) is not among --robots")
            episodes = len(robot["returns"])
            length, ret = motors_off(by_name[robot["name"]], episodes, seed)
            row.update(motors_off_length=length, motors_off_return=ret)
        rows.append(row)
    full = TaskConfig().episode_steps
    thrown = [r for r in rows if r.get("motors_off_length", 0) >= full]
    n = len(report["robots"])
    return {
        "report": report.get("policy", ""),
        "robots": n,
        "below": below,
        "falling": len(rows),
        "stand_with_motors_off": len(thrown) if files is not None else None,
        "return_mean": float(np.mean([r["return_mean"] for r in report["robots"]])),
        "falling_return_mean": float(np.mean([r["return"] for r in rows])) if rows else 0.0,
        "rows": sorted(rows, key=lambda r: r["length"]),
    }


def by_limbs(report: dict, *, below: float) -> list[dict]:
    """The report's robots grouped by limb count: robots, mean return, falling."""
    groups: dict[int, list[dict]] = {}
    for robot in report["robots"]:
        groups.setdefault(int(robot["n_limbs"]), []).append(robot)
    return [
        {"limbs": n, "robots": len(rs),
         "return_mean": float(np.mean([r["return_mean"] for r in rs])),
         "falling": sum(r["episode_length_mean"] < below for r in rs)}
        for n, rs in sorted(groups.items())
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+", help="hd-eval --json reports")
    parser.add_argument(
        "--robots", type=Path, action="append",
        help="the reports' robots (files or folders); without: no motors-off episodes, "
        "one summary line per report",
    )  # fmt: skip
    parser.add_argument("--below", type=float, default=1000.0, help="a fall: a mean length below")
    parser.add_argument(
        "--by-limbs", action="store_true", help="also group each report's robots by limb count"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        reports = [json.loads(path.read_text()) for path in args.reports]
        files = resolve_robots(args.robots) if args.robots else None
    except (OSError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    outs = []
    for path, report in zip(args.reports, reports, strict=True):
        out = falls(report, files, below=args.below, seed=int(report.get("seed", 0)))
        if args.by_limbs:
            if any("n_limbs" not in r for r in report["robots"]):
                sys.exit(f"error: {path}: its robots have no n_limbs (not an hd-eval report?)")
            out["by_limbs"] = by_limbs(report, below=args.below)
        outs.append(out)
        if files is not None:
            head = f"{'robot':34s} {'length':>7s} {'return':>8s} | motors off: {'length':>7s}"
            print(f"{head} {'return':>7s}")
            for r in out["rows"]:
                off = f"{r['motors_off_length']:7.0f} {r['motors_off_return']:7.1f}"
                print(f"{r['name']:34s} {r['length']:7.0f} {r['return']:8.1f} | {'':12s}{off}")
        lengths = [r["episode_length_mean"] for r in report["robots"]]
        standing = "" if files is None else (
            f"; {out['stand_with_motors_off']} of them stand the whole episode with the "
            "motors off"
        )  # fmt: skip
        print(
            f"{path}: {out['falling']} of {out['robots']} robots fall before "
            f"{args.below:.0f} steps on average (their mean return "
            f"{out['falling_return_mean']:.1f}; all robots' {out['return_mean']:.1f}, mean "
            f"episode {np.mean(lengths):.0f} steps){standing}"
        )
        for g in out.get("by_limbs", []):
            print(
                f"  {g['limbs']:2d} limbs: {g['robots']:3d} robots, mean return "
                f"{g['return_mean']:7.1f}, {g['falling']} falling"
            )
    if args.json:
        args.json.write_text(json.dumps(outs if len(outs) > 1 else outs[0], indent=2))


if __name__ == "__main__":
    main()
