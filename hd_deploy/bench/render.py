"""Render a benchmark report for people: Markdown (``report.md``) and the formatting
helpers the terminal tables (:mod:`hd_deploy.bench.terminal`) share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median as median_of
from typing import Any

from hd_deploy.morphology.nearness import FAR
from hd_deploy.runtime.episodes import STANDSTILL_RETURN, STANDSTILL_SPEED


def macs_disagreements(report: Mapping[str, Any]) -> list[str]:
    """Every model whose fvcore and analytic MAC counts disagree, reference included."""
    bad = list(report["summary"]["macs_disagreements"])
    ref = report.get("reference")
    if ref:
        bad += [
            f"reference {kind}"
            for kind in ("teacher", "student")
            if not ref[kind]["macs_check"]["agree"]
        ]
    return bad


def fmt_count(n: float | None) -> str:
    """12345678 -> '12.3M'."""
    if n is None:
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.0f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}x"


def fmt_us(stats: Mapping[str, Any] | None) -> str:
    return "-" if stats is None else f"{stats['p50']:.1f}"


def fmt_float(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def fmt_range(r: Sequence[float] | None) -> str:
    return "-" if not r else f"{r[0]:.3g}-{r[1]:.3g}x"


def training_label(robots: Sequence[Mapping[str, Any]]) -> str:
    """Whether the checkpoints were trained on these robots (a set, or one robot): "seen in
    training", "unseen", "seen by teacher only" / "seen by student only", "partly seen", or
    "unknown" (a checkpoint records no fingerprints)."""
    seen: dict[str, str] = {}
    for kind in ("teacher", "student"):
        flags = [r["seen_in_training"][kind] for r in robots]
        if None in flags:
            return "unknown"
        seen[kind] = "all" if all(flags) else "none" if not any(flags) else "some"
    if seen["teacher"] == seen["student"] == "all":
        return "seen in training"
    if seen["teacher"] == seen["student"] == "none":
        return "unseen"
    for kind, other in (("teacher", "student"), ("student", "teacher")):
        if seen[kind] == "all" and seen[other] == "none":
            return f"seen by {kind} only"
    return "partly seen"


def standstill_note(report: Mapping[str, Any]) -> str | None:
    """A caveat naming the robot sets where the teacher's mean return is under
    :data:`STANDSTILL_RETURN` (None: there is none, or returns were not measured)."""
    if not report["settings"]["returns"]:
        return None
    names = [
        x["name"]
        for x in report["summary"]["sets"]
        if x["teacher_return_mean"] is not None and x["teacher_return_mean"] < STANDSTILL_RETURN
    ]
    if not names:
        return None
    return (
        f"The teacher barely moves on {', '.join(names)} (mean return under "
        f"{STANDSTILL_RETURN:.0f}, {STANDSTILL_SPEED} m/s), so the student / teacher return "
        "ratio there compares two near-standstills; measure it on robots the teacher walks "
        "on, e.g. --robots ../shared/unimal/test."
    )


def nearness_note(report: Mapping[str, Any]) -> str | None:
    """Per robot set, how far its robots lie from the student's training robots (median
    distance, how many are beyond hd-export's warning); None when the student records no
    training contexts."""
    parts = []
    near: list[Mapping[str, Any]] = []
    for x in report["summary"]["sets"]:
        found = [
            (r.get("nearest_training") or {}).get("student")  # reports from before it: none
            for r in report["robots"]
            if r["set"] == x["name"]
        ]
        if not found or any(n is None for n in found):
            return None
        near = [n for n in found if n is not None]
        far = sum(n["far"] for n in near)
        median = median_of(n["distance"] for n in near)
        parts.append(f"{x['name']}: median {median:.2f}, {far} of {len(near)} far")
    spacing = near[0]["spacing"]
    scale = "" if spacing is None else f", {spacing:.2f} from one another"
    return (
        "Distance to the nearest of the student's training robots (morphology context; "
        f"{near[0]['training_robots']} robots{scale}; far: beyond {FAR:g}x that, where "
        f"hd-export warns): {'; '.join(parts)}."
    )


def labelled_sets(report: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """Each ``summary.sets[]`` entry with the training label of its robots."""
    return [
        (x, training_label([r for r in report["robots"] if r["set"] == x["name"]]))
        for x in report["summary"]["sets"]
    ]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def latency_stats(model: Mapping[str, Any], backend: str) -> Mapping[str, Any] | None:
    """A model entry's latency statistics for one backend (None: not measured)."""
    return model["latency_us"].get(backend)


