"""Resolve robot arguments (files and folders of MJCF) into a list of files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hd_deploy.morphology.errors import MorphologyError

BUNDLED_ROBOTS = Path(__file__).resolve().parent.parent / "assets" / "robots"
#: Generated robots that the shipped teacher and student were trained on, beside the UNIMAL
#: robots the package does not bundle (by fingerprint: ``hd-bench`` checks it), so the
#: default benchmark shows a seen set beside the unseen one.
BUNDLED_SEEN_ROBOTS = BUNDLED_ROBOTS / "seen"


def resolve_robots(sources: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders into MJCF files (a folder: its ``*.xml``, sorted).

    Raises:
        MorphologyError: A path does not exist, a folder holds no ``.xml`` file, or
            nothing was given.
    """
    if not sources:
        raise MorphologyError("no robots given")
    files: list[Path] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            found = sorted(path.glob("*.xml"))
            if not found:
                raise MorphologyError(f"{path}: folder holds no robot (.xml) files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise MorphologyError(f"{path}: no such robot file or folder")
    return files


def bundled_robots() -> list[Path]:
    """The generated robots shipped with the package (the embedded defaults), none of
    which the shipped models were trained on."""
    return resolve_robots([BUNDLED_ROBOTS])


def bundled_seen_robots() -> list[Path]:
    """The shipped generated robots that the shipped teacher and student were trained on."""
    return resolve_robots([BUNDLED_SEEN_ROBOTS])
