"""Ctrl-C and SIGTERM stop a training loop at the end of its step, checkpoint written."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hd_deploy.models import HyperNetConfig, TeacherConfig
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.stop import GracefulStop
from hd_deploy.train import distill as distill_module
from hd_deploy.train import ppo as ppo_module
from hd_deploy.train.config import DistillConfig, PPOConfig

ROBOTS = bundled_robots()[:2]


def _iterations(run: Path, column: str) -> list[int]:
    with (run / "progress.csv").open() as f:
        return [int(row[column]) for row in csv.DictReader(f)]


def _checkpoint_extra(run: Path) -> dict:
    return json.loads((run / "checkpoint" / "checkpoint.json").read_text())["extra"]


def _signal_on_call(monkeypatch, module, name: str, call: int, sig: int) -> None:
    """Send ``sig`` to this process from inside the ``call``-th call of ``module.name``."""
    real, calls = getattr(module, name), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_first_signal_asks_second_interrupt_stops_at_once(capsys) -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), GracefulStop("epoch") as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
        assert "end of this epoch" in capsys.readouterr().err
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # put back on the way out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ppo_stops_at_the_end_of_the_iteration_and_resumes(monkeypatch, tmp_path, sig) -> None:
    run = tmp_path / "run"
    # checkpoints only every 100 iterations: the stop's checkpoint is its own
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=64 * 10, checkpoint_every=100)
    _signal_on_call(monkeypatch, ppo_module, "_update", call=2, sig=sig)
    result = ppo_module.train_teacher(
        ROBOTS, run, teacher_config=TeacherConfig.tiny(), ppo=ppo, show_progress=False
    )
    assert result.stopped and result.iterations == 2
    assert _iterations(run, "iteration") == [1, 2]
    assert _checkpoint_extra(run)["iteration"] == 2
    monkeypatch.undo()
    done = ppo_module.train_teacher([], run, resume=True, show_progress=False)
    assert not done.stopped and done.iterations == 10
    assert _iterations(run, "iteration") == list(range(1, 11))


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo") / "run"
    ppo_module.train_teacher(
        ROBOTS, out, teacher_config=TeacherConfig.tiny(), ppo=PPOConfig.tiny(), show_progress=False
    )
    return out / "checkpoint"


def test_distill_stops_at_the_end_of_the_epoch(monkeypatch, tmp_path, teacher_ckpt) -> None:
    run = tmp_path / "student"
    config = dataclasses.replace(DistillConfig.tiny(), epochs=6, checkpoint_every=100)
    _signal_on_call(monkeypatch, distill_module, "train_epoch", call=3, sig=signal.SIGINT)
    result = distill_module.distill_student(
        teacher_ckpt,
        ROBOTS,
        run,
        student_config=HyperNetConfig.tiny(),
        config=config,
        show_progress=False,
    )
    assert result.stopped and result.epochs == 3
    assert _iterations(run, "epoch") == [1, 2, 3]
    assert _checkpoint_extra(run)["epoch"] == 3


def _default_interrupt() -> None:
    # as from a terminal: a shell's background job (CI's, this suite's) may have SIGINT
    # ignored, which its children would inherit
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_hd_train_ctrl_c_stops_with_a_checkpoint_and_a_resume_hint(tmp_path: Path) -> None:
    """Ctrl-C as from a terminal (to the process group, workers included)."""
    run = tmp_path / "run"
    hd_train = Path(sys.executable).parent / "hd-train"
    proc = subprocess.Popen(
        [str(hd_train), "--tiny", "--workers", "2", "--no-overlap", "--rollout-steps", "1000",
         "--steps", "1000000", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_default_interrupt,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not (run / "checkpoint" / "checkpoint.json").exists():  # an iteration done
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped by a signal" in out
    assert f"hd-train --resume --out {run}" in out
    done = _iterations(run, "iteration")
    assert _checkpoint_extra(run)["iteration"] == done[-1]
