"""Checkpoint swaps: a kill at any step leaves a complete checkpoint that resume finds; one
trainer at a time writes a run folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hd_deploy.models.checkpoint import CheckpointError
from hd_deploy.train import rundir
from hd_deploy.train.rundir import (
    RunInUseError,
    read_run,
    recover,
    round_saved,
    run_lock,
    staging,
    swap_in,
)


class Killed(Exception):
    pass


def _write(dst: Path, version: int, *, kill_at: int | None = None, monkeypatch=None) -> None:
    """Write checkpoint ``version`` and swap it in; raise Killed at file operation kill_at."""
    calls = {"n": 0}
    if kill_at is not None:
        real_rename, real_rmtree, real_write = Path.rename, shutil.rmtree, Path.write_text

        def step() -> None:
            calls["n"] += 1
            if calls["n"] == kill_at:
                raise Killed

        def rename(self, target):
            step()
            return real_rename(self, target)

        def rmtree(path, *a, **k):
            step()
            return real_rmtree(path, *a, **k)

        def write_text(self, *a, **k):
            step()
            return real_write(self, *a, **k)

        monkeypatch.setattr(Path, "rename", rename)
        monkeypatch.setattr(rundir.shutil, "rmtree", rmtree)
        monkeypatch.setattr(Path, "write_text", write_text)
    try:
        tmp = staging(dst)
        (tmp / "weights").write_text(str(version))
        (tmp / "state").write_text(str(version))
        swap_in(tmp, dst)
    finally:
        monkeypatch.undo() if monkeypatch is not None else None


def _version(dst: Path) -> int:
    a, b = (dst / "weights").read_text(), (dst / "state").read_text()
    assert a == b, "a checkpoint mixes two versions"
    return int(a)


def test_swap_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    dst = tmp_path / "checkpoint"
    _write(dst, 1)
    _write(dst, 2)
    assert _version(dst) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


@pytest.mark.parametrize("kill_at", range(1, 9))
def test_a_kill_at_any_step_keeps_a_complete_checkpoint(tmp_path: Path, kill_at, monkeypatch):
    dst = tmp_path / "checkpoint"
    _write(dst, 1)
    try:
        _write(dst, 2, kill_at=kill_at, monkeypatch=monkeypatch)
        killed = False
    except Killed:
        killed = True
    assert recover(dst)
    version = _version(dst)
    assert version in (1, 2) and (killed or version == 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    # The run goes on from there.
    _write(dst, 3)
    assert _version(dst) == 3


def test_recover_without_any_checkpoint_says_so(tmp_path: Path) -> None:
    assert not recover(tmp_path / "checkpoint")
    tmp = staging(tmp_path / "checkpoint")
    (tmp / "weights").write_text("half")  # never marked complete
    assert not recover(tmp_path / "checkpoint")


def test_recover_restores_the_previous_checkpoint_left_by_the_old_swap(tmp_path: Path) -> None:
    # The swap before this module renamed checkpoint -> .old without marking .tmp complete;
    # a kill between its two renames left both, and resume said "no checkpoint".
    old, tmp = tmp_path / "checkpoint.old", tmp_path / "checkpoint.tmp"
    for folder, version in ((old, 1), (tmp, 2)):
        folder.mkdir()
        (folder / "weights").write_text(str(version))
        (folder / "state").write_text(str(version))
    assert recover(tmp_path / "checkpoint")
    assert _version(tmp_path / "checkpoint") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_round_saved_only_for_more_data_than_the_checkpoint_before_the_round() -> None:
    state = {"epoch": 4, "samples": 100}  # written just before the round due at epoch 4
    assert round_saved(state, 4, 150)  # killed after the grown data were saved
    assert not round_saved(state, 4, 100)  # killed before: collect the round
    assert not round_saved(state, 6, 150)  # a later round is never taken as saved
    assert not round_saved(None, 4, 150)  # a new run (seeded with another run's data)
    assert not round_saved({"epoch": 4}, 4, 150)  # a checkpoint without the record


@pytest.mark.parametrize(
    "text", ["", '{"ppo": {}', "[1, 2]", '{"robots": []}', "\udcff"], ids=str.__len__
)
def test_a_damaged_run_record_is_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "run.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(CheckpointError) as info:
        read_run(tmp_path, ("ppo", "robots"))
    assert "\n" not in str(info.value) and "run.json" in str(info.value)


def test_a_missing_run_record_says_so(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no run to resume"):
        read_run(tmp_path)


def test_a_second_trainer_on_a_run_in_use_fails_at_once(tmp_path: Path) -> None:
    from hd_deploy.models import TeacherConfig
    from hd_deploy.morphology.sources import bundled_robots
    from hd_deploy.train.config import PPOConfig
    from hd_deploy.train.ppo import train_teacher

    run = tmp_path / "runs" / "teacher"
    lock = tmp_path / "runs" / ".teacher.lock"
    with run_lock(run):  # another trainer (flock: a second open conflicts in one process too)
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(RunInUseError, match=rf"teacher: another process \(pid {os.getpid()}\)"):
            train_teacher(bundled_robots()[:1], run, teacher_config=TeacherConfig.tiny(),
                          ppo=PPOConfig.tiny(), show_progress=False)  # fmt: skip
        assert not run.exists()  # refused before anything was written
    assert not lock.exists()  # released and removed
    lock.write_text("12345\n")  # a killed trainer's leftover: not held, so not in the way
    with run_lock(run):
        assert lock.read_text().strip() == str(os.getpid())
