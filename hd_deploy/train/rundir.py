"""Crash-safe replacement of a run's checkpoint folder.

A checkpoint is written into ``<name>.tmp``, marked complete (a ``.complete`` file written
last), then swapped in: ``<name>`` -> ``<name>.old``, ``<name>.tmp`` -> ``<name>``, then
``<name>.old`` removed. A kill can land between any two of those steps; :func:`recover`
(called before a run resumes) finishes or undoes the swap, so that ``<name>`` holds the
newest complete checkpoint wherever the kill landed.

A trainer that collects more data during the run (a DAgger round) writes a checkpoint
recording how many samples its data held, collects, then replaces its data file
atomically; :func:`round_saved` tells a resumed run that a kill landed after that
replacement, so the round is not collected twice.

One trainer at a time writes a run folder (:func:`exclusive_run`): a second one, say a
``--resume`` typed while the run goes on in the background, fails at once.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hd_deploy.errors import ConfigError, HdError
from hd_deploy.files import atomic_write_text
from hd_deploy.models.checkpoint import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are not locked
    fcntl = None  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])


class RunInUseError(HdError):
    """Another process is training the same run folder."""


COMPLETE = ".complete"


def staging(dst: Path) -> Path:
    """An empty ``<dst>.tmp`` folder to write the next checkpoint into."""
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def swap_in(tmp: Path, dst: Path) -> None:
    """Mark the fully written ``tmp`` complete and make it ``dst`` (see the module doc)."""
    (tmp / COMPLETE).write_text("")
    old = dst.with_name(dst.name + ".old")
    if dst.exists():
        if old.exists():
            shutil.rmtree(old)  # dst is complete, so a leftover .old is not needed
        dst.rename(old)
    tmp.rename(dst)
    if old.exists():
        shutil.rmtree(old)


def recover(dst: Path) -> bool:
    """Repair an interrupted :func:`swap_in`; True when ``dst`` then holds a checkpoint."""
    tmp = dst.with_name(dst.name + ".tmp")
    old = dst.with_name(dst.name + ".old")
    if tmp.is_dir() and (tmp / COMPLETE).exists():
        swap_in(tmp, dst)  # the newest checkpoint was complete: finish its swap
    elif not dst.exists() and old.is_dir():
        old.rename(dst)  # a swap that never marked .tmp complete: keep the previous
    for leftover in (tmp, old):
        if leftover.exists() and dst.exists():
            shutil.rmtree(leftover)
    return dst.is_dir()


def round_saved(state: Mapping[str, Any] | None, epoch: int, n_samples: int) -> bool:
    """True when the data round due at ``epoch`` was saved before the run was killed.

    A trainer writes a checkpoint whose state holds ``epoch`` and ``samples`` (the samples
    its data held) just before collecting a round, and saves the grown data only after the
    collection. A run resumed from that very checkpoint whose data hold more samples than
    it records holds the round already.

    Args:
        state: The trainer state the run resumed from (None for a new run).
        epoch: The epoch at which the round is due.
        n_samples: Samples in the data loaded from disk.
    """
    if state is None or state["epoch"] != epoch or "samples" not in state:
        return False  # a new run, a later epoch, or a checkpoint older than this record
    return n_samples > int(state["samples"])


def read_run(run_dir: Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The run record ``run_dir/run.json`` a resumed run continues from.

    Raises:
        CheckpointError: Missing, not JSON, not an object, or without one of ``keys``
            (one line naming the file).
    """
    path = run_dir / "run.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; this folder holds no run to resume") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable run record ({exc}); start a new run") from None
    missing = [k for k in keys if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise CheckpointError(f"{path}: not a run record of this kind (no {missing[0]!r})")
    return meta


def apply_changes(
    run_dir: Path,
    meta: dict[str, Any],
    section: str,
    config: Any,
    asked: Mapping[str, Any] | None,
    resumable: tuple[str, ...],
    after: tuple[str, int],
    check: Callable[[Any], object] | None = None,
) -> Any:
    """The settings a resumed run goes on with: its own, changed where asked, recorded.

    ``config`` is the run's settings (a frozen config dataclass, from ``meta[section]``);
    ``asked`` the settings given on resume (a value ``None``: not given; ``asked`` ``None``:
    none). Those that differ are applied, written to ``run.json`` and appended to its
    ``changes`` list with where the run stood (``after``, such as ``("after_iteration",
    305)``), so a copy resumed with other settings is a recorded branch. ``check`` sees the
    changed config before anything is written.

    Returns:
        The config the run goes on with (``config`` itself when nothing changes).

    Raises:
        ConfigError: ``asked`` names a setting not in ``resumable``, or a value the config
            (or ``check``) refuses; ``run.json`` is then unchanged.
    """
    asked = asked or {}
    fixed = sorted(set(asked) - set(resumable))
    if fixed:
        can = ", ".join(resumable)
        raise ConfigError(f"a resumed run keeps its {', '.join(fixed)}; it can change {can}")
    changed = {k: v for k, v in asked.items() if v is not None and getattr(config, k) != v}
    if not changed:
        return config
    new = dataclasses.replace(config, **changed)  # validated here
    if check is not None:
        check(new)
    meta[section] = new.to_dict()
    meta.setdefault("changes", []).append(
        {after[0]: after[1], **{k: [getattr(config, k), v] for k, v in changed.items()}}
    )
    atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=2))
    return new


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder ``run_dir`` for this process while it trains.

    The lock is ``flock`` on a hidden file beside the folder (``.<name>.lock``, holding the
    pid, removed on release); it dies with its process, so a killed run leaves nothing
    that blocks its ``--resume``. Where ``flock`` is missing (Windows) nothing is locked.

    Raises:
        RunInUseError: Another process holds it.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f".{run_dir.name}.lock"
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise RunInUseError(
                f"{run_dir}: another process (pid {pid}) is training this run; wait for it "
                f"or stop it (Ctrl-C there, or kill {pid}: it stops with a checkpoint)"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # before the lock goes, with the file's closing


def exclusive_run(fn: F) -> F:
    """Decorator: ``fn`` holds :func:`run_lock` on its ``run_dir`` argument while it runs."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        run_dir = Path(signature.bind(*args, **kwargs).arguments["run_dir"])
        with run_lock(run_dir):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
