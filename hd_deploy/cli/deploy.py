"""hd-export and hd-run.

hd-run must start fast and stay torch-free: everything it needs is imported inside the
command from :mod:`hd_deploy.runtime`; only hd-export imports the exporters (and torch).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from hd_deploy.cli.common import app, user_errors, writable
from hd_deploy.errors import HdError
from hd_deploy.files import atomic_write_text

if TYPE_CHECKING:
    from hd_deploy.morphology.nearness import Nearest

F = TypeVar("F", bound=Callable)


class _UserError(HdError):
    """A user-facing failure of another type (rendering), re-raised so ``user_errors`` prints it."""


def _render_errors(fn: F) -> F:
    """Let ``user_errors`` also report rendering problems (no GL, no MP4 writer, no display)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from hd_deploy.runtime.render import RenderError

        try:
            return fn(*args, **kwargs)
        except RenderError as exc:
            raise _UserError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


# --- hd-export ----------------------------------------------------------------------

export_app = app("Bake per-robot controllers and export them as verified ONNX files.")


@export_app.command()
@user_errors
def export(
    robots: Annotated[list[Path], typer.Argument(help="MJCF robot files or folders of them.")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Student checkpoint (a teacher one with --teacher); default: the shipped one."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("controllers"),
    dynamic_batch: Annotated[
        bool, typer.Option("--dynamic-batch", help="Symbolic batch dimension (default: 1).")
    ] = False,
    teacher: Annotated[
        bool,
        typer.Option(
            "--teacher", help="Export the transformer teacher (<robot>.teacher.onnx) instead."
        ),
    ] = False,
    format: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            help="onnx (<robot>.onnx) and/or c (<robot>.h + <robot>.c, C99, no runtime); "
            "repeat for both. [default: onnx]",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            help="Run one episode with each ONNX controller and report its return; warn "
            "when it barely moves the robot."
        ),
    ] = True,
) -> None:
    """Bake, export to OUT/<robot>.onnx and verify a controller for every ROBOT."""
    from hd_deploy.exporters import ExportResult, export_robots

    writable(out, "--out", folder=True)

    placed: set[str] = set()

    def report(result) -> None:
        typer.echo(result.summary())
        if result.nearest is not None and result.robot not in placed:
            placed.add(result.robot)
            typer.echo(nearest_line(result.robot, result.nearest))
        if check and isinstance(result, ExportResult):
            typer.echo(_check_episode(result.path, result.robot))

    results = export_robots(
        robots,
        checkpoint=checkpoint,
        out_dir=out,
        dynamic_batch=dynamic_batch,
        teacher=teacher,
        formats=tuple(format or ("onnx",)),
        progress=len(robots) > 1 or any(Path(r).is_dir() for r in robots),
        on_result=report,
    )
    typer.echo(f"exported {len(results)} controller(s) to {out}")


def nearest_line(robot: str, near: Nearest) -> str:
    """Where the robot lies against the model's training robots, with a warning when it
    is unlike all of them."""
    from hd_deploy.morphology.nearness import FAR

    line = f"{robot}: {near.describe()}"
    if not near.far:
        return line
    return (
        f"{line}\nwarning: {robot} is unlike every robot this model trained on (more than "
        f"{FAR:g}x their spacing from the nearest); controllers for such robots walk far "
        "worse than for familiar ones (the model card's limits); hd-tune fine-tunes one on "
        "its robot"
    )


def _check_episode(path: Path, robot: str) -> str:
    """One episode of the exported file in the runtime's loop, in one line, with a warning
    when the robot falls or barely moves."""
    from hd_deploy.envs.task import TaskConfig
    from hd_deploy.runtime import load_controller, run_episodes
    from hd_deploy.runtime.episodes import STANDSTILL_SPEED

    run, full = run_episodes(load_controller(path), episodes=1, seed=0), TaskConfig().episode_steps
    steps = run.lengths[0]
    line = (
        f"{robot}: one episode (seed 0): return {run.return_mean:.1f} over {steps} steps, "
        f"mean forward speed {run.mean_speed:.2f} m/s"
    )
    if run.unstable_episodes:
        problem = f"the simulation diverged after {steps} of {full} steps"
    elif steps < full:
        problem = f"{robot} fell after {steps} of {full} steps"
    elif run.mean_speed < STANDSTILL_SPEED:
        problem = f"{robot} barely moves (under {STANDSTILL_SPEED} m/s)"
    else:
        return line
    return (
        f"{line}\nwarning: {problem} under this controller; the policy does not walk every "
        "morphology (the model card's limits): hd-tune fine-tunes it on this robot"
    )


