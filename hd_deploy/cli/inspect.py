"""hd-inspect and hd-generate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hd_deploy.cli.common import app, user_errors

if TYPE_CHECKING:
    from rich.table import Table

    from hd_deploy.morphology.nearness import Nearest

# --- hd-inspect ---------------------------------------------------------------------

inspect_app = app("Print what the toolkit sees in a robot.")


@inspect_app.command()
@user_errors
def inspect(
    robot: Annotated[Path, typer.Argument(help="MJCF robot file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    max_limbs: Annotated[int, typer.Option(help="Maximum limbs a universal policy hosts.")] = 12,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Also find the robot's nearest among this checkpoint's training robots, by "
            "morphology context (a folder, or teacher / student for the shipped ones)."
        ),
    ] = None,
) -> None:
    """Limbs, joint slots, actuators, observation/context sizes and fingerprint."""
    from hd_deploy.morphology.inspect import describe_robot

    info = describe_robot(robot, max_limbs=max_limbs)
    near = _nearest(robot, checkpoint) if checkpoint is not None else None
    if as_json:
        if near is not None:
            info["nearest_training"] = {"checkpoint": checkpoint, **near.to_dict()}
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(inspect_table(info))
    console.print(
        f"limbs {info['n_limbs']}  actuators {info['n_actuators']}  "
        f"obs {info['obs_dim']} ({info['proprio_per_limb']}/limb)  "
        f"context {info['context_dim']} ({info['context_per_limb']}/limb)"
    )
    if near is not None:
        from hd_deploy.cli.deploy import nearest_line

        typer.echo(nearest_line(info["name"], near))


def _nearest(robot: Path, checkpoint: str) -> Nearest:
    """The robot's nearest training robot of ``checkpoint`` (a path, or the shipped
    ``teacher`` / ``student``).

    Raises:
        CheckpointError: The checkpoint cannot be read or records no robot contexts.
    """
    from hd_deploy.models.checkpoint import (
        CheckpointError,
        read_checkpoint_info,
        read_training_robots,
    )
    from hd_deploy.morphology.nearness import fingerprint_and_place
    from hd_deploy.train.shipped import resolve_policy

    kind, path = resolve_policy(checkpoint)
    if kind == "onnx":
        raise CheckpointError(f"{path}: an exported controller; pass the checkpoint it came from")
    ckpt = read_checkpoint_info(path)
    training = read_training_robots(ckpt)
    if training is None:
        raise CheckpointError(
            f"{path}: records no training robots' contexts (scripts/add_contexts.py adds them)"
        )
    return training.nearest(fingerprint_and_place(robot, ckpt.config.max_limbs)[1])


def inspect_table(info: dict) -> Table:
    """A :func:`~hd_deploy.morphology.inspect.describe_robot` dict as a table that fits 80
    columns: one line per joint slot, its range and its actuator's gear."""
    from rich.table import Table

    table = Table(title=f"{info['name']}\nfingerprint {info['fingerprint']}")
    table.add_column("#", justify="right", no_wrap=True)
    for col in ("limb", "parent", "joint"):
        table.add_column(col, overflow="fold")
    table.add_column("range deg", no_wrap=True)
    table.add_column("gear", justify="right", no_wrap=True)
    for limb in info["limbs"]:
        slots = limb["joint_slots"]
        ranges = [
            f"{s['range_deg'][0]:g} to {s['range_deg'][1]:g}" if s["range_deg"] else "unlimited"
            for s in slots
        ]
        gears = [f"{s['actuator']['gear']:g}" if s["actuator"] else "-" for s in slots]
        table.add_row(
            str(limb["index"]),
            limb["name"],
            limb["parent"] or "-",
            "\n".join(s["joint"] for s in slots) or "(base)",
            "\n".join(ranges),
            "\n".join(gears),
        )
    return table


# --- hd-generate --------------------------------------------------------------------

generate_app = app("Write random UNIMAL-style robots (MJCF).")


@generate_app.command()
@user_errors
def generate(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    count: Annotated[int, typer.Option(help="How many robots.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first robot.")] = 0,
    stand_steps: Annotated[
        int,
        typer.Option(
            min=0,
            help="Keep only robots that stay up this many control steps (50 a second) with "
            "their motors off, skipping the seeds of those that fold; 0 keeps every draw.",
        ),
    ] = 250,
) -> None:
    """Generate COUNT robots named gen-<seed>.xml into OUT (seeds counting up from SEED)."""
    from hd_deploy.morphology.generator import write_robots

    paths = write_robots(out, count, seed=seed, stand_steps=stand_steps)
    skipped = int(paths[-1].stem.removeprefix("gen-")) - seed + 1 - len(paths) if paths else 0
    folded = f" ({skipped} draws skipped: they fold with the motors off)" if skipped else ""
    typer.echo(f"wrote {len(paths)} robots to {out}{folded}")
