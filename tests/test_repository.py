"""The repository stays small enough for a GPU call of the teacher run.

The `device` tool sends at most 64 MiB: the files git tracks plus what a call carries, for
``scripts/train_gpu.sh`` the wheels the machine lacks (about 9.5 MiB), the UNIMAL robots
(about 2 MiB) and, to go on from a trained run, its weights (about 12.7 MiB for the
paper-sized teacher; ``scripts/prepare_gpu.sh`` checks each call exactly). A run's weights
committed into the tree once took it past 64 MiB, which no test noticed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACKED_BUDGET_MIB = 48.0  # 64 MiB, less the wheels and robots of a new run, with room


def test_tracked_files_leave_room_for_a_gpu_call() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    sizes = {p: (ROOT / p).stat().st_size for p in listed.split("\0") if (ROOT / p).is_file()}
    total = sum(sizes.values()) / 2**20
    largest = ", ".join(
        f"{p} ({sizes[p] / 2**20:.1f} MiB)" for p in sorted(sizes, key=sizes.__getitem__)[-3:]
    )
    assert total <= TRACKED_BUDGET_MIB, (
        f"git tracks {total:.1f} MiB, more than {TRACKED_BUDGET_MIB} MiB: a GPU call of the "
        f"teacher run would not fit; largest: {largest} (keep run weights in git history)"
    )