def markdown(report: Mapping[str, Any]) -> str:
    """Human-readable report: tables, summary, reference, conventions, machine, command."""
    s, robots, st = report["summary"], report["robots"], report["settings"]
    lines = ["# hd-bench report", "", f"Created {report['created']}. Command:", ""]
    lines += ["```", report["command"], "```", ""]
    bad = macs_disagreements(report)
    if bad:
        lines += [
            f"**WARNING: fvcore and analytic MAC counts disagree (> 1%) for: {', '.join(bad)}.**",
            "",
        ]

    lines += ["## Summary (teacher / student)", ""]
    rows = [
        ["parameters", fmt_ratio(s["params_ratio"]), fmt_range(s["params_ratio_range"])],
        ["MACs per step", fmt_ratio(s["macs_ratio"]), fmt_range(s["macs_ratio_range"])],
        [
            "latency, onnxruntime vs onnxruntime",
            fmt_ratio(s["latency_ratio_onnx"]),
            fmt_range(s["latency_ratio_onnx_range"]),
        ],
        [
            "latency, torch teacher vs onnxruntime student",
            fmt_ratio(s["latency_ratio_torch_vs_onnx"]),
            fmt_range(s["latency_ratio_torch_vs_onnx_range"]),
        ],
    ]
    lines += _md_table(["ratio", f"mean over {s['n_robots']} robots", "range"], rows)
    lines += _sets_md(report)

    lines += ["## Size and compute per robot", ""]
    rows = []
    for r in robots:
        t, u = r["teacher"], r["student"]
        rows.append(
            [
                r["name"],
                str(r["n_limbs"]),
                str(r["n_actuators"]),
                f"{t['params']:,}",
                f"{u['params']:,}",
                fmt_ratio(r["ratios"]["params"]),
                f"{t['macs']:,}",
                f"{u['macs']:,}",
                fmt_ratio(r["ratios"]["macs"]),
                fmt_count(t["onnx_bytes"]) + "B",
                fmt_count(u["onnx_bytes"]) + "B",
            ]
        )
    lines += _md_table(
        [
            "robot",
            "limbs",
            "act.",
            "teacher params",
            "student params",
            "ratio",
            "teacher MACs",
            "student MACs",
            "ratio",
            "teacher ONNX",
            "student ONNX",
        ],
        rows,
    )
    hn = report["models"]["student"]
    lines += [
        f"Hypernetwork (runs once per robot, not deployed): {hn['hypernet_params']:,} "
        "parameters; MACs per bake and bake time per robot below.",
        "",
    ]

    lines += ["## Latency per control step (us, batch 1, one thread; p50 / p99)", ""]
    rows = []
    for r in robots:
        t, u = r["teacher"], r["student"]
        cells = [
            latency_stats(t, "torch"),
            latency_stats(t, "onnx"),
            latency_stats(u, "torch"),
            latency_stats(u, "onnx"),
            latency_stats(u, "numpy"),
        ]
        rows.append(
            [r["name"]]
            + ["-" if c is None else f"{c['p50']:.1f} / {c['p99']:.1f}" for c in cells]
            + [
                fmt_ratio(r["ratios"]["latency_onnx"]),
                fmt_ratio(r["ratios"]["latency_torch_vs_onnx"]),
                f"{u['bake_ms']:.2f}",
                fmt_count(u["hypernet_macs_per_bake"]),
            ]
        )
    lines += _md_table(
        [
            "robot",
            "teacher torch",
            "teacher ORT",
            "student torch",
            "student ORT",
            "student numpy",
            "ORT/ORT",
            "torch/ORT",
            "bake ms",
            "bake MACs",
        ],
        rows,
    )
    lat = st["latency"]
    lines += [
        f"{lat['calls']} timed calls per backend ({lat['rounds']} rounds of "
        f"{lat['calls_per_round']}, backends alternating) after {lat['warmup']} warm-up calls.",
        "",
    ]

    lines += ["## The student against its arithmetic floor, and each stage of a control step", ""]
    rows = []
    for r in robots:
        u = r["student"]
        over = u.get("overhead_us") or {}
        rows.append(
            [r["name"], fmt_float(u.get("floor_us"), 2)]
            + [
                "-" if stats is None else f"{stats['p50']:.1f} (+{over.get(b, 0):.1f})"
                for b in ("c", "numpy", "onnx")
                for stats in [latency_stats(u, b)]
            ]
            + [
                fmt_float(u.get("obs_us_p50")),
                fmt_float(u.get("policy_us_p50")),
                fmt_float(u.get("physics_us_p50")),
                fmt_float(u.get("obs_policy_over_physics"), 3),
            ]
        )
    lines += _md_table(
        [
            "robot",
            "floor us",
            "C (ctypes) us",
            "numpy us",
            "ORT us",
            "loop: obs us",
            "policy (ORT) us",
            "physics us",
            "(obs + policy) / physics",
        ],
        rows,
    )
    lines += [
        "Floor: the baked MLP's C `hd_act` timed inside C (no Python, no ctypes; built as "
        "the c backend builds it, `-O3 -march=native`); each backend's p50 is followed by its "
        "overhead over the floor. The stages are p50 per control step of the student's "
        "onnxruntime control loop (observation with its state checks, `act`, `frame_skip` "
        "MuJoCo steps).",
        "",
    ]

    lines += ["## Control loop and return per robot", ""]
    rows = []
    for r in robots:
        t, u = r["teacher"], r["student"]
        rows.append(
            [
                r["name"],
                r["set"],
                training_label([r]),
                fmt_float(r["physics_steps_per_s"], 0),
                fmt_float(t["steps_per_s"], 0),
                fmt_float(u["steps_per_s"], 0),
                fmt_float(t.get("return_mean")),
                fmt_float(u.get("return_mean")),
                fmt_float(r["ratios"]["return"], 3),
            ]
        )
    lines += _md_table(
        [
            "robot",
            "set",
            "training",
            "physics only steps/s",
            "teacher (ORT) steps/s",
            "student (ORT) steps/s",
            "teacher return",
            "student return",
            "student / teacher",
        ],
        rows,
    )

    lines += ["## MAC cross-check (fvcore vs analytic)", ""]
    rows = []
    for name, kind, model in _all_models(report):
        c = model["macs_check"]
        rows.append(
            [
                name,
                kind,
                f"{c['fvcore']:,}",
                f"{c['analytic']:,}",
                f"{100 * c['rel_diff']:.3f}%",
                "yes" if c["agree"] else "**NO**",
            ]
        )
    lines += _md_table(["robot", "model", "fvcore", "analytic", "difference", "agree"], rows)

    ref = report.get("reference")
    if ref:
        lines += _reference_md(ref)

    lines += ["## Conventions", ""]
    lines += [f"- **{k}**: {v}" for k, v in report["convention"].items()] + [""]
    m = report["machine"]
    lines += ["## Machine", ""]
    lines += [
        f"- CPU: {m['cpu']} ({m['cores']} logical cores, {m['cores_usable']} usable); "
        f"load average {m['load_average']}",
        f"- {m['platform']}, Python {m['python']}, {m['threads']} thread",
        "- " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- teacher `{st['teacher']}` ({st['teacher_hash']}), student `{st['student']}` "
        f"({st['student_hash']})",
        "",
    ]
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in report["plots"]] + [""]
    return "\n".join(lines)


