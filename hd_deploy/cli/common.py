"""Shared pieces of the thin typer commands.

User mistakes (the toolkit's own errors, :class:`~hd_deploy.errors.HdError`: bad robot
files, wrong checkpoints, settings out of range; and missing or existing paths) print one
line and exit with status 2. Anything else is a bug and keeps its traceback. The toolkit's
warnings (:class:`~hd_deploy.errors.HdWarning`: a setting that is slow on this machine,
say) print one ``warning:`` line and the work goes on.
"""

from __future__ import annotations

import contextlib
import functools
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import typer

from hd_deploy.envs.errors import WorkerError
from hd_deploy.errors import ConfigError, HdError, HdWarning

F = TypeVar("F", bound=Callable)
USER_ERRORS: tuple[type[BaseException], ...] = (HdError, FileNotFoundError, FileExistsError)


def user_errors(fn: F) -> F:
    """Turn known user errors into one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning(warnings.showwarning)
                return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except WorkerError as exc:  # not the user's mistake, but one line says it all
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:  # Ctrl-C (a second one, in a training loop)
            typer.secho("interrupted", fg=typer.colors.RED, err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _show_warning(previous: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints the toolkit's own warnings (:class:`HdWarning`)
    as one yellow line and hands the others to ``previous`` (Python's, or a hook such as
    pytest's or ``logging.captureWarnings``)."""

    def show(message, category, *args, **kwargs) -> None:
        if issubclass(category, HdWarning):
            typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
        else:
            previous(message, category, *args, **kwargs)

    return show


def resume_hint(stopped: bool, command: str, out: Path) -> None:
    """After a run a signal stopped (its checkpoint written): how to go on."""
    if stopped:
        typer.echo(f"stopped by a signal; continue with: {command} --resume --out {out}")


class OutputError(HdError):
    """An output path that cannot be written (checked before the work starts)."""


def writable(path: Path | None, option: str, *, folder: bool = False) -> None:
    """Fail now, naming ``option``, if ``path`` (a file, or a folder) cannot be written.

    Nothing is created: the nearest existing folder on the way must be a writable folder.

    Raises:
        OutputError: It is a file, or not writable.
    """
    if path is None:
        return
    import os

    if not folder and path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; name a file")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file; name a folder")
    target = path if folder else path.parent
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        raise OutputError(f"{option} {path}: cannot create it inside {target}, a file")
    if not os.access(target, os.W_OK):
        raise OutputError(f"{option} {path}: {target} is not writable")


def given(**options: Any) -> dict[str, Any]:
    """The options the user set: those not ``None`` (a config's default stands for the rest)."""
    return {key: value for key, value in options.items() if value is not None}


def resume_keeps(
    resume: bool,
    out: Path,
    options: dict[str, tuple[Any, str]],
    *,
    can_change: str = "",
    configs: Mapping[str, Any] | None = None,
) -> None:
    """Refuse, on ``--resume``, options that differ from the run's own settings.

    A resumed run goes on with the settings in ``out/run.json``. ``options`` maps each option
    it keeps (``"--epochs"``) to the value given (``None``: not given) and where ``run.json``
    holds the run's (``"distill.epochs"``). The run's own value is accepted, so a script may
    repeat the command that started a run with ``--resume`` added; another would be ignored,
    so it is refused. ``can_change`` names the options a resume does take, for the message.
    ``configs`` maps a section of ``run.json`` (``"distill"``) to its config class, to read
    it as the run will: a setting recorded before it existed at the value it loads with.
    Without a readable ``run.json`` nothing is checked: resuming then says what is wrong.

    Raises:
        ConfigError: ``resume`` and an option given with a value other than the run's.
    """
    if not resume:
        return
    try:
        meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return
    for section, cls in (configs or {}).items():
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            meta[section] = cls.from_dict(meta[section]).to_dict()  # else as recorded
    clash = []
    for flag, (value, where) in options.items():
        if value is None:
            continue
        saved: Any = meta
        for key in where.split("."):
            saved = saved.get(key) if isinstance(saved, dict) else None
        same = (
            saved is not None and Path(saved).resolve() == value.resolve()
            if isinstance(value, Path)
            else saved == value
        )
        if not same:
            theirs = _as_given(flag, saved) if isinstance(saved, bool) else saved
            clash.append(f"{_as_given(flag, value)} (the run's: {theirs})")
    if clash:
        also = f"; it can change {can_change}" if can_change else ""
        raise ConfigError(
            f"--resume goes on with the run's own settings ({out / 'run.json'}): drop "
            f"{', '.join(clash)}{also}"
        )


def _as_given(flag: str, value: Any) -> str:
    """An option as typed: ``--epochs 80``; a switch as ``--clip-labels`` or its ``--no-``."""
    if isinstance(value, bool):
        return flag if value else f"--no-{flag.removeprefix('--')}"
    return f"{flag} {value}"


def one_size(*, reference: bool, tiny: bool) -> None:
    """Refuse ``--reference`` together with ``--tiny``: two sizes for one model.

    Raises:
        ConfigError: Both are set.
    """
    if reference and tiny:
        raise ConfigError("--reference and --tiny name two sizes; pick one")


def app(help_text: str) -> typer.Typer:
    """A one-command typer app with tracebacks off for the user."""
    return typer.Typer(add_completion=False, help=help_text, pretty_exceptions_enable=False)
