"""Training return against wall-clock time for several PPO runs (learning per hour).

    python scripts/plot_wall_clock.py training/teacher training/teacher_ppo \
        --out docs/teacher_return_vs_wall_time.png

Each run folder's ``progress.csv`` gives ``return_recent`` (mean of the last 100 training
episodes) against ``wall_s``; a run that logged ``eval_return`` (zero-shot return on its
eval robots) gets those points too. Prints each run's return at the given hours.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path


def read(run: Path) -> list[dict]:
    with (run / "progress.csv").open() as f:
        return list(csv.DictReader(f))


def at_hour(rows: list[dict], hours: float, column: str = "return_recent") -> float | None:
    """The last logged ``column`` at or before ``hours`` of wall time (None if later)."""
    seen = [float(r[column]) for r in rows if r.get(column) and float(r["wall_s"]) <= 3600 * hours]
    return seen[-1] if seen else None


def plot(runs: Sequence[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        rows = read(run)
        hours = [float(r["wall_s"]) / 3600 for r in rows]
        ax.plot(hours, [float(r["return_recent"]) for r in rows], lw=1.4,
                label=f"{run.name}: training return")  # fmt: skip
        ev = [(float(r["wall_s"]) / 3600, float(r["eval_return"])) for r in rows
              if r.get("eval_return")]  # fmt: skip
        if ev:
            ax.plot(*zip(*ev, strict=True), "o--", ms=4, label=f"{run.name}: zero-shot eval")
    ax.set_xlabel("wall-clock hours")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders with progress.csv")
    parser.add_argument("--out", type=Path, default=Path("docs/teacher_return_vs_wall_time.png"))
    parser.add_argument("--hours", type=float, nargs="+", default=[0.5, 1.0])
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "progress.csv").is_file():
            parser.error(f"{run}: no progress.csv")
    plot(args.runs, args.out)
    for run in args.runs:
        rows = read(run)
        cells = [f"{h:g} h: {at_hour(rows, h)}" for h in args.hours]
        print(f"{run}: return_recent at " + ", ".join(cells))
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