def _sets_md(report: Mapping[str, Any]) -> list[str]:
    """The robot sets, each labelled seen in training or unseen, with their returns."""
    s, st = report["summary"], report["settings"]
    header = ["robot set", "robots", "training"]
    rows = [[x["name"], str(x["n_robots"]), label] for x, label in labelled_sets(report)]
    rows.append(["**all**", str(s["n_robots"]), training_label(report["robots"])])
    if st["returns"]:
        header += ["teacher return", "student return", "student / teacher"]
        for row, x in zip(rows, [*s["sets"], s], strict=True):
            row += [
                fmt_float(x["teacher_return_mean"]),
                fmt_float(x["student_return_mean"]),
                fmt_float(x["return_ratio"], 3),
            ]
        intro = f"Robot sets and returns ({st['episodes']} episodes per robot, seed {st['seed']}):"
    else:
        intro = "Robot sets (returns were not measured: `--no-returns`):"
    note = (
        "Training: whether the teacher and student checkpoints were trained on the robots, "
        "by robot fingerprint (a renamed file of a training robot is seen)."
    )
    notes = [n for n in (note, nearness_note(report), standstill_note(report)) if n]
    return [intro, ""] + _md_table(header, rows) + [line for n in notes for line in (n, "")]


def _all_models(report: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    out = [(r["name"], k, r[k]) for r in report["robots"] for k in ("teacher", "student")]
    ref = report.get("reference")
    if ref:
        out += [(f"reference ({ref['robot']})", k, ref[k]) for k in ("teacher", "student")]
    return out


def _reference_md(ref: Mapping[str, Any]) -> list[str]:
    t, u, p = ref["teacher"], ref["student"], ref["paper_layout"]
    lines = [
        f"## Reference architectures ({ref['n_limbs']} limbs, {ref['n_actuators']} actuators, "
        "random weights)",
        "",
    ]
    rows = [
        [
            "parameters",
            f"{t['params']:,}",
            f"{u['params']:,}",
            fmt_ratio(ref["params_ratio"]),
            fmt_ratio(p["params_ratio"]),
            "6-14x",
        ],
        [
            "MACs per step",
            f"{t['macs']:,}",
            f"{u['macs']:,}",
            fmt_ratio(ref["macs_ratio"]),
            fmt_ratio(p["macs_ratio"]),
            "67-160x (FLOPs)",
        ],
        [
            "latency ORT p50 (us)",
            fmt_us(t["latency_us"].get("onnx")),
            fmt_us(u["latency_us"].get("onnx")),
            fmt_ratio(ref["latency_ratio_onnx"]),
            "",
            "",
        ],
        [
            "latency torch teacher vs ORT student p50 (us)",
            fmt_us(t["latency_us"].get("torch")),
            fmt_us(u["latency_us"].get("onnx")),
            fmt_ratio(ref["latency_ratio_torch_vs_onnx"]),
            "",
            "",
        ],
    ]
    lines += _md_table(
        ["", "teacher", "baked MLP", "ratio", f"ratio, paper layout ({p['widths']})", "paper"],
        rows,
    )
    lines += [
        f"Hypernetwork: {u['hypernet_params']:,} parameters, bake {u['bake_ms']:.2f} ms. "
        f"The generated robot has {ref['n_actuators']} actuators (the torso carries no "
        "hinge); the paper layout pads to 12 limbs x 2 slots = 24 outputs.",
        "",
    ]
    return lines
