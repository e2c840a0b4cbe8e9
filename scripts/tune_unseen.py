"""How much ``hd-tune`` gives on robots the models never saw: the shipped student's bake
against the same MLP after PPO on its robot, deterministic return on the same episodes.

    python scripts/tune_unseen.py ../shared/unimal/test --every 4 --steps 400000 \\
        --workers 2 --json training/tune_unseen.json
    python scripts/tune_unseen.py ../shared/unimal/test --every 4 --steps 400000 \\
        --workers 2 --baseline experts --json training/tune_unseen_experts.json

``--baseline experts`` trains each robot's MLP from scratch instead, as ``hd-experts``
does (its own recipe, the same steps), and reports it where the tuned MLP's return would
stand, on the same evaluation episodes: how much the bake's start is worth.

Robots: every ``--every``-th file of the folder in name order (a fixed, spread draw). Each
robot is tuned in its own process on one core (``--workers`` at a time). Prints a table and
writes every robot's record (``TuneResult.record``) with the means to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np


def _tune(args: tuple[str, int, int, str | None, str, dict]) -> dict:
    source, steps, seed, checkpoint, baseline, settings = args
    import torch

    # one thread throughout: a bake's last bits depend on the thread count, and an
    # episode's return on them (the workers are reused, and train_expert sets one thread)
    torch.set_num_threads(1)
    from hd_deploy.envs.task import LocomotionTask
    from hd_deploy.models.checkpoint import load_student
    from hd_deploy.train.config import TuneConfig
    from hd_deploy.train.shipped import shipped
    from hd_deploy.train.tune import deterministic_returns, tune_baked

    task = LocomotionTask(source)
    student = load_student(checkpoint or shipped("student"))
    mlp = student.bake([task.robot], [task.context])[0]
    config = TuneConfig(total_steps=steps, seed=seed, **settings)
    row = {"robot": task.robot.name, "n_limbs": task.robot.n_limbs}
    if baseline == "experts":
        import tempfile
        import time

        from hd_deploy.train.config import ExpertConfig
        from hd_deploy.train.experts import Expert, train_expert

        before = deterministic_returns(mlp, task, seed=seed, episodes=config.eval_episodes)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            record = train_expert(source, tmp, ExpertConfig(total_steps=steps, seed=seed))
            expert = Expert.load(tmp, task.robot.name)
        wall = time.perf_counter() - t0

        def act(obs: np.ndarray) -> np.ndarray:
            return task.robot.scale_ctrl(expert.act(obs))

        after = deterministic_returns(act, task, seed=seed, episodes=config.eval_episodes)
        better = float(np.mean(after)) > float(np.mean(before))
        return {**row, "returns_before": before, "returns_after": after,
                "steps": record["env_steps"], "wall_s": round(wall, 1),
                "return_before": round(float(np.mean(before)), 2),
                "return_after": round(float(np.mean(after)), 2),
                "kept": "expert" if better else "bake", "seed": seed}  # fmt: skip
    result = tune_baked(mlp, task, config)
    return {**row, "returns_before": result.returns_before,
            "returns_after": result.returns_after, **result.record(config)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("robots", type=Path, help="folder of MJCF robots")
    parser.add_argument("--every", type=int, default=4, help="take every N-th robot")
    parser.add_argument("--steps", type=int, default=400_000, help="PPO steps per robot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checkpoint", default=None, help="student (default: shipped)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--lr", type=float, default=None, help="TuneConfig.lr")
    parser.add_argument("--init-std", type=float, default=None, help="TuneConfig.init_std")
    parser.add_argument(
        "--baseline", choices=("tune", "experts"), default="tune",
        help="experts: train each robot's MLP from scratch (hd-experts) instead of tuning",
    )  # fmt: skip
    args = parser.parse_args(argv)
    files = sorted(args.robots.glob("*.xml"))[:: args.every] if args.robots.is_dir() else []
    if not files or args.every < 1 or args.steps < 1 or args.workers < 1:
        parser.error(f"need a folder of .xml robots, --every/--steps/--workers >= 1: {args}")
    settings = {k: v for k, v in (("lr", args.lr), ("init_std", args.init_std)) if v is not None}
    jobs = [(str(f), args.steps, args.seed, args.checkpoint, args.baseline, settings)
            for f in files]  # fmt: skip
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = []
        for row in pool.imap(_tune, jobs):
            rows.append(row)
            print(f"{row['robot']:<34} {row['return_before']:8.1f} -> {row['return_after']:8.1f}"
                  f"  ({row['kept']}, {row['wall_s']:.0f} s)", flush=True)  # fmt: skip
    before = float(np.mean([r["return_before"] for r in rows]))
    after = float(np.mean([max(r["return_before"], r["return_after"]) for r in rows]))
    print(f"mean over {len(rows)} robots: {before:.1f} baked -> {after:.1f} "
          f"(the better of bake and {args.baseline}, as hd-tune keeps)")  # fmt: skip
    if args.json is not None:
        doc = {"robots": rows, "steps": args.steps, "seed": args.seed, "every": args.every,
               "baseline": args.baseline, "settings": settings,
               "source": str(args.robots), "return_before_mean": before,
               "return_exported_mean": after, "command": " ".join(sys.argv)}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
