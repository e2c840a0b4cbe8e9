"""Training return against wall-clock time (learning per hour) or environment steps
(learning per sample) for several PPO runs. The runs of the plots below other than
teacher_gpu are in git history (``git checkout 795522d -- training/teacher`` and so on).

    python scripts/plot_wall_clock.py training/teacher training/teacher_ppo \
        --out docs/teacher_return_vs_wall_time.png
    python scripts/plot_wall_clock.py training/teacher_ppo_decoupled training/teacher_gpu \
        --x steps --at 1 5 --out docs/teacher_return_vs_steps.png
    python scripts/plot_wall_clock.py training/teacher_gpu training/teacher_cpu --chain \
        --x steps --out docs/teacher_lineage.png
    python scripts/plot_wall_clock.py training/teacher_gpu training/teacher_cpu_mb4b \
        training/teacher_cmp_b82k training/teacher_cmp_sync training/teacher_cmp_mutate2 \
        training/teacher_cmp_nokl training/teacher_cmp_mutate3 training/teacher_cmp_ctxnoise \
        training/teacher_cmp_advrobot training/teacher_cmp_nopos \
        --parent training/teacher_cmp_nopos=training/teacher_cpu_mb4b \
        --from-init --x steps --out docs/teacher_branches.png

Each run folder's ``progress.csv`` gives the training return (``return_robots``, the mean
over robots, or ``return_recent``, of the last 100 episodes, where a run did not log that)
against ``wall_s`` or ``env_steps``; a run that logged ``eval_return`` (zero-shot
return on its eval robots) gets those points too. Prints each run's return at the given
hours (or millions of steps). ``--chain`` plots runs that continue one another (``hd-train
--init`` from the run before) end to end: each starts where the one before it ended.
``--from-init`` places each run where the checkpoint it started from was written (its
``run.json`` records the ``--init`` checkpoint's steps and wall time), so branches of a run
start on it where they left it: counted from where that checkpoint's run starts when it is
listed before them, else from 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from hd_deploy.train.sampling import training_return


def read(run: Path) -> list[dict]:
    with (run / "progress.csv").open() as f:
        return list(csv.DictReader(f))


#: x axis: progress.csv column, its unit per plotted unit, axis label
AXES = {
    "hours": ("wall_s", 3600.0, "wall-clock hours"),
    "steps": ("env_steps", 1e6, "environment steps (millions)"),
}


def value_at(
    rows: list[dict], hours: float, column: str | None = None, x: str = "hours",
    offset: float = 0.0,
) -> float | None:  # fmt: skip
    """The last logged ``column`` (None: the training return, ``training_return``) at or
    before ``hours`` of wall time (or millions of steps with ``x="steps"``), the run's own x
    shifted by ``offset`` (in the column's units); None if the run starts later."""
    xcol, unit, _ = AXES[x]

    def value(row: dict) -> float:
        return training_return(row) if column is None else float(row.get(column) or "nan")

    seen = [value(r) for r in rows if offset + float(r[xcol]) <= unit * hours]
    seen = [v for v in seen if math.isfinite(v)]
    return seen[-1] if seen else None


def offsets(runs: Sequence[Path], x: str, chain: bool) -> list[float]:
    """Where each run starts on the x axis (in its column's units): 0, or with ``chain``
    the end of the run before it."""
    xcol = AXES[x][0]
    starts, end = [], 0.0
    for run in runs:
        starts.append(end if chain else 0.0)
        rows = read(run)
        end = starts[-1] + (float(rows[-1][xcol]) if rows else 0.0)
    return starts


def init_offsets(
    runs: Sequence[Path], x: str, parents: dict[Path, Path] | None = None
) -> list[float]:
    """Where each run starts with ``--from-init`` (in its column's units): where the
    ``--init`` checkpoint in its ``run.json`` was written, plus the start of that
    checkpoint's run if listed before it; 0 for a run from scratch. ``parents`` names the
    run a checkpoint came from where its path does not (a copy made elsewhere, e.g. by
    ``scripts/drop_pos_embedding.py``): run folder -> the run its ``--init`` was made from."""
    xcol = AXES[x][0]
    given = {run.resolve(): parent.resolve() for run, parent in (parents or {}).items()}
    starts: dict[Path | None, float] = {}
    for run in runs:
        meta = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        extra = (meta.get("init_checkpoint") or {}).get("extra") or {}
        parent = Path(meta["init"]).resolve().parent if meta.get("init") else None
        parent = given.get(run.resolve(), parent)
        starts[run.resolve()] = starts.get(parent, 0.0) + float(extra.get(xcol, 0.0))
    return [starts[run.resolve()] for run in runs]


def plot(
    runs: Sequence[Path],
    out: Path,
    x: str = "hours",
    starts: Sequence[float] | None = None,
    placed: str = "runs end to end",
) -> None:
    """Plot the runs' returns; ``starts`` shifts each run along x (``offsets``), and
    ``placed`` says how on the axis label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xcol, unit, label = AXES[x]
    fig, ax = plt.subplots(figsize=(7 + 0.3 * max(0, len(runs) - 2), 4))
    for i, (run, start) in enumerate(zip(runs, starts or [0.0] * len(runs), strict=True)):
        rows, color = read(run), f"C{i % 10}"  # a run's two lines share its colour
        xs = [(start + float(r[xcol])) / unit for r in rows]
        ax.plot(xs, [training_return(r) for r in rows], lw=1.4, color=color,
                label=f"{run.name}: training return")  # fmt: skip
        ev = [((start + float(r[xcol])) / unit, float(r["eval_return"])) for r in rows
              if r.get("eval_return")]  # fmt: skip
        if ev:
            ax.plot(*zip(*ev, strict=True), "o--", ms=4, color=color, alpha=0.8,
                    label=f"{run.name}: zero-shot eval")  # fmt: skip
    ax.set_xlabel(label + (f", {placed}" if placed and any(starts or []) else ""))
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    if len(runs) > 2:  # beside the plot, not over the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders with progress.csv")
    parser.add_argument("--out", type=Path, default=Path("docs/teacher_return_vs_wall_time.png"))
    parser.add_argument("--x", choices=sorted(AXES), default="hours", help="x axis")
    parser.add_argument("--at", "--hours", dest="at", type=float, nargs="+", default=[0.5, 1.0],
                        help="report the return at these hours (millions of steps)")  # fmt: skip
    parser.add_argument(
        "--chain",
        action="store_true",
        help="each run continues the one before: plot them end to end",
    )
    parser.add_argument(
        "--from-init",
        action="store_true",
        help="each run starts where its --init checkpoint was written (list parents first)",
    )
    parser.add_argument(
        "--parent",
        action="append",
        default=[],
        metavar="RUN=PARENT",
        help="with --from-init: RUN's --init checkpoint was made from PARENT's run (where "
        "run.json names a copy elsewhere)",
    )
    args = parser.parse_args(argv)
    parents = {}
    for pair in args.parent:
        run, sep, parent = pair.partition("=")
        if not sep or not run or not parent:
            parser.error(f"--parent takes RUN=PARENT, got {pair!r}")
        parents[Path(run)] = Path(parent)
    if args.chain and args.from_init:
        parser.error("--chain and --from-init place the runs in two different ways: pick one")
    for run in args.runs:
        if not (run / "progress.csv").is_file():
            parser.error(f"{run}: no progress.csv")
    if args.from_init:
        starts = init_offsets(args.runs, args.x, parents)
        placed = "runs from their --init checkpoint"
    else:
        starts, placed = offsets(args.runs, args.x, args.chain), "runs end to end"
    plot(args.runs, args.out, args.x, starts, placed)
    unit = "h" if args.x == "hours" else "M steps"
    for run, start in zip(args.runs, starts, strict=True):
        rows = read(run)
        cells = [
            f"{h:g} {unit}: {value_at(rows, h, x=args.x, offset=start)} (zero-shot "
            f"{value_at(rows, h, 'eval_return', x=args.x, offset=start)})"
            for h in args.at
        ]
        print(f"{run}: training return at " + ", ".join(cells))
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
