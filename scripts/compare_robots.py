"""How each training robot fared between two points of teacher training.

``hd-train`` writes ``robots.csv`` into its run folder at every checkpoint: for each
training robot, its recent episodes (stochastic policy, as trained), their mean length and
return, and its share of the draws. Given two of them (two checkpoints of one run, kept
from git history, or two runs on the same robots), this prints the mean over robots of
each, and the change split by how long the first one's episodes last: robots that fall
early (the ones balanced sampling draws most) and robots that walk.

    python scripts/compare_robots.py OLD/robots.csv NEW/robots.csv [--short 500]
    git show a6e4312:training/teacher_cpu_mb4b/robots.csv > /tmp/old.csv   # an older one
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

COLUMNS = ("episodes", "episode_length", "return")


def read(path: Path) -> dict[str, dict[str, float]]:
    """``robots.csv`` as robot -> its numbers (robots without an episode yet left out)."""
    with Path(path).open() as f:
        rows = list(csv.DictReader(f))
    if not rows or not set(COLUMNS) <= rows[0].keys():
        raise ValueError(f"{path}: not a robots.csv (columns robot, {', '.join(COLUMNS)})")
    return {
        r["robot"]: {c: float(r[c]) for c in COLUMNS}
        for r in rows
        if r["episode_length"] not in ("", "nan")
    }


def compare(old: dict, new: dict, *, short: float) -> list[dict]:
    """One summary per group of the robots in both: all, then short and long by ``old``'s
    episode length. Each: robots, mean return old / new, median change of return and of
    episode length, robots whose return rose / fell."""
    both = sorted(old.keys() & new.keys())
    if not both:
        raise ValueError("the two tables share no robot")
    groups = {
        "all": both,
        f"episodes under {short:g} steps": [r for r in both if old[r]["episode_length"] < short],
        f"episodes of {short:g} steps or more": [
            r for r in both if old[r]["episode_length"] >= short
        ],
    }
    out = []
    for name, robots in groups.items():
        if not robots:
            continue
        d_ret = np.array([new[r]["return"] - old[r]["return"] for r in robots])
        d_len = np.array([new[r]["episode_length"] - old[r]["episode_length"] for r in robots])
        out.append({
            "group": name, "robots": len(robots),
            "return_old": float(np.mean([old[r]["return"] for r in robots])),
            "return_new": float(np.mean([new[r]["return"] for r in robots])),
            "median_return_change": float(np.median(d_ret)),
            "median_length_change": float(np.median(d_len)),
            "rose": int((d_ret > 0).sum()), "fell": int((d_ret < 0).sum()),
        })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="robots.csv of the earlier point")
    ap.add_argument("new", type=Path, help="robots.csv of the later point")
    ap.add_argument("--short", type=float, default=500.0,
                    help="episode length (the old table's) that splits the groups")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        rows = compare(read(args.old), read(args.new), short=args.short)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'robots':<34} {'n':>4} {'return old':>10} {'new':>7} {'median d':>9} "
          f"{'d length':>9} {'rose':>5} {'fell':>5}")  # fmt: skip
    for r in rows:
        print(f"{r['group']:<34} {r['robots']:>4} {r['return_old']:>10.1f} "
              f"{r['return_new']:>7.1f} {r['median_return_change']:>+9.1f} "
              f"{r['median_length_change']:>+9.1f} {r['rose']:>5} {r['fell']:>5}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
