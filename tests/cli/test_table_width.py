"""The terminal tables of hd-bench, hd-eval and hd-inspect read whole at 80 columns."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hd_deploy.bench.terminal import rich_tables
from hd_deploy.cli.inspect import inspect_app
from hd_deploy.cli.train import eval_table
from hd_deploy.morphology.sources import bundled_robots
from tests.conftest import gym_robots

WIDTH = 80
LONG_NAME = "floor-1409-11-14-01-13-30-11"  # among the longest UNIMAL robot names
LONG_SET = "../shared/unimal/train/floor-1409-11-14-01-13-30-11.xml"


def _render(*tables: Any) -> list[str]:
    from rich.console import Console

    console = Console(width=WIDTH, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.export_text().splitlines()


def _assert_whole(lines: list[str], cells: list[str]) -> None:
    """Nothing wider than the terminal, nothing cut with an ellipsis, each cell on a line."""
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= WIDTH, text
    assert "…" not in text, text
    for cell in cells:
        assert any(cell in line for line in lines), (cell, text)


def _model(params: int, macs: int, latency_us: dict[str, float]) -> dict[str, Any]:
    return {
        "params": params,
        "macs": macs,
        "latency_us": {k: {"p50": v} for k, v in latency_us.items()},
        "steps_per_s": 12345.6,
        "return_mean": -1234.5,
        "floor_us": 123.45,
        "obs_us_p50": 1234.5,
        "physics_us_p50": 12345.6,
        "obs_policy_over_physics": 12.34,
    }


def _bench_report() -> dict[str, Any]:
    """A report with the widest values a run gives: a long name, slow latencies, big counts."""
    robot = {
        "name": LONG_NAME,
        "set": LONG_SET,
        "seen_in_training": {"teacher": True, "student": True},
        "n_limbs": 12,
        "n_actuators": 24,
        "teacher": _model(1_660_418, 19_955_712, {"torch": 12345.6, "onnx": 2345.6}),
        "student": _model(
            123_926, 123_392, {"torch": 345.6, "onnx": 92.1, "numpy": 99.9, "c": 199.9}
        ),
    }
    ratio = {"params_ratio": 13.4, "macs_ratio": 162.0, "latency_ratio_onnx": 26.7,
             "latency_ratio_torch_vs_onnx": 118.0}  # fmt: skip
    summary = {"n_robots": 2, "return_ratio": 0.168, **ratio}
    summary |= {f"{k}_range": [v / 2, v * 2] for k, v in ratio.items()}
    returns = {"teacher_return_mean": -1234.5, "student_return_mean": -1234.5}
    summary["sets"] = [{"name": LONG_SET, "n_robots": 1, "return_ratio": 0.167, **returns},
                       {"name": "bundled", "n_robots": 1, "return_ratio": 0.409,
                        **returns}]  # fmt: skip
    reference = {
        "n_limbs": 12,
        "n_actuators": 22,
        "teacher": {"params": 1_660_418, "macs": 19_955_712,
                    "latency_us": {"onnx": {"p50": 2455.7}, "torch": {"p50": 10907.8}}},
        "student": {"params": 123_926, "macs": 123_392, "latency_us": {"onnx": {"p50": 92.1}}},
        **ratio,
    }  # fmt: skip
    unseen = {**robot, "name": "gen-11", "set": "bundled",
              "seen_in_training": {"teacher": False, "student": False}}  # fmt: skip
    return {
        "settings": {"returns": True},
        "robots": [robot, unseen],
        "summary": summary,
        "reference": reference,
    }


def test_bench_tables_fit_80_columns() -> None:
    lines = _render(*rich_tables(_bench_report()))
    header = next(line for line in lines if line.lstrip().startswith("robot"))
    for word in ("model", "params", "MACs", "us", "steps/s", "return"):
        assert f" {word}" in header, header
    _assert_whole(lines, ["teacher", "student", "12346", "2346", "-1234.5", "99.9", "12346",
                          "1.66M", "20M", "0.167", "19,955,712", "10908", "67-160x",
                          "12L 24A seen", "12L 24A unseen", "seen in training",
                          "unseen", "-1234.5", "barely moves"])  # fmt: skip
    assert any(line.startswith("floor-1409-11-14") for line in lines)  # folded, not cut


def test_eval_table_fits_80_columns() -> None:
    report = {
        "robots": [
            {"name": LONG_NAME, "n_limbs": 12, "return_mean": -1234.5, "return_std": 999.9,
             "episode_length_mean": 1000.0},
            {"name": "gen-7", "n_limbs": 11, "return_mean": 2.9, "return_std": 0.0,
             "episode_length_mean": 56.0},
        ],
        "return_mean": -615.8,
        "return_std": 618.7,
    }  # fmt: skip
    title = "student hd_deploy/assets/checkpoints/student: 3 episodes per robot, seed 0"
    lines = _render(eval_table(report, title=title))
    _assert_whole(lines, [LONG_NAME, "-1234.5", "999.9", "1000", "-615.8", "618.7"])


def test_inspect_fits_80_columns_one_line_per_joint_slot(tmp_path: Path) -> None:
    robot = tmp_path / f"{LONG_NAME}.xml"
    robot.write_text(bundled_robots()[0].read_text())
    walker = gym_robots()[2]  # long joint names
    for path, row in ((robot, (LONG_NAME,)), (walker, ("thigh_left_joint", "-150 to 0", "100"))):
        result = CliRunner().invoke(inspect_app, [str(path)], env={"COLUMNS": str(WIDTH)})
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        _assert_whole(lines, ["fingerprint", "range deg", "gear"])
        assert any(all(cell in line for cell in row) for line in lines), result.output
