"""The report of a run on tiny models: schema, types, and ratios consistent with the rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from hd_deploy.bench import CONVENTION, REPORT_SCHEMA, SCHEMA_VERSION
from hd_deploy.bench.render import markdown
from hd_deploy.exporters.c import find_compiler

from ._helpers import CALLS, EPISODES, ROBOT_LIMBS

MODEL_KEYS = {
    "params": int,
    "params_analytic": int,
    "macs": int,
    "macs_check": dict,
    "onnx_file": str,
    "onnx_bytes": int,
    "latency_us": dict,
    "latency_us_p50": float,
    "latency_us_p99": float,
    "steps_per_s": float,
    "return_mean": float,
    "return_std": float,
    "returns": list,
    "episode_length_mean": float,
}
RATIOS = ("params_ratio", "macs_ratio", "latency_ratio_onnx", "latency_ratio_torch_vs_onnx")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_top_level_keys(bench_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = bench_run
    for key in ("schema_version", "created", "command", "convention", "machine", "settings",
                "models", "robots", "summary", "reference", "plots"):  # fmt: skip
        assert key in report, key
        assert f"`{key}" in REPORT_SCHEMA, f"{key} is not described in REPORT_SCHEMA"
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["convention"] == CONVENTION
    assert "FLOPs = 2 x MACs" in report["convention"]["flops"]
    assert report["reference"] is None
    assert report["command"].startswith("hd_deploy.bench.run_benchmark(")
    machine = report["machine"]
    assert isinstance(machine["cpu"], str) and machine["cpu"]
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert machine["threads"] == 1
    for lib in ("torch", "onnxruntime", "numpy", "mujoco", "fvcore"):
        assert machine["versions"][lib], lib
    assert report["models"]["student"]["hypernet_params"] > 0


def test_robot_entries(bench_run: tuple[dict[str, Any], Path]) -> None:
    report, out = bench_run
    robots = report["robots"]
    assert [r["n_limbs"] for r in robots] == list(ROBOT_LIMBS)
    assert len({r["set"] for r in robots}) == 2
    for r in robots:
        assert isinstance(r["name"], str)
        assert r["obs_dim"] == 17 * r["n_limbs"]
        assert r["physics_steps_per_s"] > 0
        for kind in ("teacher", "student"):
            m = r[kind]
            for key, typ in MODEL_KEYS.items():
                assert isinstance(m[key], typ), (kind, key, m[key])
            assert m["params"] == m["params_analytic"]
            check = m["macs_check"]
            assert check["fvcore"] == m["macs"] and check["agree"] is True
            assert (out / m["onnx_file"]).stat().st_size == m["onnx_bytes"]
            assert m["latency_us_p50"] == m["latency_us"]["onnx"]["p50"]
            for stats in m["latency_us"].values():
                assert stats["n"] >= CALLS
                assert 0 < stats["min"] <= stats["p50"] <= stats["p99"]
            assert len(m["returns"]) == EPISODES
        assert set(r["teacher"]["latency_us"]) == {"torch", "onnx"}
        c = {"c"} if find_compiler() else set()
        assert set(r["student"]["latency_us"]) == {"torch", "onnx", "numpy"} | c
        for kind in ("teacher", "student"):
            m = r[kind]
            assert m["obs_us_p50"] > 0 and m["policy_us_p50"] > 0 and m["physics_us_p50"] > 0
            want = (m["obs_us_p50"] + m["policy_us_p50"]) / m["physics_us_p50"]
            assert _close(m["obs_policy_over_physics"], want)
        assert r["teacher"]["floor_us"] is None and r["teacher"]["overhead_us"] is None
        floor = r["student"]["floor_us"]
        if c:  # the floor is the C arithmetic alone; every backend's overhead is over it
            assert floor > 0
            assert r["student"]["overhead_us"] == {
                b: stats["p50"] - floor for b, stats in r["student"]["latency_us"].items()
            }
        else:
            assert floor is None
        assert r["student"]["widths"][0] == r["obs_dim"]
        assert r["student"]["widths"][-1] == r["n_actuators"]
        assert r["student"]["bake_ms"] > 0 and r["student"]["hypernet_macs_per_bake"] > 0


def test_ratios_match_the_rows(bench_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = bench_run
    robots, s = report["robots"], report["summary"]
    for r in robots:
        t, u, q = r["teacher"], r["student"], r["ratios"]
        assert _close(q["params"], t["params"] / u["params"])
        assert _close(q["macs"], t["macs"] / u["macs"])
        assert _close(
            q["latency_onnx"], t["latency_us"]["onnx"]["p50"] / u["latency_us"]["onnx"]["p50"]
        )
        assert _close(
            q["latency_torch_vs_onnx"],
            t["latency_us"]["torch"]["p50"] / u["latency_us"]["onnx"]["p50"],
        )
        if t["return_mean"] > 0:
            assert _close(q["return"], u["return_mean"] / t["return_mean"])
        else:
            assert q["return"] is None
    assert s["n_robots"] == len(robots)
    for key, per_robot in zip(
        RATIOS, ("params", "macs", "latency_onnx", "latency_torch_vs_onnx"), strict=True
    ):
        values = [r["ratios"][per_robot] for r in robots]
        assert _close(s[key], sum(values) / len(values))
        assert s[f"{key}_range"] == [min(values), max(values)]
    t_mean = sum(r["teacher"]["return_mean"] for r in robots) / len(robots)
    s_mean = sum(r["student"]["return_mean"] for r in robots) / len(robots)
    assert _close(s["teacher_return_mean"], t_mean)
    assert _close(s["student_return_mean"], s_mean)
    if t_mean > 0:
        assert _close(s["return_ratio"], s_mean / t_mean)
    else:
        assert s["return_ratio"] is None
    assert [x["n_robots"] for x in s["sets"]] == [1, 1]
    assert s["macs_checks_agree"] is True and s["macs_disagreements"] == []


def test_files_written(bench_run: tuple[dict[str, Any], Path]) -> None:
    report, out = bench_run
    assert json.loads((out / "report.json").read_text()) == report
    md = (out / "report.md").read_text()
    assert md == markdown(report)
    for text in (report["command"], "FLOPs = 2 x MACs", "## Summary", "## Machine",
                 "## Latency", "student / teacher"):  # fmt: skip
        assert text in md, text
    assert "WARNING" not in md
    assert sorted(report["plots"]) == ["latency.png", "return_vs_macs.png"]
    for name in report["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "onnx").glob("*.onnx"))) == 2 * len(report["robots"])


def test_bad_arguments_fail_before_work(checkpoints: tuple[Path, Path], tmp_path: Path) -> None:
    from hd_deploy.bench import run_benchmark
    from hd_deploy.models import CheckpointError

    teacher, student = checkpoints
    with pytest.raises(ValueError, match="calls must be >= 1"):
        run_benchmark(teacher, student, out_dir=tmp_path, calls=0)
    with pytest.raises(CheckpointError, match="expected a teacher"):
        run_benchmark(student, student, out_dir=tmp_path)
    assert not (tmp_path / "report.json").exists()


def test_keys_the_issue_requires(bench_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = bench_run
    for r in report["robots"]:
        assert {"name", "n_limbs", "teacher", "student"} <= set(r)
        for kind in ("teacher", "student"):
            assert {"params", "macs", "latency_us_p50", "return_mean"} <= set(r[kind])
    assert {"params_ratio", "macs_ratio", "latency_ratio_onnx", "latency_ratio_torch_vs_onnx",
            "return_ratio"} <= set(report["summary"])  # fmt: skip
    assert {"convention", "machine", "command"} <= set(report)
    assert {"cpu", "cores", "versions"} <= set(report["machine"])


def test_nearness_note_says_how_far_each_set_lies_from_the_training_robots() -> None:
    from hd_deploy.bench.render import nearness_note

    def robot(set_name: str, distance: float, far: bool) -> dict[str, Any]:
        near = {"robot": "r", "distance": distance, "spacing": 2.0, "training_robots": 9,
                "far": far}  # fmt: skip
        return {"set": set_name, "nearest_training": {"teacher": None, "student": near}}

    report = {
        "summary": {"sets": [{"name": "a"}, {"name": "b"}]},
        "robots": [robot("a", 1.0, False), robot("a", 3.0, False), robot("b", 5.0, True)],
    }
    note = nearness_note(report)
    assert note is not None and note.endswith(
        "(morphology context; 9 robots, 2.00 from one another; far: beyond 1.5x that, where "
        "hd-export warns): a: median 2.00, 0 of 2 far; b: median 5.00, 1 of 1 far."
    )
    report["robots"][0]["nearest_training"]["student"] = None  # a checkpoint without contexts
    assert nearness_note(report) is None


def test_sets_are_labelled_seen_or_unseen_by_fingerprint(
    bench_run: tuple[dict[str, Any], Path], robot_sets: list[Path]
) -> None:
    report, out = bench_run
    seen = {r["set"]: r["seen_in_training"] for r in report["robots"]}
    assert seen == {
        str(robot_sets[0]): {"teacher": True, "student": True},
        str(robot_sets[1]): {"teacher": False, "student": False},
    }
    for r in report["robots"]:
        assert len(r["fingerprint"]) == 16
    assert [(x["name"], x["seen_in_training"]) for x in report["summary"]["sets"]] == [
        (str(robot_sets[0]), True),
        (str(robot_sets[1]), False),
    ]
    for key in ("seen_in_training", "fingerprint", "nearest_training"):
        assert f"`{key}`" in REPORT_SCHEMA, key
    # the tiny checkpoints record no robot contexts
    assert all(r["nearest_training"] == {"teacher": None, "student": None}
               for r in report["robots"])  # fmt: skip
    md = (out / "report.md").read_text()
    assert f"| {robot_sets[0]} | 1 | seen in training |" in md
    assert f"| {robot_sets[1]} | 1 | unseen |" in md
    assert "| **all** | 2 | partly seen |" in md
    name_b = report["robots"][1]["name"]
    assert f"| {name_b} | {robot_sets[1]} | unseen |" in md  # the per-robot table


def _robot(set_name: str, teacher: bool | None, student: bool | None) -> dict[str, Any]:
    return {"set": set_name, "seen_in_training": {"teacher": teacher, "student": student}}


@pytest.mark.parametrize(
    ("flags", "want", "label"),
    [
        ([(True, True), (True, True)], True, "seen in training"),
        ([(False, False), (False, False)], False, "unseen"),
        ([(True, True), (False, False)], None, "partly seen"),
        ([(True, False), (True, False)], None, "seen by teacher only"),
        ([(False, True)], None, "seen by student only"),
        ([(True, None), (True, None)], None, "unknown"),  # the student records no fingerprints
        ([(None, None)], None, "unknown"),
    ],
)
def test_set_seen_needs_both_checkpoints_and_every_robot(
    flags: list[tuple[bool | None, bool | None]], want: bool | None, label: str
) -> None:
    from hd_deploy.bench.render import training_label
    from hd_deploy.bench.report import seen_in_training

    robots = [_robot("s", t, s) for t, s in flags]
    assert seen_in_training(robots) is want
    assert training_label(robots) == label


def test_standstill_note_names_the_sets_where_the_teacher_does_not_walk() -> None:
    from hd_deploy.bench.render import STANDSTILL_RETURN, standstill_note

    def report(returns: dict[str, float | None], measured: bool = True) -> dict[str, Any]:
        sets = [{"name": k, "teacher_return_mean": v} for k, v in returns.items()]
        return {"settings": {"returns": measured}, "summary": {"sets": sets}}

    note = standstill_note(report({"bundled": 12.0, "walkers": 900.0, "fallers": -40.0}))
    assert note is not None and "bundled, fallers (" in note and "walkers" not in note
    assert standstill_note(report({"walkers": STANDSTILL_RETURN})) is None
    assert standstill_note(report({"missing": None})) is None
    assert standstill_note(report({"bundled": 12.0}, measured=False)) is None
