"""hd-inspect and hd-generate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hd_deploy.cli.common import app, user_errors

# --- hd-inspect ---------------------------------------------------------------------

inspect_app = app("Print what the toolkit sees in a robot.")


@inspect_app.command()
@user_errors
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

generate_app = app("Write random UNIMAL-style robots (MJCF).")


@generate_app.command()
@user_errors
def generate(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    count: Annotated[int, typer.Option(help="How many robots.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first robot.")] = 0,
) -> None:
    """Generate COUNT robots named gen-<seed>.xml into OUT."""
    from hd_deploy.morphology.generator import write_robots

    paths = write_robots(out, count, seed=seed)
    typer.echo(f"wrote {len(paths)} robots to {out}")
