"""Shared pieces of the thin typer commands.

User mistakes (bad robot files, wrong checkpoints, missing folders) print one line and
exit with status 2; no traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import typer

from hd_deploy.envs.errors import WorkerError
from hd_deploy.morphology.errors import MorphologyError

F = TypeVar("F", bound=Callable)
USER_ERRORS: tuple[type[BaseException], ...] = (
    MorphologyError,
    FileNotFoundError,
    FileExistsError,
    ValueError,
)


def user_errors(fn: F) -> F:
    """Turn known user errors into one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except WorkerError as exc:  # not the user's mistake, but one line says it all
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def app(help_text: str) -> typer.Typer:
    """A one-command typer app with tracebacks off for the user."""
    return typer.Typer(add_completion=False, help=help_text, pretty_exceptions_enable=False)