# --- hd-tune ------------------------------------------------------------------------

tune_app = app("Fine-tune baked controllers on their robots with PPO, then export them.")

TUNE_STOP = (
    "stopping at the end of this {unit}: this robot's controller is evaluated and exported, "
    "the robots after it are left; Ctrl-C again stops at once"
)


def _episodes(n: int) -> str:
    return f"{n} episode" if n == 1 else f"{n} episodes"


class _TuneStopped(Exception):
    """Raised before the robot after the one a stop request came in for."""


@tune_app.command()
@user_errors
def tune(
    robots: Annotated[list[Path], typer.Argument(help="MJCF robot files or folders of them.")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="Student checkpoint; default: the shipped one.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("controllers"),
    steps: Annotated[
        int,
        typer.Option(
            min=1,
            help="PPO environment steps per robot, in whole iterations of 2,048 (the "
            "default takes a few minutes a robot on one core).",
        ),
    ] = 400_000,
    seed: Annotated[int, typer.Option(help="Seed of PPO and of the evaluation episodes.")] = 0,
    format: Annotated[
        list[str] | None,
        typer.Option("--format", help="onnx and/or c, as for hd-export. [default: onnx]"),
    ] = None,
) -> None:
    """Bake a controller for every ROBOT, fine-tune it on that robot with PPO, then export
    and verify it as hd-export does.

    A few minutes a robot on one core. The tuned MLP is kept only where its deterministic
    return (3 episodes) beats the bake's; the file's metadata says which ("tuned"). Beside
    each controller: ROBOT.tune.json (returns, learning curve) and ROBOT.tune.png.
    """
    from hd_deploy.exporters import export_robots
    from hd_deploy.stop import GracefulStop
    from hd_deploy.train.config import TuneConfig
    from hd_deploy.train.runlog import progress_bar
    from hd_deploy.train.tune import plot_tuning, tune_baked

    writable(out, "--out", folder=True)
    config = TuneConfig(total_steps=steps, seed=seed)
    stop = GracefulStop("iteration", message=TUNE_STOP)
    done: list[str] = []

    def tuner(mlp, task):
        if stop.requested:  # the robot before this one is exported, in every format
            raise _TuneStopped
        with progress_bar(disable=not sys.stderr.isatty()) as bar:
            job = bar.add_task(task.robot.name, total=steps, status="")

            def show(at: int, recent: float) -> None:
                status = f"training return {recent:.0f}" if recent == recent else ""
                bar.update(job, completed=min(at, steps), status=status)

            result = tune_baked(mlp, task, config, on_iteration=show,
                                should_stop=lambda: stop.requested)  # fmt: skip
        kept = "kept the tuned MLP" if result.improved else "kept the bake (tuning did not beat it)"
        name = task.robot.name
        record = result.record(config)
        doc = {"robot": name, **record, "returns_before": result.returns_before,
               "returns_after": result.returns_after, "curve": result.curve,
               "config": config.to_dict()}  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / f"{name}.tune.json", json.dumps(doc, indent=2) + "\n")
        plot_tuning(result, out / f"{name}.tune.png", title=f"hd-tune {name}")
        typer.echo(
            f"{name}: tuned {result.steps:,} steps in {result.wall_s:.0f} s, "
            f"return {result.return_before:.1f} -> {result.return_after:.1f} "
            f"(deterministic, {_episodes(len(result.returns_before))}): {kept}; "
            f"{out / (name + '.tune.json')}, .png"
        )
        return result.mlp, record

    def report(result) -> None:
        typer.echo(result.summary())
        done.append(result.robot)

    with stop:
        try:
            export_robots(robots, checkpoint=checkpoint, out_dir=out,
                          formats=tuple(format or ("onnx",)), tune=tuner,
                          on_result=report)  # fmt: skip
        except _TuneStopped:
            typer.echo(f"stopped by a signal after {len(set(done))} robot(s); rerun for the rest")
            return
    typer.echo(f"tuned and exported {len(set(done))} controller(s) to {out}")


