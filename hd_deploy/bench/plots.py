"""PNG plots of a benchmark report: return against MACs, and latency per backend."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: (model, backend, label, colour) of every latency bar, in plotting order.
LATENCY_BARS = (
    ("teacher", "torch", "teacher torch", "#9e2a2b"),
    ("teacher", "onnx", "teacher onnxruntime", "#e07a5f"),
    ("student", "torch", "student torch", "#1d3557"),
    ("student", "onnx", "student onnxruntime", "#457b9d"),
    ("student", "numpy", "student numpy", "#81b29a"),
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def plot_return_vs_macs(report: Mapping[str, Any], path: str | Path) -> Path | None:
    """Return against MACs per control step (log x), teacher and student, one line per robot.

    Returns:
        The file written, or None when the report has no returns.
    """
    robots = [
        r
        for r in report["robots"]
        if r["teacher"].get("return_mean") is not None
        and r["student"].get("return_mean") is not None
    ]
    if not robots:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in robots:
        xs = [r["teacher"]["macs"], r["student"]["macs"]]
        ys = [r["teacher"]["return_mean"], r["student"]["return_mean"]]
        ax.plot(xs, ys, color="0.75", lw=1, zorder=1)
        ax.annotate(
            r["name"], (xs[1], ys[1]), fontsize=7, xytext=(4, 2), textcoords="offset points"
        )
    for kind, colour, marker in (("teacher", "#9e2a2b", "s"), ("student", "#457b9d", "o")):
        ax.scatter(
            [r[kind]["macs"] for r in robots],
            [r[kind]["return_mean"] for r in robots],
            label=kind,
            color=colour,
            marker=marker,
            zorder=2,
        )
    ax.set_xscale("log")
    ax.set_xlabel("MACs per control step (log scale; FLOPs = 2 x MACs)")
    ax.set_ylabel(f"mean return ({report['settings']['episodes']} episodes)")
    ax.set_title("Return against compute, per robot")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def _latency_groups(report: Mapping[str, Any]) -> list[tuple[str, dict[tuple[str, str], Any]]]:
    groups = []
    for r in report["robots"]:
        cells = {
            (kind, backend): stats
            for kind in ("teacher", "student")
            for backend, stats in r[kind]["latency_us"].items()
        }
        groups.append((r["name"], cells))
    ref = report.get("reference")
    if ref:
        cells = {
            (kind, backend): stats
            for kind in ("teacher", "student")
            for backend, stats in ref[kind]["latency_us"].items()
        }
        groups.append((f"reference\n({ref['n_limbs']} limbs)", cells))
    return groups


def plot_latency(report: Mapping[str, Any], path: str | Path) -> Path:
    """Bar chart of the p50 latency per backend and robot (log y; whiskers up to p99)."""
    plt = _pyplot()
    groups = _latency_groups(report)
    width = 0.8 / len(LATENCY_BARS)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(groups) + 2), 4.8))
    for j, (kind, backend, label, colour) in enumerate(LATENCY_BARS):
        xs, p50, err = [], [], []
        for i, (_, cells) in enumerate(groups):
            stats = cells.get((kind, backend))
            if stats is None:
                continue
            xs.append(i - 0.4 + (j + 0.5) * width)
            p50.append(stats["p50"])
            err.append(max(0.0, stats["p99"] - stats["p50"]))
        if xs:
            ax.bar(
                xs,
                p50,
                width,
                label=label,
                color=colour,
                yerr=[[0.0] * len(err), err],
                capsize=2,
                error_kw={"lw": 0.8},
            )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("latency per control step, us (p50; whisker p99)")
    ax.set_title("Batch-1 latency, single thread")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=7, ncol=len(LATENCY_BARS), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def write_plots(report: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write every plot the report supports into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [plot_latency(report, out / "latency.png")]
    ret = plot_return_vs_macs(report, out / "return_vs_macs.png")
    if ret is not None:
        written.append(ret)
    return written
