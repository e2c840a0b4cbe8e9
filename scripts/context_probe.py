"""How much a teacher leans on the morphology context: its return with the context perturbed.

For the robots of an ``hd-eval --json`` report that the policy keeps up for whole episodes
(the ``--count`` with the highest return), this runs the teacher with each robot's own
context and with perturbed copies of it, at ``hd-eval``'s reset seeds, the body and its
physics unchanged, and prints each condition's mean return, falls and how far it moved the
context (Euclidean, the distance ``nearest_robots.py`` measures between robots):

- ``limb noise S``: Gaussian noise of standard deviation S on the 13 limb features of every
  limb (position, inertial position, orientation, mass, shape; each scaled to [-1, 1]),
  clipped back to [-1, 1];
- ``joint range class``: one hinge's joint-range class (a one-hot of 13) moved to another;
- ``zero``: no context at all (every feature 0).

A policy that keeps its return under noise as large as the gaps between robots reads the
context as smooth features of a body; one that collapses under small noise tells robots
apart by it, and then robots unlike its training set are lost because of what it reads,
not only because of what their bodies need.

    python scripts/context_probe.py training/teacher_cpu_mb4b/checkpoint \\
        training/eval_teacher_cpu_mb4b_train.json --robots ../shared/unimal/train \\
        [--count 16] [--episodes 1] [--noise 0.03 0.1 0.3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.errors import HdError
from hd_deploy.morphology.features import JOINT_RANGE_CLASSES, LIMB_DIM, SLOT_DIM
from hd_deploy.morphology.robot import JOINT_SLOTS
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.rollout import run_episodes

RANGES = len(JOINT_RANGE_CLASSES)  # a joint slot opens with its range one-hot


def perturbed(
    context: np.ndarray, rng: np.random.Generator, noise: Sequence[float]
) -> list[tuple[str, np.ndarray]]:
    """The context and its perturbed copies, each ``(n_limbs, 53)`` float32, named."""
    out = [("own", context)]
    for s in noise:
        c = context.copy()
        c[:, :LIMB_DIM] += rng.normal(0.0, s, c[:, :LIMB_DIM].shape)
        out.append((f"limb noise {s:g}", np.clip(c, -1.0, 1.0)))
    starts = LIMB_DIM + SLOT_DIM * np.arange(JOINT_SLOTS)
    hinges = [(li, b) for li in range(len(context)) for b in starts
              if context[li, b : b + RANGES].any()]  # fmt: skip
    if hinges:
        li, base = hinges[rng.integers(len(hinges))]
        c = context.copy()
        own = int(np.argmax(c[li, base : base + RANGES]))
        c[li, base : base + RANGES] = 0.0
        c[li, base + (own + 1 + rng.integers(RANGES - 1)) % RANGES] = 1.0
        out.append(("joint range class", c))
    out.append(("zero", np.zeros_like(context)))
    return [(name, c.astype(np.float32)) for name, c in out]


def probe(
    teacher, report: dict, files: list[Path], *, count: int, episodes: int,
    noise: Sequence[float], seed: int,
) -> dict:  # fmt: skip
    """Every condition's mean return, falling episodes and how far it moved the context, on
    the report's best ``count`` robots that never fall (``teacher``: a ``TeacherPolicy``).

    Raises:
        SystemExit: A chosen robot of the report is not among ``files``.
    """
    import torch

    by_name = {f.stem: f for f in files}
    full = TaskConfig().episode_steps
    up = [r for r in report["robots"] if r["episode_length_mean"] >= full]
    chosen = sorted(up, key=lambda r: -r["return_mean"])[:count]
    rows = []
    for i, robot in enumerate(chosen):
        if robot["name"] not in by_name:
            raise SystemExit(f"error: {robot['name']} (in the report) is not among --robots")
        task = LocomotionTask(by_name[robot["name"]], headless=True)
        row = {"name": robot["name"], "n_limbs": task.robot.n_limbs, "conditions": {}}
        for name, c in perturbed(task.context, np.random.default_rng((seed, i)), noise):
            module = teacher.for_robot(task.robot, c).eval()

            def act(obs: np.ndarray, module=module) -> np.ndarray:
                with torch.no_grad():
                    return module(torch.as_tensor(obs[None])).numpy()[0]

            returns, lengths = run_episodes(task, act, episodes, seed)
            row["conditions"][name] = {
                "return": float(np.mean(returns)),
                "falls": sum(n < full for n in lengths),
                "moved": float(np.linalg.norm(c - task.context)),
            }
        rows.append(row)
        print(robot["name"], {k: round(v["return"]) for k, v in row["conditions"].items()},
              flush=True)  # fmt: skip
    names = list(dict.fromkeys(k for r in rows for k in r["conditions"]))
    summary = {}
    for name in names:
        got = [r["conditions"][name] for r in rows if name in r["conditions"]]
        summary[name] = {"robots": len(got),
                         "return_mean": float(np.mean([g["return"] for g in got])),
                         "falls": sum(g["falls"] for g in got),
                         "moved_mean": float(np.mean([g["moved"] for g in got]))}  # fmt: skip
    return {"report": report.get("policy", ""), "episodes": episodes, "seed": seed,
            "noise": list(noise), "summary": summary, "robots": rows}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a teacher checkpoint folder")
    parser.add_argument("report", type=Path, help="an hd-eval --json report of its robots")
    parser.add_argument("--robots", type=Path, action="append", required=True,
                        help="the report's robots (files or folders)")  # fmt: skip
    parser.add_argument("--count", type=int, default=16, help="robots probed (best first)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes per condition")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.count < 1 or args.episodes < 1 or any(s < 0 for s in args.noise):
        sys.exit("error: --count and --episodes must be at least 1, --noise not negative")
    try:
        import torch

        from hd_deploy.models import load_teacher

        torch.set_num_threads(1)
        if not args.report.is_file():
            sys.exit(f"error: {args.report}: no such report")
        report = json.loads(args.report.read_text())
        files = resolve_robots(args.robots)
        teacher = load_teacher(args.checkpoint)
    except (OSError, ValueError, HdError) as exc:
        sys.exit(f"error: {exc}")
    keys = {"name", "episode_length_mean", "return_mean"}
    if not isinstance(report, dict) or not all(
        isinstance(r, dict) and keys <= r.keys() for r in report.get("robots") or [None]
    ):
        sys.exit(f"error: {args.report}: not an hd-eval --json report")
    out = probe(teacher, report, files, count=args.count, episodes=args.episodes,
                noise=args.noise, seed=int(report.get("seed", 0)))  # fmt: skip
    out = {"checkpoint": str(args.checkpoint), **out}
    for name, s in out["summary"].items():
        print(f"{name:20s} mean return {s['return_mean']:7.1f} over {s['robots']} robots, "
              f"{s['falls']} falling episodes; context moved {s['moved_mean']:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
