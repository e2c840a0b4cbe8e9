"""Record in hd-eval reports written before it did each robot's fingerprint and whether the
evaluated checkpoint trained on that body (``seen_in_training``), as hd-eval now writes them.

    python scripts/add_eval_fingerprints.py REPORT [REPORT ...] --robots DIR [--robots DIR]

Each report's robots are found by name among the ``--robots`` files; the checkpoint is the
report's own ``policy``. Only the two fields are added; every number stays as measured.
A robot of another name can be the same body as a training robot (UNIMAL's own files
include bodies that differ only in sites, and ``train_mutate`` holds the training robots
themselves beside their mutations), so a set drawn by name is not held out by body:

    python scripts/add_eval_fingerprints.py training/eval_*_mutate200*.json \\
        --robots ../shared/unimal/train_mutate
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hd_deploy.errors import HdError
from hd_deploy.files import atomic_write_text
from hd_deploy.models.checkpoint import read_checkpoint_info
from hd_deploy.morphology.robot import robot_fingerprint
from hd_deploy.morphology.sources import resolve_robots


def add_eval_fingerprints(report_path: Path, files: dict[str, Path]) -> dict:
    """Add ``fingerprint`` and ``seen_in_training`` to every robot of one report.

    Raises:
        HdError: A robot of the report is not among ``files``, or the report is not one of
            a checkpoint.
    """
    report = json.loads(report_path.read_text())
    if report.get("kind") not in ("teacher", "student"):
        raise HdError(f"{report_path}: not an hd-eval report of a checkpoint")
    info = read_checkpoint_info(report["policy"])
    for robot in report["robots"]:
        if robot["name"] not in files:
            raise HdError(f"{report_path}: robot {robot['name']} is not among --robots")
        fingerprint = robot_fingerprint(files[robot["name"]])
        robot["fingerprint"] = fingerprint
        robot["seen_in_training"] = info.trained_on(fingerprint)
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--robots", type=Path, action="append", required=True)
    args = parser.parse_args()
    try:
        files = {f.stem: f for f in resolve_robots(args.robots)}
        for path in args.reports:
            report = add_eval_fingerprints(path, files)
            seen = sum(bool(r["seen_in_training"]) for r in report["robots"])
            print(f"{path}: {seen} of {len(report['robots'])} robots seen in training")
    except (HdError, OSError, ValueError, KeyError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
