"""Checkpoints: weights in safetensors, everything else in JSON; no pickle.

A checkpoint is a directory holding

- ``model.safetensors``: the model's parameters and buffers, except the normaliser's;
- ``checkpoint.json``: ``format_version``, ``kind`` (``"teacher"`` or ``"student"``),
  ``config`` (the config dict), ``normalizer`` (its statistics), ``robots`` (names the
  model was trained on), optionally ``robot_fingerprints`` (their fingerprints, parallel to
  ``robots``; checkpoints written before it have none) and ``extra`` (free-form JSON from
  the trainer);
- optionally ``robot_contexts.safetensors``: the morphology context of each of ``robots``
  as the model reads it (``(robots, max_limbs, 53)``, float16), so that a new robot can be
  placed against them (:mod:`hd_deploy.morphology.nearness`); checkpoints written before it
  have none (``scripts/add_contexts.py`` adds it).

Whether a model has seen a robot is decided by fingerprint (:attr:`Robot.fingerprint`),
never by name: a renamed file is the same robot, and two files of one name may differ.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save as save_numpy
from safetensors.torch import load_file, save_file

from hd_deploy.errors import HdError
from hd_deploy.models.config import HyperNetConfig, TeacherConfig
from hd_deploy.models.hypernet import HyperNetPolicy
from hd_deploy.models.normalizer import ObsNormalizer
from hd_deploy.models.teacher import TeacherPolicy
from hd_deploy.morphology.nearness import TrainingRobots

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"
CONTEXTS_FILE = "robot_contexts.safetensors"
_KINDS: dict[str, type[TeacherConfig] | type[HyperNetConfig]] = {
    "teacher": TeacherConfig,
    "student": HyperNetConfig,
}
_NORM_PREFIX = "normalizer."
# Storage dtypes a float32 parameter may be kept in (compact_checkpoint); loading widens them
COMPACT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


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
        robot_fingerprints: Fingerprints of those robots, parallel to ``robots``; None
            when the checkpoint records none (written before they were recorded).
    """

    path: Path
    kind: str
    config: TeacherConfig | HyperNetConfig
    normalizer: dict[str, Any]
    robots: tuple[str, ...]
    extra: dict[str, Any]
    robot_fingerprints: tuple[str, ...] | None = None

    def trained_on(self, fingerprint: str) -> bool | None:
        """Whether a robot of this fingerprint was among the training robots (None: unknown)."""
        if self.robot_fingerprints is None:
            return None
        return fingerprint in self.robot_fingerprints


