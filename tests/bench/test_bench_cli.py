"""hd-bench end to end with tiny checkpoints, and its one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hd_deploy.cli.bench import bench_app


def test_smoke(checkpoints: tuple[Path, Path], robot_sets: list[Path], tmp_path: Path) -> None:
    teacher, student = checkpoints
    out = tmp_path / "out"
    # options in declaration order, as the report's command lists them
    args = ["--teacher", str(teacher), "--student", str(student), "--robots", str(robot_sets[1]),
            "--out", str(out), "--no-returns", "--calls", "5", "--steps", "5"]  # fmt: skip
    result = CliRunner().invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    assert "summary" in result.output and "student" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["command"] == "hd-bench " + " ".join(args)
    assert report["settings"]["returns"] is False
    assert report["summary"]["return_ratio"] is None
    assert all(r["teacher"]["return_mean"] is None for r in report["robots"])
    assert report["plots"] == ["latency.png"]
    assert (out / "report.md").is_file() and (out / "latency.png").is_file()


def test_missing_checkpoint_exits_2(checkpoints: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(
        bench_app, ["--teacher", str(missing), "--student", str(checkpoints[1])]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --teacher {missing}: no such checkpoint folder"


def test_wrong_kind_exits_2(checkpoints: tuple[Path, Path], tmp_path: Path) -> None:
    teacher, _ = checkpoints
    result = CliRunner().invoke(
        bench_app, ["--teacher", str(teacher), "--student", str(teacher), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "expected a student" in result.output and len(result.output.splitlines()) == 1


def test_no_shipped_checkpoint_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import hd_deploy.train.shipped as shipped

    monkeypatch.setattr(shipped, "SHIPPED", tmp_path / "none")
    result = CliRunner().invoke(bench_app, ["--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: no shipped teacher checkpoint in this package; pass --teacher PATH"
    )
    assert not (tmp_path / "out").exists()
