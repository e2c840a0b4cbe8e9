"""``run_benchmark``: teacher against baked student on every robot, side by side.

For each robot: parameters and MACs (fvcore, cross-checked), ONNX export of both
controllers, interleaved batch-1 latency of five backends, bake time, control-loop
throughput and (optionally) returns, and whether each checkpoint was trained on it (by the
robot's fingerprint, not its name); then the summary, the reference architectures with
``reference=True``, and the report files (see :data:`~hd_deploy.bench.schema.REPORT_SCHEMA`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hd_deploy.bench.backends import deploy, floor_us, time_backends
from hd_deploy.bench.latency import DEFAULT_CALLS, TimingPlan, time_repeated
from hd_deploy.bench.plots import write_plots
from hd_deploy.bench.profile import hypernet_cost, student_cost, teacher_cost
from hd_deploy.bench.progress import Progress
from hd_deploy.bench.report import assemble, robot_ratios, write_report
from hd_deploy.bench.throughput import DEFAULT_STEPS, LoopTiming, control_loops
from hd_deploy.envs.task import LocomotionTask
from hd_deploy.errors import ConfigError
from hd_deploy.models import (
    HyperNetPolicy,
    TeacherPolicy,
    checkpoint_hash,
    count_params,
    load_student,
    load_teacher,
    read_checkpoint_info,
)
from hd_deploy.models.checkpoint import read_training_robots
from hd_deploy.morphology.nearness import fingerprint_and_place
from hd_deploy.morphology.sources import bundled_robots, bundled_seen_robots, resolve_robots

DEFAULT_EPISODES = 2
DEFAULT_BAKE_REPEATS = 5
BUNDLED_SET = "bundled"
BUNDLED_SEEN_SET = "bundled/seen"


@dataclass(frozen=True)
class RobotSource:
    """One robot file and the robot set (``--robots`` argument) it came from."""

    file: Path
    set: str


def robot_sources(robots: Sequence[str | Path] | None) -> list[RobotSource]:
    """Expand ``--robots`` arguments into files labelled by the argument they came from.

    Raises:
        MorphologyError: A path is missing or a folder holds no robot.
    """
    if not robots:
        return [RobotSource(f, BUNDLED_SET) for f in bundled_robots()] + [
            RobotSource(f, BUNDLED_SEEN_SET) for f in bundled_seen_robots()
        ]
    return [RobotSource(f, str(src)) for src in robots for f in resolve_robots([src])]


@contextmanager
def single_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block (restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _file_stem(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "robot"
    unique, k = stem, 1
    while unique in taken:
        k += 1
        unique = f"{stem}-{k}"
    taken.add(unique)
    return unique


def _model_entry(
    cost: dict[str, Any],
    onnx_path: Path,
    out_dir: Path,
    latency: dict[str, Any],
    loop: LoopTiming,
    floor: float | None = None,
) -> dict[str, Any]:
    return {
        **cost,
        "onnx_file": str(onnx_path.relative_to(out_dir)),
        "onnx_bytes": onnx_path.stat().st_size,
        "latency_us": latency,
        "latency_us_p50": latency["onnx"]["p50"],
        "latency_us_p99": latency["onnx"]["p99"],
        "floor_us": floor,
        "overhead_us": (
            None if floor is None else {b: stats["p50"] - floor for b, stats in latency.items()}
        ),
        "steps_per_s": loop.steps_per_s,
        "obs_us_p50": loop.obs_us_p50,
        "policy_us_p50": loop.policy_us_p50,
        "physics_us_p50": loop.physics_us_p50,
        "obs_policy_over_physics": loop.obs_policy_over_physics,
    }


def profile_robot(
    teacher: TeacherPolicy,
    student: HyperNetPolicy,
    source: RobotSource,
    *,
    out_dir: Path,
    stem: str,
    hashes: tuple[str, str],
    plan: TimingPlan,
    throughput_steps: int,
    bake_repeats: int,
    seed: int,
    progress: Progress,
) -> dict[str, Any]:
    """Everything but the returns for one robot (three progress units)."""
    mjcf = source.file.read_text(encoding="utf-8")
    task = LocomotionTask(source.file)
    name = task.robot.name
    progress.status(f"{name}: counting and exporting")
    d = deploy(teacher, student, task, mjcf, out_dir / "onnx", stem, hashes=hashes)
    t_cost = teacher_cost(d.teacher, teacher.config)
    s_cost = student_cost(d.student)
    hn_cost = hypernet_cost(student, task.context)
    bake = time_repeated(lambda: student.bake([task.robot], [task.context]), repeats=bake_repeats)
    progress.advance()

    progress.status(f"{name}: latency ({plan.calls} calls x {len(d.controllers)} backends)")
    obs = task.reset(np.random.default_rng(seed)).reshape(-1)
    latency = time_backends(d.controllers, obs, plan)
    floor = None if d.student_c is None else floor_us(d.student_c, obs)
    progress.advance()

    progress.status(f"{name}: control loop ({throughput_steps} steps)")
    loops = {
        "physics": None,
        "teacher": d.controllers["teacher", "onnx"],
        "student": d.controllers["student", "onnx"],
    }
    speed = control_loops(loops, task, steps=throughput_steps, seed=seed)
    progress.advance()

    empty_return = {
        "return_mean": None,
        "return_std": None,
        "returns": None,
        "episode_length_mean": None,
    }
    t_entry = _model_entry(t_cost, d.teacher_onnx, out_dir, latency["teacher"], speed["teacher"])
    s_entry = _model_entry(
        s_cost, d.student_onnx, out_dir, latency["student"], speed["student"], floor
    )
    t_entry.update(**empty_return)
    s_entry.update(
        bake_ms=bake.p50_us / 1e3,
        hypernet_macs_per_bake=hn_cost["macs_per_bake"],
        **empty_return,
    )
    return {
        "name": name,
        "file": str(source.file),
        "set": source.set,
        "fingerprint": task.robot.fingerprint,
        "n_limbs": task.robot.n_limbs,
        "n_actuators": task.robot.n_actuators,
        "obs_dim": d.teacher.n_limbs * d.teacher.proprio_dim,
        "physics_steps_per_s": speed["physics"].steps_per_s,
        "teacher": t_entry,
        "student": s_entry,
    }


def _call_text(**kwargs: Any) -> str:
    """``run_benchmark(...)`` as called, for the report's ``command`` field."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"hd_deploy.bench.run_benchmark({args})"


