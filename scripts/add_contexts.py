"""Record in a checkpoint the morphology contexts of the robots it trained on (older
checkpoints lack them), so that hd-export and hd-inspect can say how far a new robot lies
from all of them.

    python scripts/add_contexts.py CHECKPOINT ROBOTS [ROBOTS ...]

ROBOTS are MJCF files or folders. Every robot the checkpoint names must be among their
files, matched by fingerprint where the checkpoint records fingerprints
(``scripts/add_fingerprints.py``) and by file stem otherwise. Only
``robot_contexts.safetensors`` is written; the weights, ``checkpoint.json`` and the
checkpoint's hash stay as they were.

The shipped checkpoints got theirs from the robots they name (``hd-generate`` is
deterministic):

    hd-generate training/generated --count 32 --seed 1000 --stand-steps 0
    python scripts/add_contexts.py hd_deploy/assets/checkpoints/teacher \\
        ../shared/unimal/train training/generated
    python scripts/add_contexts.py hd_deploy/assets/checkpoints/student \\
        ../shared/unimal/train ../shared/unimal/train_mutate training/generated

Checkpoints the trainers write now record the contexts themselves.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hd_deploy.errors import HdError
from hd_deploy.models.checkpoint import read_checkpoint_info, write_contexts
from hd_deploy.morphology.nearness import fingerprint_and_place
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.runlog import progress_bar


def add_contexts(
    checkpoint: str | Path, robots: Sequence[str | Path], *, show_progress: bool = False
) -> Path:
    """Write ``robot_contexts.safetensors`` into a checkpoint folder.

    Args:
        checkpoint: Checkpoint folder.
        robots: MJCF files or folders holding (at least) every robot the checkpoint names.
        show_progress: Show a progress bar over the files read.

    Returns:
        The file written.

    Raises:
        ValueError: A robot the checkpoint names has no file among ``robots``.
    """
    info = read_checkpoint_info(checkpoint)
    keys = info.robot_fingerprints or info.robots  # what identifies a robot here
    wanted = set(keys)
    found: dict[str, np.ndarray] = {}
    files = resolve_robots(robots)
    if info.robot_fingerprints is None:  # matched by name: read only the files named
        files = [f for f in files if f.stem in wanted]
    with progress_bar(disable=not show_progress) as bar:
        job = bar.add_task("robots", total=len(files), status="")
        for file in files:
            fingerprint, place = fingerprint_and_place(file, info.config.max_limbs)
            key = fingerprint if info.robot_fingerprints is not None else file.stem
            if key in wanted:
                found.setdefault(key, place)
            bar.update(job, advance=1, status=f"{len(found)} of {len(wanted)} found")
    missing = [name for name, key in zip(info.robots, keys, strict=True) if key not in found]
    if missing:
        raise ValueError(
            f"no robot file for {len(missing)} of the checkpoint's robots: {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    contexts = np.stack([found[k] for k in keys])
    return write_contexts(info.path, contexts, robots=len(keys), config=info.config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("robots", type=Path, nargs="+", help="MJCF files or folders")
    args = parser.parse_args()
    try:
        path = add_contexts(args.checkpoint, args.robots, show_progress=True)
    except (HdError, ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
    print(f"{path}: the contexts of {len(read_checkpoint_info(args.checkpoint).robots)} robots")


if __name__ == "__main__":
    main()
