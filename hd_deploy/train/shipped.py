"""The checkpoints shipped inside the package (the embedded defaults)."""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"


def shipped(kind: str) -> Path:
    """Folder of the shipped ``teacher`` or ``student`` checkpoint.

    Raises:
        FileNotFoundError: The package ships no such checkpoint.
    """
    path = SHIPPED / kind
    if not (path / "checkpoint.json").exists():
        raise FileNotFoundError(f"no shipped {kind} checkpoint at {path}; pass a checkpoint path")
    return path


def resolve_policy(policy: str) -> tuple[str, Path]:
    """Turn a policy argument into (kind, path): kind is teacher, student or onnx.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The path is neither a checkpoint folder nor an ONNX file.
    """
    if policy in ("teacher", "student"):
        return policy, shipped(policy)
    path = Path(policy)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint or controller file")
    if path.is_file() and path.suffix == ".onnx":
        return "onnx", path
    meta = path / "checkpoint.json"
    if path.is_dir() and meta.exists():
        try:
            kind = json.loads(meta.read_text())["kind"]
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{meta}: not a readable checkpoint ({exc})") from None
        if kind not in ("teacher", "student"):
            raise ValueError(f"{path}: unknown checkpoint kind {kind!r}")
        return kind, path
    raise ValueError(f"{path}: neither a checkpoint folder nor an .onnx controller")