def run_benchmark(
    teacher: str | Path | None = None,
    student: str | Path | None = None,
    robots: Sequence[str | Path] | None = None,
    *,
    out_dir: str | Path = "bench_out",
    episodes: int = DEFAULT_EPISODES,
    returns: bool = True,
    reference: bool = False,
    calls: int = DEFAULT_CALLS,
    throughput_steps: int = DEFAULT_STEPS,
    bake_repeats: int = DEFAULT_BAKE_REPEATS,
    seed: int = 0,
    workers: int = 1,
    plots: bool = True,
    show_progress: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Benchmark a teacher against its distilled student on every robot.

    Args:
        teacher: Teacher checkpoint folder (default: the shipped teacher).
        student: Student checkpoint folder (default: the shipped student).
        robots: MJCF files or folders, each a robot set (default: the bundled robots).
        out_dir: Where ``report.json``, ``report.md``, the plots and ``onnx/`` go.
        episodes: Episodes per robot and policy for the returns (seeds ``(seed, e)``).
        returns: Measure returns (False: every return field is null).
        reference: Also profile the paper-sized architectures on a 12-limb robot.
        calls: Timed calls per backend for each latency measurement.
        throughput_steps: Control steps timed per control-loop measurement.
        bake_repeats: Timed bakes per robot (the median is reported).
        seed: Seed of observations, resets and episodes.
        workers: Worker processes for the returns (1: in this process).
        plots: Write the PNG plots.
        show_progress: Show a rich progress bar.
        command: The command line recorded in the report (default: this call).

    Returns:
        The report dict, also written to ``out_dir/report.json``.

    Raises:
        FileNotFoundError: No checkpoint given and none shipped.
        CheckpointError: A checkpoint cannot be read or is of the wrong kind.
        MorphologyError: A robot cannot be read.
        ConfigError: A count is out of range.
    """
    from hd_deploy.train.shipped import shipped

    call = _call_text(
        teacher=None if teacher is None else str(teacher),
        student=None if student is None else str(student),
        robots=None if robots is None else [str(r) for r in robots],
        out_dir=str(out_dir),
        episodes=episodes,
        returns=returns,
        reference=reference,
        calls=calls,
        throughput_steps=throughput_steps,
        bake_repeats=bake_repeats,
        seed=seed,
        workers=workers,
    )
    for label, value, low in (
        ("episodes", episodes, 1),
        ("calls", calls, 1),
        ("throughput_steps", throughput_steps, 1),
        ("bake_repeats", bake_repeats, 1),
        ("workers", workers, 1),
    ):
        if value < low:
            raise ConfigError(f"{label} must be >= {low}, got {value}")
    t_path = Path(teacher) if teacher is not None else shipped("teacher")
    s_path = Path(student) if student is not None else shipped("student")
    t_model, s_model = load_teacher(t_path), load_student(s_path)
    hashes = (checkpoint_hash(t_path), checkpoint_hash(s_path))
    infos = {"teacher": read_checkpoint_info(t_path), "student": read_checkpoint_info(s_path)}
    sources = robot_sources(robots)
    out = Path(out_dir)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    plan = TimingPlan.for_calls(calls)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    units = 3 * len(sources) + (2 if returns else 0) + (3 if reference else 0)
    progress = Progress(units, show=show_progress)
    entries: list[dict[str, Any]] = []
    ref_entry = None
    with single_thread(), progress.running():
        taken: set[str] = set()
        for src in sources:
            entries.append(
                profile_robot(
                    t_model,
                    s_model,
                    src,
                    out_dir=out,
                    stem=_file_stem(src.file.stem, taken),
                    hashes=hashes,
                    plan=plan,
                    throughput_steps=throughput_steps,
                    bake_repeats=bake_repeats,
                    seed=seed,
                    progress=progress,
                )
            )
        if returns:
            _add_returns(
                entries,
                sources,
                t_path,
                s_path,
                episodes=episodes,
                seed=seed,
                workers=workers,
                progress=progress,
            )
        if reference:
            from hd_deploy.bench.reference import profile_reference

            ref_entry = profile_reference(
                out / "onnx", plan=plan, bake_repeats=bake_repeats, seed=seed, progress=progress
            )
    training = {k: read_training_robots(i) for k, i in infos.items()}
    for e in entries:
        e["ratios"] = robot_ratios(e["teacher"], e["student"])
        e["seen_in_training"] = {k: i.trained_on(e["fingerprint"]) for k, i in infos.items()}
        e["nearest_training"] = {
            k: None if t is None
            else t.nearest(fingerprint_and_place(e["file"], t.places.shape[1])[1]).to_dict()
            for k, t in training.items()
        }  # fmt: skip
    settings = {
        "teacher": str(t_path),
        "student": str(s_path),
        "teacher_hash": hashes[0],
        "student_hash": hashes[1],
        "robot_sources": [str(r) for r in robots] if robots else [BUNDLED_SET, BUNDLED_SEEN_SET],
        "episodes": episodes if returns else None,
        "seed": seed,
        "returns": returns,
        "latency": plan.to_dict(),
        "throughput_steps": throughput_steps,
        "bake_repeats": bake_repeats,
        "reference": reference,
    }
    models = {
        "teacher": {"config": t_model.config.to_dict()},
        "student": {
            "config": s_model.config.to_dict(),
            "hypernet_params": count_params(s_model),
        },
    }
    report = assemble(
        command=command or call,
        created=created,
        settings=settings,
        models=models,
        robots=entries,
        reference=ref_entry,
    )
    if plots:
        report["plots"] = [p.name for p in write_plots(report, out)]
    write_report(report, out)
    return report


def _add_returns(
    entries: list[dict[str, Any]],
    sources: Sequence[RobotSource],
    t_path: Path,
    s_path: Path,
    *,
    episodes: int,
    seed: int,
    workers: int,
    progress: Progress,
) -> None:
    from hd_deploy.train.rollout import evaluate

    files = [s.file for s in sources]
    for kind, path in (("teacher", t_path), ("student", s_path)):
        progress.status(f"returns: {kind}, {episodes} episodes x {len(files)} robots")
        result = evaluate(
            kind, path, files, episodes=episodes, seed=seed, workers=workers, show_progress=False
        )
        for entry, row in zip(entries, result["robots"], strict=True):
            entry[kind].update(
                return_mean=row["return_mean"],
                return_std=row["return_std"],
                returns=row["returns"],
                episode_length_mean=row["episode_length_mean"],
            )
        progress.advance()
