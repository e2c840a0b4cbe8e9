"""hd-bench: teacher against baked student, side by side on every robot."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from hd_deploy.cli.common import app, user_errors

bench_app = app(
    "Benchmark the teacher against the baked student: parameters, MACs, latency, "
    "control-loop throughput and return, per robot."
)


@bench_app.command("bench")
@user_errors
def bench(
    ctx: typer.Context,
    teacher: Annotated[
        Path | None, typer.Option(help="Teacher checkpoint folder (default: the shipped one).")
    ] = None,
    student: Annotated[
        Path | None, typer.Option(help="Student checkpoint folder (default: the shipped one).")
    ] = None,
    robots: Annotated[
        list[Path] | None,
        typer.Option(
            "--robots",
            help="MJCF file or folder, one robot set each (repeatable; default: "
            "the bundled robots).",
        ),
    ] = None,
    episodes: Annotated[int, typer.Option(help="Episodes per robot and policy.")] = 2,
    reference: Annotated[
        bool, typer.Option(help="Also profile the paper-sized architectures on 12 limbs.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("bench_out"),
    no_returns: Annotated[
        bool, typer.Option("--no-returns", help="Skip the return measurement.")
    ] = False,
    calls: Annotated[int, typer.Option(help="Timed latency calls per backend.")] = 2000,
    steps: Annotated[int, typer.Option(help="Control steps per throughput measurement.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of observations and episodes.")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes for the returns.")] = 1,
) -> None:
    """Write report.json, report.md, PNG plots and the ONNX controllers to --out."""
    from rich.console import Console

    from hd_deploy.bench import run_benchmark
    from hd_deploy.bench.render import macs_disagreements
    from hd_deploy.bench.terminal import rich_tables
    from hd_deploy.train.shipped import shipped

    for flag, path, kind in (("--teacher", teacher, "teacher"), ("--student", student, "student")):
        if path is None:
            try:
                shipped(kind)
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"no shipped {kind} checkpoint in this package; pass {flag} PATH"
                ) from None
        elif not path.exists():
            raise FileNotFoundError(f"{flag} {path}: no such checkpoint folder")
    command = _command_line(ctx)
    report = run_benchmark(
        teacher,
        student,
        robots,
        out_dir=out,
        episodes=episodes,
        returns=not no_returns,
        reference=reference,
        calls=calls,
        throughput_steps=steps,
        seed=seed,
        workers=workers,
        show_progress=sys.stderr.isatty(),
        command=command,
    )
    console = Console()
    for table in rich_tables(report):
        console.print(table)
        console.print()
    bad = macs_disagreements(report)
    if bad:
        console.print(f"[red]fvcore and analytic MAC counts disagree for: {', '.join(bad)}")
    console.print(
        f"report: {out / 'report.md'}, {out / 'report.json'}; plots: "
        + ", ".join(str(out / p) for p in report["plots"])
    )


def _command_line(ctx: typer.Context) -> str:
    """``hd-bench`` with the options given on the command line, as parsed."""
    words = ["hd-bench"]
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if source is None or source.name != "COMMANDLINE":
            continue
        flag = max(param.opts, key=len)
        value = ctx.params[name]
        if isinstance(value, bool):
            words.append(flag if value else (param.secondary_opts or [flag])[0])
        elif isinstance(value, (list, tuple)):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)
