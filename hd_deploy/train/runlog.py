"""Run bookkeeping shared by the trainers: CSV log, learning-curve plot, progress bar."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hd_deploy.files import atomic_write_text


class CsvLog:
    """Append-only CSV log that survives resumption (header written once).

    Args:
        path: CSV file.
        columns: Column names, in order.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c, "")) for c in self.columns])

    def read(self) -> list[dict]:
        with self.path.open() as f:
            return list(csv.DictReader(f))

    def last(self, column: str) -> float:
        """The last logged value of ``column`` (NaN before the first row)."""
        rows = self.read()
        return float(rows[-1][column]) if rows and rows[-1].get(column) else float("nan")

    def truncate_after(self, column: str, value: float) -> None:
        """Drop rows logged after ``value`` (rows of an interrupted stretch past a checkpoint)."""
        rows = [r for r in self.read() if r[column] != "" and float(r[column]) <= value]
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(self.columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in self.columns])
        atomic_write_text(self.path, out.getvalue())


def plot_curve(
    log: CsvLog, out: Path, *, x: str, ys: Sequence[str | Sequence[str]], title: str
) -> None:
    """Write a PNG of the logged columns ``ys`` against ``x`` (atomic replace).

    Each entry of ``ys`` is one panel: a column, or a tuple of columns drawn together.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = log.read()
    fig, axes = plt.subplots(1, len(ys), figsize=(5 * len(ys), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], ys, strict=True):
        columns = [panel] if isinstance(panel, str) else list(panel)
        for y in columns:
            pts = [(float(r[x]), float(r[y])) for r in rows if r.get(y) not in ("", None, "nan")]
            if pts:
                marker = "o" if len(pts) < 30 else None  # a few points still show
                xs, vs = [p[0] for p in pts], [p[1] for p in pts]
                ax.plot(xs, vs, lw=1.5, marker=marker, label=y.replace("_", " "))
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(" / ".join(c.replace("_", " ") for c in columns))
        if len(columns) > 1 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)


def progress_bar(*, disable: bool = False) -> Progress:
    """A rich progress bar with a free-text status column."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=disable,
    )


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
