"""PPO fine-tuning of a baked controller on its robot (hd_deploy.train.tune), tiny runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from exporters.deploy_kit import OTHER_ROBOT_FILE, ROBOT_FILE, tiny_student

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.models.baked import BakedMLP
from hd_deploy.train.config import ConfigError, TuneConfig
from hd_deploy.train.tune import tune_baked

UNSEEN = Path(__file__).resolve().parents[2] / "../shared/unimal/test"


def _bake(task: LocomotionTask, student=None) -> BakedMLP:
    student = student or tiny_student()
    return student.bake([task.robot], [task.context])[0]


def _state(mlp: BakedMLP) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in mlp.state_dict().items()}


def test_tuning_trains_the_layers_and_leaves_the_bake_alone() -> None:
    task = LocomotionTask(ROBOT_FILE)
    mlp = _bake(task)
    before = _state(mlp)
    config = dataclasses.replace(TuneConfig.tiny(), critic_warmup=0, total_steps=96, lr=1e-2)
    seen: list[int] = []
    result = tune_baked(mlp, task, config, on_iteration=lambda steps, _: seen.append(steps))
    assert all(torch.equal(v, mlp.state_dict()[k]) for k, v in before.items())  # untouched
    assert seen == [32, 64, 96] and result.steps == 96 and not result.stopped
    tuned = result.mlp
    assert tuned.widths == mlp.widths and tuned.fingerprint == mlp.fingerprint
    for name in ("obs_mean", "obs_std", "ctrl_low", "ctrl_high"):
        assert torch.equal(getattr(tuned, name), getattr(mlp, name)), name
    if result.improved:  # the tuned weights, kept because they scored higher
        assert result.return_after > result.return_before
        key = "layers.0.weight"
        assert not torch.equal(tuned.state_dict()[key], mlp.state_dict()[key])
    else:
        assert tuned is mlp and result.return_after <= result.return_before
    record = result.record(config)
    assert record["kept"] == ("tuned" if result.improved else "bake")
    assert record["steps"] == 96 and record["eval_episodes"] == 1


def test_a_tuning_that_does_not_beat_the_bake_keeps_the_bake() -> None:
    task = LocomotionTask(ROBOT_FILE)
    mlp = _bake(task)
    # every iteration trains the critic alone: the policy is the bake, no better
    config = dataclasses.replace(TuneConfig.tiny(), critic_warmup=10)
    result = tune_baked(mlp, task, config)
    assert result.returns_after == result.returns_before
    assert result.mlp is mlp and not result.improved


def test_a_stop_request_ends_tuning_after_the_iteration() -> None:
    task = LocomotionTask(ROBOT_FILE)
    config = dataclasses.replace(TuneConfig.tiny(), total_steps=10_000)
    result = tune_baked(_bake(task), task, config, should_stop=lambda: True)
    assert result.steps == config.batch_size and result.stopped


def test_tuning_refuses_another_robots_bake() -> None:
    task = LocomotionTask(ROBOT_FILE)
    with pytest.raises(ValueError, match="baked for 'gen-1'"):
        tune_baked(_bake(LocomotionTask(OTHER_ROBOT_FILE)), task, TuneConfig.tiny())


@pytest.mark.parametrize(
    "bad", [{"total_steps": 0}, {"init_std": 0.0}, {"critic_warmup": -1}, {"lr": 0.0}]
)
def test_bad_tune_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        TuneConfig(**bad)


@pytest.mark.slow
@pytest.mark.skipif(not UNSEEN.is_dir(), reason="needs ../shared/unimal/test")
def test_tuning_makes_an_unseen_robot_walk() -> None:
    """The shipped student's bake stands near still on this unseen robot (return about 27);
    100,000 PPO steps (about a minute) take it past 300."""
    from hd_deploy.models.checkpoint import load_student
    from hd_deploy.train.shipped import shipped

    task = LocomotionTask(UNSEEN / "floor-1409-1-13-01-12-18-30.xml")
    mlp = _bake(task, load_student(shipped("student")))
    result = tune_baked(mlp, task, TuneConfig(total_steps=100_000))
    assert result.return_before < 100 and result.return_after > 300 and result.improved
