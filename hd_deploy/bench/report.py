"""Turn benchmark measurements into the report: ratios, summary, machine info, files."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from hd_deploy.bench.render import markdown
from hd_deploy.bench.schema import CONVENTION, SCHEMA_VERSION
from hd_deploy.files import atomic_write_text

#: Per-robot ratio key -> summary key (the summary holds the mean and ``<key>_range``).
SUMMARY_RATIOS = {
    "params": "params_ratio",
    "macs": "macs_ratio",
    "latency_onnx": "latency_ratio_onnx",
    "latency_torch_vs_onnx": "latency_ratio_torch_vs_onnx",
}
_VERSION_PACKAGES = ("hd_deploy", "torch", "onnxruntime", "onnx", "numpy", "mujoco", "fvcore")


# --- ratios and summary ---------------------------------------------------------------


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)


def return_ratio(teacher: float | None, student: float | None) -> float | None:
    """Student / teacher return; None when either is missing or the teacher's is <= 0."""
    if teacher is None or student is None or teacher <= 0:
        return None
    return float(student) / float(teacher)


def robot_ratios(teacher: Mapping[str, Any], student: Mapping[str, Any]) -> dict[str, Any]:
    """Teacher / student ratios of one robot (student / teacher for the return)."""
    t_lat, s_lat = teacher["latency_us"], student["latency_us"]
    return {
        "params": _div(teacher["params"], student["params"]),
        "macs": _div(teacher["macs"], student["macs"]),
        "latency_onnx": _div(t_lat["onnx"]["p50"], s_lat["onnx"]["p50"]),
        "latency_torch_vs_onnx": _div(t_lat["torch"]["p50"], s_lat["onnx"]["p50"]),
        "return": return_ratio(teacher.get("return_mean"), student.get("return_mean")),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _range(values: Sequence[float | None]) -> list[float] | None:
    vals = [v for v in values if v is not None]
    return [float(min(vals)), float(max(vals))] if vals else None


def _returns_of(robots: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    t = _mean([r["teacher"].get("return_mean") for r in robots])
    s = _mean([r["student"].get("return_mean") for r in robots])
    return {"teacher_return_mean": t, "student_return_mean": s, "return_ratio": return_ratio(t, s)}


def seen_in_training(robots: Sequence[Mapping[str, Any]]) -> bool | None:
    """True when both checkpoints were trained on every robot, False when on none of them,
    None otherwise (some were, or a checkpoint records no fingerprints)."""
    flags = [r["seen_in_training"][kind] for r in robots for kind in ("teacher", "student")]
    if None in flags:
        return None
    if all(flags):
        return True
    return False if not any(flags) else None


def summarize(robots: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary`` section from the per-robot entries (which carry ``ratios``)."""
    out: dict[str, Any] = {"n_robots": len(robots)}
    for key, name in SUMMARY_RATIOS.items():
        values = [r["ratios"][key] for r in robots]
        out[name] = _mean(values)
        out[f"{name}_range"] = _range(values)
    out.update(_returns_of(robots))
    sets: dict[str, list[Mapping[str, Any]]] = {}
    for r in robots:
        sets.setdefault(r["set"], []).append(r)
    out["sets"] = [
        {"name": k, "n_robots": len(v), "seen_in_training": seen_in_training(v), **_returns_of(v)}
        for k, v in sets.items()
    ]
    bad = [
        f"{r['name']} {kind}"
        for r in robots
        for kind in ("teacher", "student")
        if not r[kind]["macs_check"]["agree"]
    ]
    out["macs_checks_agree"] = not bad
    out["macs_disagreements"] = bad
    return out


# --- machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, load, platform and library versions."""
    versions: dict[str, str | None] = {}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load: list[float] | None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "load_average": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "threads": 1,
        "versions": versions,
    }


def assemble(
    *,
    command: str,
    created: str,
    settings: Mapping[str, Any],
    models: Mapping[str, Any],
    robots: Sequence[Mapping[str, Any]],
    reference: Mapping[str, Any] | None,
    machine: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full report dict (see :data:`~hd_deploy.bench.schema.REPORT_SCHEMA`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": created,
        "command": command,
        "convention": dict(CONVENTION),
        "machine": dict(machine) if machine is not None else machine_info(),
        "settings": dict(settings),
        "models": dict(models),
        "robots": [dict(r) for r in robots],
        "summary": summarize(robots),
        "reference": dict(reference) if reference else None,
        "plots": [],
    }


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    _atomic_write(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    _atomic_write(md_path, markdown(report))
    return json_path, md_path


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)
