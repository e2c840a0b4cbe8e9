"""Record in a checkpoint the fingerprints of the robots it names (older checkpoints lack them).

    python scripts/add_fingerprints.py CHECKPOINT ROBOTS [ROBOTS ...]

ROBOTS are MJCF files or folders. Every name in ``checkpoint.json``'s ``robots`` must match
the stem of one of their files (two files of one stem must be the same robot). Only
``checkpoint.json`` changes, gaining ``robot_fingerprints``; the weights, and the
checkpoint's hash (which leaves fingerprints out), stay as they were.

The shipped checkpoints got theirs from the UNIMAL training robots and the generated ones
(``hd-generate`` is deterministic: the 32 generated robots with experts have the
fingerprints their expert records hold, like the 100 UNIMAL robots):

    hd-generate /tmp/gen --count 32 --seed 1000 --stand-steps 0
    hd-generate /tmp/gen --count 96 --seed 2000 --stand-steps 0
    python scripts/add_fingerprints.py hd_deploy/assets/checkpoints/teacher \\
        ../shared/unimal/train /tmp/gen
    python scripts/add_fingerprints.py hd_deploy/assets/checkpoints/student \\
        ../shared/unimal/train /tmp/gen

Checkpoints the trainers write now record the fingerprints themselves.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from hd_deploy.files import atomic_write_text
from hd_deploy.models.checkpoint import META_FILE, parallel_fingerprints, read_checkpoint_info
from hd_deploy.morphology.robot import robot_fingerprint
from hd_deploy.morphology.sources import resolve_robots


def add_fingerprints(checkpoint: str | Path, robots: Sequence[str | Path]) -> list[str]:
    """Write ``robot_fingerprints`` into a checkpoint's ``checkpoint.json``.

    Args:
        checkpoint: Checkpoint folder.
        robots: MJCF files or folders holding (at least) every robot the checkpoint names.

    Returns:
        The fingerprints, parallel to the checkpoint's ``robots``.

    Raises:
        ValueError: A name has no file, or two files of one name are different robots.
    """
    info = read_checkpoint_info(checkpoint)
    wanted = set(info.robots)
    found: dict[str, str] = {}
    for file in resolve_robots(robots):
        if file.stem not in wanted:
            continue
        fp = robot_fingerprint(file)
        if found.setdefault(file.stem, fp) != fp:
            raise ValueError(f"{file}: another file named {file.stem} is a different robot")
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(
            f"no robot file for {len(missing)} of the checkpoint's robots: {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    fingerprints = parallel_fingerprints(info.robots, found)
    path = info.path / META_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["robot_fingerprints"] = fingerprints
    # the layout save_checkpoint writes
    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return fingerprints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("robots", type=Path, nargs="+", help="MJCF files or folders")
    args = parser.parse_args()
    fingerprints = add_fingerprints(args.checkpoint, args.robots)
    print(f"{args.checkpoint / META_FILE}: {len(fingerprints)} robot fingerprints recorded")


if __name__ == "__main__":
    main()
