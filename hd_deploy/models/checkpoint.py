"""Checkpoints: weights in safetensors, everything else in JSON; no pickle.

A checkpoint is a directory holding

- ``model.safetensors``: the model's parameters and buffers, except the normaliser's;
- ``checkpoint.json``: ``format_version``, ``kind`` (``"teacher"`` or ``"student"``),
  ``config`` (the config dict), ``normalizer`` (its statistics), ``robots`` (names the
  model was trained on) and ``extra`` (free-form JSON from the trainer).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hd_deploy.errors import HdError
from hd_deploy.models.config import HyperNetConfig, TeacherConfig
from hd_deploy.models.hypernet import HyperNetPolicy
from hd_deploy.models.normalizer import ObsNormalizer
from hd_deploy.models.teacher import TeacherPolicy

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"
_KINDS: dict[str, type[TeacherConfig] | type[HyperNetConfig]] = {
    "teacher": TeacherConfig,
    "student": HyperNetConfig,
}
_NORM_PREFIX = "normalizer."


class CheckpointError(HdError):
    """A checkpoint cannot be read; the one-line message names the file and the problem."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What ``checkpoint.json`` says, validated.

    Attributes:
        path: The checkpoint directory.
        kind: ``"teacher"`` or ``"student"``.
        config: The model config.
        normalizer: Normaliser statistics (``ObsNormalizer.to_dict()`` form).
        robots: Names of the robots the model was trained on.
        extra: Free-form JSON stored by the trainer.
    """

    path: Path
    kind: str
    config: TeacherConfig | HyperNetConfig
    normalizer: dict[str, Any]
    robots: tuple[str, ...]
    extra: dict[str, Any]


def save_checkpoint(
    path_dir: str | Path,
    model: TeacherPolicy | HyperNetPolicy,
    *,
    robots: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory (created if needed; existing files are replaced).

    Args:
        path_dir: Directory to write.
        model: A teacher or a student.
        robots: Names of the robots the model was trained on.
        extra: JSON-serialisable metadata (training step, returns, ...).

    Returns:
        The directory.

    Raises:
        TypeError: ``model`` is neither a teacher nor a student.
        ValueError: ``extra`` or ``robots`` cannot be written as JSON.
    """
    if isinstance(model, TeacherPolicy):
        kind = "teacher"
    elif isinstance(model, HyperNetPolicy):
        kind = "student"
    else:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}")
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": model.config.to_dict(),
        "normalizer": model.normalizer.to_dict(),
        "robots": [str(r) for r in robots],
        "extra": dict(extra or {}),
    }
    try:
        text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata is not plain JSON: {exc}") from exc
    tensors = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(_NORM_PREFIX)
    }
    out = Path(path_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp_w, tmp_m = out / (WEIGHTS_FILE + ".tmp"), out / (META_FILE + ".tmp")
    save_file(tensors, str(tmp_w), metadata={"format": "pt"})
    tmp_m.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp_w, out / WEIGHTS_FILE)
    os.replace(tmp_m, out / META_FILE)
    return out


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Read and validate ``checkpoint.json`` (weights are not touched).

    Args:
        path: Checkpoint directory, or its ``checkpoint.json``.

    Raises:
        CheckpointError: Missing file, bad JSON, wrong version, unknown kind, bad config.
    """
    directory = _directory(path)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        if (directory / "checkpoint" / META_FILE).is_file():
            raise CheckpointError(
                f"{directory}: a run folder, not a checkpoint; pass {directory / 'checkpoint'}"
            )
        raise CheckpointError(f"{meta_path}: no such file")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON: {_first_line(exc)}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: expected a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: format_version {version!r} is not supported (expected {FORMAT_VERSION})"
        )
    kind = meta.get("kind")
    if kind not in _KINDS:
        raise CheckpointError(
            f"{meta_path}: unknown kind {kind!r} (expected one of {list(_KINDS)})"
        )
    missing = sorted({"config", "normalizer", "robots", "extra"} - set(meta))
    if missing:
        raise CheckpointError(f"{meta_path}: missing keys {missing}")
    config_cls = _KINDS[kind]
    try:
        config = config_cls.from_dict(meta["config"])
        ObsNormalizer.from_dict(meta["normalizer"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: {_first_line(exc)}") from exc
    norm = meta["normalizer"]
    if len(norm["mean"]) != config.proprio_dim:
        raise CheckpointError(
            f"{meta_path}: normaliser has {len(norm['mean'])} features, config.proprio_dim is "
            f"{config.proprio_dim}"
        )
    if not isinstance(meta["robots"], list) or not isinstance(meta["extra"], dict):
        raise CheckpointError(f"{meta_path}: 'robots' must be a list and 'extra' an object")
    return CheckpointInfo(
        path=directory,
        kind=kind,
        config=config,
        normalizer=norm,
        robots=tuple(str(r) for r in meta["robots"]),
        extra=meta["extra"],
    )


def load_checkpoint(path: str | Path) -> TeacherPolicy | HyperNetPolicy:
    """Load a teacher or a student, in eval mode.

    Args:
        path: Checkpoint directory, or its ``checkpoint.json``.

    Raises:
        CheckpointError: Anything wrong with either file (one-line message).
    """
    info = read_checkpoint_info(path)
    weights_path = info.path / WEIGHTS_FILE
    tensors = _read_tensors(weights_path)
    model: TeacherPolicy | HyperNetPolicy
    if isinstance(info.config, TeacherConfig):
        model = TeacherPolicy(info.config)
    else:
        model = HyperNetPolicy(info.config)
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(_NORM_PREFIX)}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path}: tensors do not match the config: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}"
        )
    for name, ref in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{weights_path}: shape mismatch for '{name}': file has {tuple(got.shape)}, "
                f"config needs {tuple(ref.shape)}"
            )
        if got.dtype != ref.dtype:
            raise CheckpointError(
                f"{weights_path}: dtype mismatch for '{name}': file has {got.dtype}, "
                f"model needs {ref.dtype}"
            )
    model.load_state_dict(tensors, strict=False)
    model.normalizer.copy_(ObsNormalizer.from_dict(info.normalizer))
    return model.eval()


def load_teacher(path: str | Path) -> TeacherPolicy:
    """Load a teacher checkpoint; a student checkpoint raises :class:`CheckpointError`."""
    return _load_kind(path, "teacher")  # type: ignore[return-value]


def load_student(path: str | Path) -> HyperNetPolicy:
    """Load a student checkpoint; a teacher checkpoint raises :class:`CheckpointError`."""
    return _load_kind(path, "student")  # type: ignore[return-value]


def checkpoint_hash(path: str | Path) -> str:
    """Content hash of a checkpoint, 16 hex digits.

    Hashes the metadata as canonical JSON and every tensor's name, dtype, shape and bytes
    in name order, so it does not depend on how either file happens to be laid out.

    Raises:
        CheckpointError: A file is missing or unreadable.
    """
    info = read_checkpoint_info(path)
    meta_path, weights_path = info.path / META_FILE, info.path / WEIGHTS_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    tensors = _read_tensors(weights_path)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _read_tensors(weights_path: Path) -> dict[str, torch.Tensor]:
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: no such file")
    try:
        return load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(
            f"{weights_path}: corrupted safetensors file: {_first_line(exc)}"
        ) from exc


def _load_kind(path: str | Path, kind: str) -> TeacherPolicy | HyperNetPolicy:
    info = read_checkpoint_info(path)
    if info.kind != kind:
        raise CheckpointError(
            f"{info.path / META_FILE}: is a {info.kind} checkpoint, expected a {kind}"
        )
    return load_checkpoint(info.path)


def _directory(path: str | Path) -> Path:
    p = Path(path)
    return p.parent if p.name == META_FILE else p


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
