"""MetaMorph's balanced replay: robots drawn in inverse proportion to their episode length,
from the trainer's estimate down to each environment slot's draw."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hd_deploy.envs.task import TaskConfig
from hd_deploy.envs.vec_env import VecLocomotionEnv
from hd_deploy.errors import ConfigError
from hd_deploy.models import TeacherConfig
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.train.config import PPOConfig
from hd_deploy.train.ppo import train_teacher
from hd_deploy.train.sampling import RobotEpisodes, training_return


def _episodes(robot: int, *lengths: int) -> list[dict]:
    return [{"robot_index": robot, "length": n, "return": 2.0 * n} for n in lengths]


def test_the_estimate_is_the_mean_of_ten_episodes_then_an_ema() -> None:
    est = RobotEpisodes(2)
    assert est.weights() is None  # nothing seen: uniform
    est.add(_episodes(0, *range(10, 110, 10)))  # 10 episodes: 10..100
    assert est.length[0] == pytest.approx(55.0)
    est.add(_episodes(0, 1000))
    assert est.length[0] == pytest.approx(0.9 * 55 + 0.1 * 1000)
    assert est.ret[0] == pytest.approx(2 * est.length[0])
    assert est.count.tolist() == [11, 0]


def test_weights_are_inverse_to_length_and_an_unseen_robot_counts_as_average() -> None:
    est = RobotEpisodes(3)
    est.add(_episodes(0, 100) + _episodes(1, 1000))
    w = est.weights()
    assert w is not None and w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(10.0)  # falls at 100: ten times the draws
    assert 1 / w[2] == pytest.approx(1 / w[0] * 550 / 100)  # the mean of 100 and 1000
    assert est.mean_return() == pytest.approx(1100.0)  # per robot: not weighted by draws
    table = list(csv.DictReader(io.StringIO(est.table(["a", "b", "c"], w))))
    assert [r["robot"] for r in table] == ["a", "b", "c"]
    assert [float(r["draw_share"]) for r in table] == pytest.approx(w.tolist(), abs=1e-5)
    uniform = csv.DictReader(io.StringIO(est.table(["a", "b", "c"], None)))
    assert [float(r["draw_share"]) for r in uniform] == pytest.approx([1 / 3] * 3, abs=1e-5)
    again = RobotEpisodes(3)
    again.load(json.loads(json.dumps(est.state())))  # through a checkpoint
    np.testing.assert_array_equal(again.weights(), w)


def test_slots_draw_robots_by_the_weights_in_this_process_and_in_workers() -> None:
    robots = bundled_robots()[:2]
    config = TaskConfig(episode_steps=5, max_limbs=12)
    for workers in (0, 1):
        with VecLocomotionEnv(robots, n_envs=16, n_workers=workers, config=config) as env:
            assert set(env.reset().robot_index) == {0, 1}  # uniform (2^-15 to fail)
            env.set_robot_weights(np.array([0.0, 1.0]))
            assert set(env.reset().robot_index) == {1}
            env.set_robot_weights(np.array([1.0, 0.0]))
            env.reset()
            for _ in range(5):  # every episode ends: the resets draw robot 0
                step = env.step(np.zeros((16, 12, 2), np.float32))
            assert set(step.obs.robot_index) == {0}
            env.set_robot_weights(None)
            assert set(env.reset().robot_index) == {0, 1}


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [np.nan, 1.0]])
def test_bad_weights_are_refused(weights) -> None:
    with VecLocomotionEnv(bundled_robots()[:2], n_envs=2, n_workers=0) as env:
        with pytest.raises(ValueError, match="robot weights"):
            env.set_robot_weights(np.array(weights))


def test_new_runs_balance_and_runs_recorded_before_sampled_uniformly() -> None:
    assert PPOConfig().robot_sampling == "balanced"
    old = PPOConfig.tiny().to_dict()
    del old["robot_sampling"]
    assert PPOConfig.from_dict(old).robot_sampling == "uniform"
    with pytest.raises(ConfigError, match="robot_sampling must be one of balanced, uniform"):
        PPOConfig(robot_sampling="greedy")


def test_a_run_keeps_the_lengths_and_a_resume_can_switch_the_sampling(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=128, robot_sampling="uniform")
    task = TaskConfig(episode_steps=8)  # episodes end inside the tiny run
    train_teacher(bundled_robots()[:2], run, teacher_config=TeacherConfig.tiny(), ppo=ppo,
                  task=task, show_progress=False)  # fmt: skip
    state = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=True)
    lengths = state["robot_episodes"]
    assert sum(lengths["count"]) >= 4 and max(lengths["length"]) <= 8
    train_teacher([], run, resume=True, total_steps=256, task=task, show_progress=False,
                  changes={"robot_sampling": "balanced"})  # fmt: skip
    meta = json.loads((run / "run.json").read_text())
    assert meta["ppo"]["robot_sampling"] == "balanced"
    assert meta["changes"][-1] == {
        "after_iteration": 2,
        "total_steps": [128, 256],
        "robot_sampling": ["uniform", "balanced"],
    }
    after = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=True)
    before, now = np.array(lengths["count"]), np.array(after["robot_episodes"]["count"])
    assert np.all(now >= before) and now.sum() > 1.5 * before.sum()  # carried on, not anew
    with open(run / "progress.csv") as f:
        assert list(csv.DictReader(f))[-1]["return_robots"] != ""
    with open(run / "robots.csv") as f:
        table = list(csv.DictReader(f))
    assert [int(r["episodes"]) for r in table] == now.tolist()
    assert sum(float(r["draw_share"]) for r in table) == pytest.approx(1.0, abs=1e-4)


def test_the_training_return_is_the_mean_over_robots_where_a_run_logged_it() -> None:
    assert training_return({"return_recent": "150.0", "return_robots": "690.5"}) == 690.5
    # before the column (older runs) or before any episode: the last episodes' mean
    assert training_return({"return_recent": "600.0", "return_robots": ""}) == 600.0
    assert training_return({"return_recent": 600.0, "return_robots": float("nan")}) == 600.0
    assert training_return({"return_recent": "600.0"}) == 600.0
    assert np.isnan(training_return({"return_recent": ""}))
