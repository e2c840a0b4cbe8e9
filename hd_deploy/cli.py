"""Thin typer commands: parse options, call a library function, print the result.

User mistakes (bad robot files, wrong checkpoints, missing folders) print one line and
exit with status 2; no traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from hd_deploy.morphology.errors import MorphologyError

F = TypeVar("F", bound=Callable)
USER_ERRORS: tuple[type[BaseException], ...] = (
    MorphologyError,
    FileNotFoundError,
    FileExistsError,
    ValueError,
)


def _user_errors(fn: F) -> F:
    """Turn known user errors into one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _app(help_text: str) -> typer.Typer:
    return typer.Typer(add_completion=False, help=help_text, pretty_exceptions_enable=False)


# --- hd-inspect ---------------------------------------------------------------------

inspect_app = _app("Print what the toolkit sees in a robot.")


@inspect_app.command()
@_user_errors
def inspect(
    robot: Annotated[Path, typer.Argument(help="MJCF robot file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    max_limbs: Annotated[int, typer.Option(help="Maximum limbs a universal policy hosts.")] = 12,
) -> None:
    """Limbs, joint slots, actuators, observation/context sizes and fingerprint."""
    from hd_deploy.morphology.inspect import describe_robot

    info = describe_robot(robot, max_limbs=max_limbs)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{info['name']}  fingerprint {info['fingerprint']}")
    for col in ("#", "limb", "parent", "joint slots (range deg, actuator gear)"):
        table.add_column(col)
    for limb in info["limbs"]:
        slots = "; ".join(
            f"{s['joint']} {s['range_deg']} "
            + (f"gear {s['actuator']['gear']:g}" if s["actuator"] else "unactuated")
            for s in limb["joint_slots"]
        )
        table.add_row(str(limb["index"]), limb["name"], limb["parent"] or "-", slots or "(base)")
    console = Console()
    console.print(table)
    console.print(
        f"limbs {info['n_limbs']}  actuators {info['n_actuators']}  "
        f"obs {info['obs_dim']} ({info['proprio_per_limb']}/limb)  "
        f"context {info['context_dim']} ({info['context_per_limb']}/limb)"
    )


# --- hd-generate --------------------------------------------------------------------

generate_app = _app("Write random UNIMAL-style robots (MJCF).")


@generate_app.command()
@_user_errors
def generate(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    count: Annotated[int, typer.Option(help="How many robots.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first robot.")] = 0,
) -> None:
    """Generate COUNT robots named gen-<seed>.xml into OUT."""
    from hd_deploy.morphology.generator import write_robots

    paths = write_robots(out, count, seed=seed)
    typer.echo(f"wrote {len(paths)} robots to {out}")


# --- hd-train -----------------------------------------------------------------------

train_app = _app("Train the universal transformer teacher with PPO.")


@train_app.command()
@_user_errors
def train(
    robots: Annotated[
        list[Path] | None, typer.Argument(help="MJCF files or folders (default: bundled robots).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/teacher"),
    steps: Annotated[int | None, typer.Option(help="Total environment steps.")] = None,
    n_envs: Annotated[int | None, typer.Option(help="Parallel environments.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    reference: Annotated[
        bool, typer.Option(help="Paper-sized teacher and PPO settings (GPU-sized).")
    ] = False,
    tiny: Annotated[bool, typer.Option(help="Tiny model and run, for smoke tests.")] = False,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
) -> None:
    """Train a teacher; checkpoints, progress.csv and learning_curve.png go to --out."""
    import dataclasses

    from hd_deploy.models import TeacherConfig
    from hd_deploy.morphology.sources import bundled_robots, resolve_robots
    from hd_deploy.train.config import PPOConfig
    from hd_deploy.train.ppo import train_teacher

    files = resolve_robots(robots) if robots else bundled_robots()
    if reference:
        ppo, model = PPOConfig.reference(), TeacherConfig.reference()
    elif tiny:
        ppo, model = PPOConfig.tiny(), TeacherConfig.tiny()
    else:
        ppo, model = PPOConfig(), TeacherConfig.small()
    changes = {"seed": seed}
    for key, value in (("total_steps", steps), ("n_envs", n_envs), ("n_workers", workers)):
        if value is not None:
            changes[key] = value
    ppo = dataclasses.replace(ppo, **changes)
    result = train_teacher(
        files, out, teacher_config=model, ppo=ppo, resume=resume, show_progress=sys.stderr.isatty()
    )
    typer.echo(
        f"teacher: {result.env_steps} env steps, recent return {result.return_recent:.1f}, "
        f"checkpoint {result.run_dir / 'checkpoint'}"
    )
