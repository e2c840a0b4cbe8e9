"""Per-robot experts and cloning them into the teacher (tiny runs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.models import TeacherConfig, load_teacher, read_checkpoint_info
from hd_deploy.models.checkpoint import read_contexts
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.train.clone import clone_teacher
from hd_deploy.train.config import CloneConfig, ExpertConfig
from hd_deploy.train.experts import Expert, evaluate_expert, train_experts
from hd_deploy.train.rollout import DistillData

ROBOTS = 2


@pytest.fixture(scope="module")
def experts_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("experts")
    train_experts(bundled_robots()[:ROBOTS], out, config=ExpertConfig.tiny(), workers=1,
                  show_progress=False)  # fmt: skip
    return out


def test_expert_round_trip_reproduces_its_recorded_return(experts_dir: Path) -> None:
    src = bundled_robots()[0]
    expert = Expert.load(experts_dir, src.stem)
    task = LocomotionTask(src)
    assert expert.fingerprint == task.robot.fingerprint
    action = expert.act(task.reset(np.random.default_rng(0)).reshape(-1))
    assert action.shape == (task.model.nu,) and np.all(np.abs(action) <= 1)
    seed = expert.record["config"]["seed"]
    assert evaluate_expert(expert, task, seed=seed) == expert.record["return_deterministic"]


def test_finished_experts_are_skipped(experts_dir: Path) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in experts_dir.iterdir()}
    records = train_experts(bundled_robots()[:ROBOTS], experts_dir, config=ExpertConfig.tiny(),
                            workers=1, show_progress=False)  # fmt: skip
    assert [r["name"] for r in records] == [p.stem for p in bundled_robots()[:ROBOTS]]
    assert {p: p.stat().st_mtime_ns for p in experts_dir.iterdir()} == stamps


def test_clone_labels_are_the_experts_actions_in_slot_layout(experts_dir, tmp_path) -> None:
    run = tmp_path / "clone"
    config = CloneConfig.tiny()
    result = clone_teacher(experts_dir, run, teacher_config=TeacherConfig.tiny(), config=config,
                           show_progress=False)  # fmt: skip
    data = DistillData.load(run / "data.npz")
    per_robot = config.samples_per_robot + config.dagger_samples_per_robot
    assert result.samples == data.n_samples == ROBOTS * per_robot
    for r, src in enumerate(sorted(bundled_robots()[:ROBOTS], key=lambda p: p.stem)):
        task = LocomotionTask(src)
        expert = Expert.load(experts_dir, src.stem)
        n, robot = task.robot.n_limbs, task.robot
        i = int(np.nonzero(data.robot == r)[0][5])
        want = expert.act(data.proprio[i, :n].reshape(-1))
        np.testing.assert_allclose(data.action[i, robot.actuator_limb, robot.actuator_slot], want)
        assert not data.action[i][~data.action_mask[r]].any()
    assert load_teacher(run / "checkpoint").normalizer.count > 0
    info = read_checkpoint_info(run / "checkpoint")
    experts = [Expert.load(experts_dir, name) for name in info.robots]
    assert info.robot_fingerprints == tuple(e.fingerprint for e in experts)
    contexts = read_contexts(info)  # the cloned teacher records its robots' contexts too
    assert contexts is not None and contexts.shape[0] == len(info.robots)


def test_clone_resume_after_a_crash_does_not_collect_a_round_twice(
    experts_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hd_deploy.train.bc as bc
    import hd_deploy.train.clone as clone

    kwargs = {"teacher_config": TeacherConfig.tiny(), "config": CloneConfig.tiny(),
              "show_progress": False}  # fmt: skip
    rounds: list[int] = []  # the round of every collection
    collect, save = clone._collect, bc.save_checkpoint

    def counted(*args):
        rounds.append(args[4])
        return collect(*args)

    def killed_after_round_data(*args, **kw):
        if rounds == [0, 1]:  # round 1 collected and its data saved; no checkpoint since
            raise RuntimeError("killed")
        save(*args, **kw)

    monkeypatch.setattr(clone, "_collect", counted)
    whole = clone_teacher(experts_dir, tmp_path / "whole", **kwargs)
    assert rounds == [0, 1]

    rounds.clear()
    run = tmp_path / "crashed"
    monkeypatch.setattr(bc, "save_checkpoint", killed_after_round_data)
    with pytest.raises(RuntimeError, match="killed"):
        clone_teacher(experts_dir, run, **kwargs)
    assert DistillData.load(run / "data.npz").n_samples == whole.samples  # the round is on disk
    monkeypatch.setattr(bc, "save_checkpoint", save)
    resumed = clone_teacher(experts_dir, run, resume=True, show_progress=False)

    assert rounds == [0, 1]  # as many collections as the uninterrupted run
    assert resumed.samples == whole.samples == DistillData.load(run / "data.npz").n_samples


def test_cloning_fits_the_experts(experts_dir: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(CloneConfig.tiny(), dagger_rounds=0, epochs=30, lr=3e-3)
    clone_teacher(experts_dir, tmp_path / "fit", teacher_config=TeacherConfig.tiny(),
                  config=config, show_progress=False)  # fmt: skip
    rows = (tmp_path / "fit" / "progress.csv").read_text().strip().splitlines()[1:]
    losses = [float(r.split(",")[4]) for r in rows]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_clone_refuses_missing_experts_and_overwrite(experts_dir, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no experts"):
        clone_teacher(tmp_path / "none", tmp_path / "x", config=CloneConfig.tiny())
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        clone_teacher(experts_dir, tmp_path / "y", config=CloneConfig.tiny(), resume=True)
