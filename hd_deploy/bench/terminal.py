"""The hd-bench terminal tables (rich): per robot, the student's stages, summary, robot sets
and the reference architectures; every table reads whole at 80 columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hd_deploy.bench.render import (
    fmt_count,
    fmt_float,
    fmt_range,
    fmt_ratio,
    fmt_us,
    labelled_sets,
    latency_stats,
    nearness_note,
    standstill_note,
    training_label,
)


def _us_short(stats: Mapping[str, Any] | None) -> str:
    """p50 in whole microseconds from 100 up (the terminal table's width)."""
    if stats is None or stats["p50"] < 100:
        return fmt_us(stats)
    return f"{stats['p50']:.0f}"


def _compact_table(title: str) -> Any:
    """A rich table without outer edges and with two spaces between columns, so that
    hd-bench's widest table fits 80 columns."""
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False, collapse_padding=True)  # fmt: skip


def _robot_marker(robot: Mapping[str, Any]) -> str:
    """The per-robot table's second line: limbs, actuators, seen or unseen."""
    label = training_label([robot])
    short = {"seen in training": "seen"}.get(label, label.replace("seen by ", ""))
    return f"[dim]{robot['n_limbs']}L {robot['n_actuators']}A {short}"


def rich_tables(report: Mapping[str, Any]) -> list[Any]:
    """rich renderables: per robot, the student's stages, summary, robot sets (and the
    reference, if any)."""
    st = report["settings"]
    # 80 columns: the numbers never wrap, a long robot name or robot set folds.
    table = _compact_table(
        "hd-bench per control step: latency p50 at batch 1 on 1 thread, control loop "
        "with ORT; L limbs, A actuators, seen in training (by both models, or by one) or unseen"
    )
    table.add_column("robot", overflow="fold")
    table.add_column("model", no_wrap=True)
    for c in ("params", "MACs", "torch\nus", "ORT\nus", "numpy\nus", "loop\nsteps/s", "return"):
        table.add_column(c, justify="right", no_wrap=True)
    for r in report["robots"]:
        for kind in ("teacher", "student"):
            m = r[kind]
            table.add_row(
                r["name"] if kind == "teacher" else _robot_marker(r),
                kind,
                fmt_count(m["params"]),
                fmt_count(m["macs"]),
                _us_short(latency_stats(m, "torch")),
                _us_short(latency_stats(m, "onnx")),
                _us_short(latency_stats(m, "numpy")),
                fmt_float(m["steps_per_s"], 0),
                fmt_float(m.get("return_mean")),
                end_section=kind == "student",
            )
    stages = _compact_table(
        "student per control step, us p50: arithmetic floor (C timed inside C), the "
        "backends, and the loop's stages with ORT"
    )
    stages.add_column("robot", overflow="fold")
    for c in ("floor", "C", "numpy", "ORT", "obs", "physics", "(obs+ORT)\n/physics"):
        stages.add_column(c, justify="right", no_wrap=True)
    for r in report["robots"]:
        u = r["student"]
        stages.add_row(
            r["name"],
            fmt_float(u.get("floor_us"), 2),
            _us_short(latency_stats(u, "c")),
            _us_short(latency_stats(u, "numpy")),
            _us_short(latency_stats(u, "onnx")),
            fmt_float(u.get("obs_us_p50")),
            fmt_float(u.get("physics_us_p50"), 0),
            fmt_float(u.get("obs_policy_over_physics"), 2),
        )
    s = report["summary"]
    summary = _compact_table(f"summary over {s['n_robots']} robots")
    summary.add_column("", overflow="fold")
    for c in ("mean", "range"):
        summary.add_column(c, justify="right", no_wrap=True)
    for label, key in (
        ("params teacher/student", "params_ratio"),
        ("MACs teacher/student", "macs_ratio"),
        ("latency ORT teacher / ORT student", "latency_ratio_onnx"),
        ("latency torch teacher / ORT student", "latency_ratio_torch_vs_onnx"),
    ):
        summary.add_row(label, fmt_ratio(s[key]), fmt_range(s[f"{key}_range"]))
    if st["returns"]:
        summary.add_row("return student/teacher", fmt_float(s["return_ratio"], 3), "")
    else:
        summary.add_row("return student/teacher", "skipped", "")
    sets = _compact_table(
        "robot sets: seen in training (by both models, or by one; by robot fingerprint) or unseen"
    )
    sets.add_column("set", overflow="fold")
    sets.add_column("robots", justify="right", no_wrap=True)
    sets.add_column("training", no_wrap=True)
    if st["returns"]:
        for c in ("teacher\nreturn", "student\nreturn", "return\nstudent/teacher"):
            sets.add_column(c, justify="right", no_wrap=True)
    for x, label in labelled_sets(report):
        returns = (
            [
                fmt_float(x["teacher_return_mean"]),
                fmt_float(x["student_return_mean"]),
                fmt_float(x["return_ratio"], 3),
            ]
            if st["returns"]
            else []
        )
        sets.add_row(x["name"], str(x["n_robots"]), label, *returns)
    out: list[Any] = [table, stages, summary, sets]
    out += [n for n in (nearness_note(report), standstill_note(report)) if n]
    ref = report.get("reference")
    if ref:
        t, u = ref["teacher"], ref["student"]
        rt = _compact_table(
            f"reference architectures, {ref['n_limbs']} limbs ({ref['n_actuators']} actuators)"
        )
        rt.add_column("")
        for c in ("teacher", "baked MLP", "ratio", "paper"):
            rt.add_column(c, justify="right", no_wrap=True)
        rt.add_row(
            "params",
            f"{t['params']:,}",
            f"{u['params']:,}",
            fmt_ratio(ref["params_ratio"]),
            "6-14x",
        )
        rt.add_row(
            "MACs", f"{t['macs']:,}", f"{u['macs']:,}", fmt_ratio(ref["macs_ratio"]), "67-160x"
        )
        rt.add_row(
            "ORT p50 us",
            _us_short(t["latency_us"].get("onnx")),
            _us_short(u["latency_us"].get("onnx")),
            fmt_ratio(ref["latency_ratio_onnx"]),
            "",
        )
        rt.add_row(
            "torch T vs ORT S p50 us",
            _us_short(t["latency_us"].get("torch")),
            _us_short(u["latency_us"].get("onnx")),
            fmt_ratio(ref["latency_ratio_torch_vs_onnx"]),
            "",
        )
        out.append(rt)
    return out