def save_checkpoint(
    path_dir: str | Path,
    model: TeacherPolicy | HyperNetPolicy,
    *,
    robots: Sequence[str],
    fingerprints: Sequence[str] | Mapping[str, str] | None = None,
    contexts: np.ndarray | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory (created if needed; existing files are replaced).

    Args:
        path_dir: Directory to write.
        model: A teacher or a student.
        robots: Names of the robots the model was trained on.
        fingerprints: Their fingerprints (``Robot.fingerprint``): a list parallel to
            ``robots``, or a name -> fingerprint mapping covering every name; None records
            none (the checkpoint then cannot tell which robots it has seen).
        contexts: Their padded morphology contexts, ``(len(robots), max_limbs, 53)``
            (:func:`hd_deploy.morphology.nearness.place`); None records none.
        extra: JSON-serialisable metadata (training step, returns, ...).

    Returns:
        The directory.

    Raises:
        TypeError: ``model`` is neither a teacher nor a student.
        ValueError: ``extra`` or ``robots`` cannot be written as JSON, or ``fingerprints``
            or ``contexts`` does not match ``robots``.
    """
    if isinstance(model, TeacherPolicy):
        kind = "teacher"
    elif isinstance(model, HyperNetPolicy):
        kind = "student"
    else:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}")
    names = [str(r) for r in robots]
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": model.config.to_dict(),
        "normalizer": model.normalizer.to_dict(),
        "robots": names,
        "extra": dict(extra or {}),
    }
    if fingerprints is not None:
        meta["robot_fingerprints"] = parallel_fingerprints(names, fingerprints)
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
    if contexts is not None:
        write_contexts(out, contexts, robots=len(names), config=model.config)
    else:  # an earlier checkpoint's record there would describe other robots
        (out / CONTEXTS_FILE).unlink(missing_ok=True)
    tmp_w, tmp_m = out / (WEIGHTS_FILE + ".tmp"), out / (META_FILE + ".tmp")
    save_file(tensors, str(tmp_w), metadata={"format": "pt"})
    tmp_m.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp_w, out / WEIGHTS_FILE)
    os.replace(tmp_m, out / META_FILE)
    return out


def write_contexts(
    path_dir: str | Path, contexts: np.ndarray, *, robots: int,
    config: TeacherConfig | HyperNetConfig,
) -> Path:  # fmt: skip
    """Write ``robot_contexts.safetensors`` into a checkpoint folder (float16).

    Raises:
        ValueError: ``contexts`` is not ``(robots, max_limbs, context_dim)`` of finite values.
    """
    want = (robots, config.max_limbs, config.context_dim)
    arr = np.asarray(contexts)
    if arr.shape != want or not np.isfinite(arr).all():
        raise ValueError(f"robot contexts of shape {arr.shape}: expected finite {want}")
    path = Path(path_dir) / CONTEXTS_FILE
    tmp = path.with_name(CONTEXTS_FILE + ".tmp")
    tmp.write_bytes(save_numpy({"contexts": arr.astype(np.float16)}))
    os.replace(tmp, path)
    return path


def read_training_robots(info: CheckpointInfo) -> TrainingRobots | None:
    """The checkpoint's training robots placed by their recorded contexts, to measure a
    new robot against (None when it records no contexts or no robots).

    Raises:
        CheckpointError: The contexts file is there but unreadable or of the wrong shape.
    """
    contexts = read_contexts(info)
    if contexts is None or not len(contexts):
        return None
    return TrainingRobots.of(info.robots, contexts)


def read_contexts(info: CheckpointInfo) -> np.ndarray | None:
    """The checkpoint's robot contexts, ``(len(info.robots), max_limbs, context_dim)``
    float32, parallel to ``info.robots``; None when it records none.

    Raises:
        CheckpointError: The file is there but unreadable or of the wrong shape.
    """
    path = info.path / CONTEXTS_FILE
    if not path.is_file():
        return None
    try:
        arr = load_numpy(str(path))["contexts"]
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: not a robot-contexts file: {_first_line(exc)}") from exc
    want = (len(info.robots), info.config.max_limbs, info.config.context_dim)
    if arr.shape != want:
        raise CheckpointError(f"{path}: contexts of shape {arr.shape}, expected {want}")
    return arr.astype(np.float32)


def compact_checkpoint(path: str | Path, dtype: str = "float16") -> Path:
    """Rewrite a checkpoint's float32 weights in ``dtype`` storage, about half the file.

    The model loads as before (float32, each weight rounded once to ``dtype``), so a
    compacted checkpoint is a slightly different model: evaluate the compacted file.
    Rounding an already compact weight again changes nothing.

    Raises:
        CheckpointError: The checkpoint does not load, or ``dtype`` is not one of
            :data:`COMPACT_DTYPES`.
    """
    if dtype not in COMPACT_DTYPES:
        raise CheckpointError(f"compact dtype {dtype!r}: expected one of {sorted(COMPACT_DTYPES)}")
    load_checkpoint(path)  # refuse a broken checkpoint before rewriting it
    weights_path = read_checkpoint_info(path).path / WEIGHTS_FILE
    tensors = {
        k: v.to(COMPACT_DTYPES[dtype]) if v.dtype == torch.float32 else v
        for k, v in _read_tensors(weights_path).items()
    }
    tmp = weights_path.with_name(WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, weights_path)
    return weights_path


def parallel_fingerprints(
    robots: Sequence[str], fingerprints: Sequence[str] | Mapping[str, str]
) -> list[str]:
    """``fingerprints`` as a list parallel to ``robots`` (what ``checkpoint.json`` stores).

    Raises:
        ValueError: A list of another length, or a mapping that misses a name.
    """
    if isinstance(fingerprints, Mapping):
        missing = [r for r in robots if r not in fingerprints]
        if missing:
            raise ValueError(f"no fingerprint for robots {missing[:5]}")
        return [str(fingerprints[r]) for r in robots]
    if isinstance(fingerprints, str) or len(fingerprints) != len(robots):
        raise ValueError(
            f"{len(fingerprints)} fingerprints for {len(robots)} robots (one per robot)"
        )
    return [str(f) for f in fingerprints]


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
    fingerprints = meta.get("robot_fingerprints")
    if fingerprints is not None and (
        not isinstance(fingerprints, list)
        or len(fingerprints) != len(meta["robots"])
        or not all(isinstance(f, str) for f in fingerprints)
    ):
        raise CheckpointError(
            f"{meta_path}: 'robot_fingerprints' must be a list of strings, one per robot"
        )
    return CheckpointInfo(
        path=directory,
        kind=kind,
        config=config,
        normalizer=norm,
        robots=tuple(str(r) for r in meta["robots"]),
        extra=meta["extra"],
        robot_fingerprints=None if fingerprints is None else tuple(fingerprints),
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
        if got.dtype != ref.dtype and not (
            ref.dtype == torch.float32 and got.dtype in COMPACT_DTYPES.values()
        ):
            raise CheckpointError(
                f"{weights_path}: dtype mismatch for '{name}': file has {got.dtype}, "
                f"model needs {ref.dtype}"
            )
    model.load_state_dict(tensors, strict=False)  # compact weights widen to float32 here
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
    in name order, so it does not depend on how either file happens to be laid out. The
    robots' fingerprints are left out: they restate the robot names, and recording them in
    an older checkpoint (``scripts/add_fingerprints.py``) keeps it the same model, with the
    same hash in the controllers exported from it.

    Raises:
        CheckpointError: A file is missing or unreadable.
    """
    info = read_checkpoint_info(path)
    meta_path, weights_path = info.path / META_FILE, info.path / WEIGHTS_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.pop("robot_fingerprints", None)
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
