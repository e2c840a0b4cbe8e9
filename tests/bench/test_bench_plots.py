"""PNG plots written from a report (with and without returns)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hd_deploy.bench.plots import plot_return_vs_macs, write_plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_written(bench_run: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    written = write_plots(bench_run[0], tmp_path / "plots")
    assert sorted(p.name for p in written) == ["latency.png", "return_vs_macs.png"]
    for p in written:
        assert p.read_bytes()[:8] == PNG
    assert not list((tmp_path / "plots").glob("*.tmp.png"))


def test_without_returns_only_latency(
    bench_run: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    report = copy.deepcopy(bench_run[0])
    for r in report["robots"]:
        for kind in ("teacher", "student"):
            r[kind]["return_mean"] = None
    assert plot_return_vs_macs(report, tmp_path / "r.png") is None
    assert [p.name for p in write_plots(report, tmp_path)] == ["latency.png"]


def test_latency_plot_includes_reference(
    bench_run: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    report = copy.deepcopy(bench_run[0])
    first = report["robots"][0]
    report["reference"] = {
        "n_limbs": 12,
        "teacher": {"latency_us": first["teacher"]["latency_us"]},
        "student": {"latency_us": {"onnx": first["student"]["latency_us"]["onnx"]}},
    }
    (path,) = [p for p in write_plots(report, tmp_path) if p.name == "latency.png"]
    assert path.read_bytes()[:8] == PNG
