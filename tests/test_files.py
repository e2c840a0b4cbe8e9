"""Atomic writes: an interrupted write leaves the previous file whole and no debris."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hd_deploy import files
from hd_deploy.files import atomic_write_text


def test_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["run.json"]


def test_a_failure_before_the_swap_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "progress.csv"
    atomic_write_text(path, "a,b\n1,2\n")

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "a,b\n")
    assert path.read_text() == "a,b\n1,2\n" and sorted(os.listdir(tmp_path)) == ["progress.csv"]


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "absent" / "x.json", "{}")