# --- hd-run -------------------------------------------------------------------------

run_app = app("Run an exported controller on its robot (flat-terrain locomotion).")


class Backend(str, Enum):
    onnx = "onnx"
    numpy = "numpy"
    c = "c"


@run_app.command()
@user_errors
@_render_errors
def run(
    controller: Annotated[Path, typer.Argument(help="Exported controller (.onnx).")],
    robot: Annotated[
        Path | None, typer.Option(help="MJCF robot file (default: the one in the controller).")
    ] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to run.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the reset noise.")] = 0,
    backend: Annotated[
        Backend,
        typer.Option(help="Inference backend (numpy and c: students only; c needs a C compiler)."),
    ] = Backend.onnx,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON.")
    ] = None,
    video: Annotated[
        Path | None, typer.Option(help="Render one more episode to this MP4 file.")
    ] = None,
    viewer: Annotated[bool, typer.Option(help="Watch the episodes in MuJoCo's viewer.")] = False,
    allow_mismatch: Annotated[
        bool, typer.Option(help="Run even if the robot's fingerprint differs.")
    ] = False,
) -> None:
    """Return, episode length, policy latency (p50/p99) and control-loop steps/s."""
    from hd_deploy.runtime import load_controller, run_episodes
    from hd_deploy.runtime.render import record_video, require_display, require_mp4_writer, view

    # Fail before the episodes, not after them, when an output cannot be written or a
    # viewer or video cannot work here.
    writable(json_path, "--json")
    writable(video, "--video")
    if video is not None:
        require_mp4_writer()
    if viewer:
        require_display()
    policy = load_controller(controller, backend.value)
    meta = policy.metadata
    report = run_episodes(
        policy, robot, episodes=episodes, seed=seed, allow_mismatch=allow_mismatch
    )
    typer.echo(f"{controller} ({meta['policy_kind']}, {backend.value} backend)")
    typer.echo(report.summary())
    near, tuned = meta.get("nearest_training"), meta.get("tuned")
    if tuned is not None:
        typer.echo(
            f"tuned on this robot (hd-tune, {tuned.get('steps', 0):,} steps): deterministic "
            f"return {tuned.get('return_before')} as baked, {tuned.get('return_after')} tuned; "
            f"the file holds the {tuned.get('kept', 'tuned')} MLP"
        )
    elif near is not None and near["far"]:
        typer.echo(
            f"warning: {meta['robot_name']} lies {near['distance']:.2f} from the nearest robot "
            f"the model trained on ({near['robot']}), unlike all of them (hd-export's check)"
        )
    if json_path is not None:
        doc = {
            **report.to_dict(),
            "controller": str(controller),
            "backend": backend.value,
            "policy_kind": meta["policy_kind"],
            "robot_fingerprint": meta["robot_fingerprint"],
            "nearest_training": near,
            "tuned": tuned,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_path, json.dumps(doc, indent=2) + "\n")
        typer.echo(f"wrote {json_path}")
    if video is not None:
        has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if "MUJOCO_GL" not in os.environ and sys.platform.startswith("linux") and not has_display:
            # Headless Linux: offscreen EGL (a desktop session keeps MuJoCo's default).
            os.environ["MUJOCO_GL"] = "egl"
        path = record_video(policy, video, robot, seed=seed, allow_mismatch=allow_mismatch)
        typer.echo(f"wrote {path}")
    if viewer:
        view(policy, robot, episodes=episodes, seed=seed, allow_mismatch=allow_mismatch)
