"""Tiny end-to-end training runs: PPO teacher (with resume), distillation, evaluation."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hd_deploy.errors import ConfigError, HdWarning
from hd_deploy.models import (
    CheckpointError,
    HyperNetConfig,
    HyperNetPolicy,
    TeacherConfig,
    load_student,
    load_teacher,
    read_checkpoint_info,
)
from hd_deploy.models.checkpoint import read_contexts
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.train.config import DistillConfig, PPOConfig
from hd_deploy.train.distill import distill_student, make_optimizer, train_epoch
from hd_deploy.train.ppo import ReturnWindow, _gae, _policy, train_teacher, value_loss
from hd_deploy.train.rollout import DistillData, evaluate

ROBOTS = 2


def _fingerprints(robots) -> tuple[str, ...]:
    from hd_deploy.envs.task import LocomotionTask

    return tuple(LocomotionTask(f).robot.fingerprint for f in robots)


def _assert_contexts_recorded(info, robots) -> None:
    """The checkpoint holds each training robot's padded context, as its tasks give it."""
    from hd_deploy.envs.task import LocomotionTask, TaskConfig

    got = read_contexts(info)
    assert got is not None
    config = TaskConfig(max_limbs=info.config.max_limbs)
    want = np.stack([LocomotionTask(f, config=config).padded_context()[0] for f in robots])
    np.testing.assert_allclose(got, want, atol=1e-3)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo") / "run"
    train_teacher(
        bundled_robots()[:ROBOTS], out, teacher_config=TeacherConfig.tiny(),
        ppo=PPOConfig.tiny(), show_progress=False,
    )  # fmt: skip
    return out


def test_ppo_writes_checkpoint_log_and_plot(teacher_run: Path) -> None:
    assert (teacher_run / "checkpoint" / "model.safetensors").exists()
    assert (teacher_run / "learning_curve.png").stat().st_size > 0
    rows = (teacher_run / "progress.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + PPOConfig.tiny().iterations
    state = torch.load(teacher_run / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["env_steps"] == PPOConfig.tiny().total_steps
    assert load_teacher(teacher_run / "checkpoint").normalizer.count > 0
    info = read_checkpoint_info(teacher_run / "checkpoint")
    assert info.robot_fingerprints == _fingerprints(bundled_robots()[:ROBOTS])
    _assert_contexts_recorded(info, bundled_robots()[:ROBOTS])
    # where it trained, for the model card
    extra = json.loads((teacher_run / "checkpoint" / "checkpoint.json").read_text())["extra"]
    assert (extra["device"], extra["workers"]) == ("cpu", PPOConfig.tiny().n_workers)


def test_ppo_resume_continues_where_it_stopped(teacher_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(teacher_run, run)
    before = load_teacher(run / "checkpoint")
    extra = 2 * PPOConfig.tiny().total_steps
    result = train_teacher(bundled_robots()[:ROBOTS], run, resume=True, total_steps=extra,
                           show_progress=False)  # fmt: skip
    assert result.env_steps == extra
    rows = (run / "progress.csv").read_text().strip().splitlines()[1:]
    iterations = [int(r.split(",")[0]) for r in rows]
    assert iterations == list(range(1, len(iterations) + 1))  # no gap, no repeat
    after = load_teacher(run / "checkpoint")
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    )
    assert changed


def test_return_window_holds_back_the_falls_after_a_restart() -> None:
    window = ReturnWindow(episode_steps=1000, returns=[700.0] * 100)
    window.add([50.0] * 30, steps_per_env=640)  # only early falls can end this soon
    assert window.mean() == 700.0
    window.add([900.0] * 40, steps_per_env=640)  # every first episode has ended now
    assert window.mean() == pytest.approx((30 * 700 + 30 * 50 + 40 * 900) / 100)
    window.add([0.0], steps_per_env=640)  # from then on every episode counts at once
    assert window.returns[-1] == 0.0
    fresh = ReturnWindow(episode_steps=1000)
    assert math.isnan(fresh.mean())
    fresh.add([50.0], steps_per_env=640)
    assert fresh.mean() == 50.0  # nothing before them: the held episodes are all there is


def test_ppo_resume_goes_on_from_the_saved_return_window(teacher_run: Path, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(teacher_run, run)
    state_file = run / "checkpoint" / "trainer_state.pt"
    state = torch.load(state_file, weights_only=True)
    assert isinstance(state["recent_returns"], list)
    state["recent_returns"] = [123.0] * 10
    torch.save(state, state_file)
    steps = PPOConfig.tiny().total_steps + PPOConfig.tiny().batch_size
    train_teacher([], run, resume=True, total_steps=steps, show_progress=False)
    last = list(csv.DictReader((run / "progress.csv").open()))[-1]
    # 16 steps into 1000-step episodes: whatever ended is held back, the curve goes on
    assert float(last["return_recent"]) == 123.0
    state = torch.load(state_file, weights_only=True)
    assert state["recent_returns"] == [123.0] * 10


def test_ppo_resume_names_robot_files_that_are_gone(teacher_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(teacher_run, run)
    meta = json.loads((run / "run.json").read_text())
    meta["robots"][0] = str(tmp_path / "moved" / "robot.xml")
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"names 1 robot file\(s\) that are not here.*moved"):
        train_teacher([], run, resume=True, show_progress=False)


def test_ppo_trainer_state_keeps_adams_moments_in_bfloat16(teacher_run: Path) -> None:
    state = torch.load(teacher_run / "checkpoint" / "trainer_state.pt", weights_only=True)
    moments = [v for s in state["optimizer"]["state"].values() for k, v in s.items()
               if k != "step"]  # fmt: skip
    assert moments and all(m.dtype == torch.bfloat16 for m in moments)
    teacher = load_teacher(teacher_run / "checkpoint")
    opt = torch.optim.Adam(teacher.parameters())
    opt.load_state_dict(state["optimizer"])  # as resume does: back to the parameters' dtype
    assert all(v.dtype == torch.float32 for s in opt.state.values() for k, v in s.items()
               if k != "step")  # fmt: skip


def test_ppo_logs_zero_shot_returns_on_eval_robots(tmp_path: Path) -> None:
    ppo = dataclasses.replace(PPOConfig.tiny(), eval_every=2)
    train_teacher(
        bundled_robots()[:1], tmp_path / "run", teacher_config=TeacherConfig.tiny(), ppo=ppo,
        show_progress=False, eval_robots=bundled_robots()[1:2],
    )  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "run" / "progress.csv").open()))
    evaluated = [r["iteration"] for r in rows if r["eval_return"] != ""]
    assert evaluated == [str(i) for i in range(2, ppo.iterations + 1, 2)]
    assert all(np.isfinite(float(r["eval_return"])) for r in rows if r["eval_return"])
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["eval_robots"] == [str(bundled_robots()[1])]


@pytest.mark.parametrize("overlap", [False, True])
def test_ppo_with_and_without_overlap_learns_from_every_batch(tmp_path: Path, overlap) -> None:
    ppo = dataclasses.replace(PPOConfig.tiny(), overlap=overlap)
    result = train_teacher(
        bundled_robots()[:1], tmp_path / "run", teacher_config=TeacherConfig.tiny(), ppo=ppo,
        show_progress=False,
    )  # fmt: skip
    assert result.env_steps == ppo.iterations * ppo.batch_size
    rows = list(csv.DictReader((tmp_path / "run" / "progress.csv").open()))
    assert [int(r["env_steps"]) for r in rows] == [
        ppo.batch_size * (i + 1) for i in range(ppo.iterations)
    ]


def test_ppo_refuses_to_overwrite_or_resume_nothing(teacher_run: Path, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_teacher(bundled_robots()[:1], teacher_run, ppo=PPOConfig.tiny(),
                      show_progress=False)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        train_teacher(bundled_robots()[:1], tmp_path / "empty", resume=True, show_progress=False)
    # a checkpoint whose run.json went missing is not written over by a fresh run either
    lost = tmp_path / "lost"
    shutil.copytree(teacher_run / "checkpoint", lost / "checkpoint")
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_teacher(bundled_robots()[:1], lost, ppo=PPOConfig.tiny(), show_progress=False)
    assert not (lost / "run.json").exists()


def _actor_and_value(teacher) -> tuple[dict, dict]:
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    value = {k: v for k, v in state.items() if k.startswith("critic")}
    actor = {k: v for k, v in state.items() if k.startswith("actor")}
    assert value and actor
    return actor, value


def test_ppo_init_starts_from_a_checkpoint_and_warms_up_the_critic(
    teacher_run: Path, tmp_path: Path
) -> None:
    start = load_teacher(teacher_run / "checkpoint")
    actor0, value0 = _actor_and_value(start)
    ppo = dataclasses.replace(
        PPOConfig.tiny(), critic_warmup=PPOConfig.tiny().iterations, update_normalizer=False
    )
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="a run folder, not a checkpoint"):
        train_teacher(bundled_robots()[:1], run, ppo=ppo, init=teacher_run, show_progress=False)
    assert not run.exists()  # refused before a run folder is written
    init = teacher_run / "checkpoint"
    train_teacher(bundled_robots()[:1], run, ppo=ppo, init=init, action_std=0.4,
                  show_progress=False)  # fmt: skip
    after = load_teacher(run / "checkpoint")
    actor1, value1 = _actor_and_value(after)
    assert all(torch.equal(actor0[k], actor1[k]) for k in actor0)  # the policy is kept
    assert any(not torch.equal(value0[k], value1[k]) for k in value0)  # the critic learns
    assert after.config == dataclasses.replace(start.config, action_std=0.4)
    for key, value in start.normalizer.state_dict().items():  # the statistics are kept
        assert torch.equal(value, after.normalizer.state_dict()[key])
    meta = json.loads((run / "run.json").read_text())
    assert meta["init"] == str(init) and meta["ppo"]["critic_warmup"] == ppo.iterations
    # the checkpoint it started from, by its record (the path may later hold another one)
    assert meta["init_checkpoint"] == json.loads((init / "checkpoint.json").read_text())
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert all(abs(float(r["approx_kl"])) < 1e-4 for r in rows)  # no policy step at all


def test_ppo_init_state_branches_the_run_with_its_adam_moments_and_reward_scale(
    teacher_run: Path, tmp_path: Path
) -> None:
    init = teacher_run / "checkpoint"
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=PPOConfig.tiny().batch_size)
    saved = torch.load(init / "trainer_state.pt", weights_only=True)

    def trainer_state(run: Path, **kw) -> dict:
        train_teacher(bundled_robots()[:ROBOTS], run, ppo=ppo, init=init, show_progress=False,
                      **kw)  # fmt: skip
        return torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=True)

    def adam_steps(state: dict) -> set[int]:
        return {int(s["step"]) for s in state["optimizer"]["state"].values()}

    one_update = ppo.epochs * (ppo.batch_size // ppo.minibatch_size)
    fresh = trainer_state(tmp_path / "fresh")
    branch = trainer_state(tmp_path / "branch", init_state=True)
    assert adam_steps(fresh) == {one_update}
    assert adam_steps(branch) == {s + one_update for s in adam_steps(saved)}
    # the reward scale goes on from the run's (its count of returns grows from there)
    assert branch["reward_scale"]["count"] > saved["reward_scale"]["count"]
    assert fresh["reward_scale"]["count"] < saved["reward_scale"]["count"]
    assert json.loads((tmp_path / "branch" / "run.json").read_text())["init_state"] is True
    # on the same robots, each robot's episode record goes on (its episodes count up from it)
    before, after = saved["robot_episodes"], branch["robot_episodes"]
    count = np.array(after["count"])
    assert sum(before["count"]) > 0 and (count >= before["count"]).all()
    same = count == before["count"]  # no new episode: the record as saved
    np.testing.assert_array_equal(np.array(after["length"])[same],
                                  np.array(before["length"])[same])  # fmt: skip
    weights_only = tmp_path / "weights"
    shutil.copytree(init, weights_only, ignore=shutil.ignore_patterns("trainer_state.pt"))
    with pytest.raises(ConfigError, match="no trainer_state.pt"):
        train_teacher(bundled_robots()[:1], tmp_path / "refused", ppo=ppo, init=weights_only,
                      init_state=True, show_progress=False)  # fmt: skip
    assert not (tmp_path / "refused").exists()


def _random_batch(teacher, ppo: PPOConfig) -> dict:
    """A PPO buffer of random observations on 3-limb robots, with the log-probabilities of
    ``teacher`` acting (as the collector records them)."""
    rng = np.random.default_rng(0)
    T, N, L = ppo.rollout_steps, ppo.n_envs, teacher.config.max_limbs
    mask = np.zeros((T, N, L), bool)
    mask[..., :3] = True
    buf = {
        "proprio": rng.normal(size=(T, N, L, 17)).astype(np.float32),
        "context": rng.normal(size=(T, N, L, 53)).astype(np.float32),
        "limb_mask": mask, "action_mask": np.repeat(mask[..., None], 2, -1),
        "action": rng.normal(size=(T, N, L, 2)).astype(np.float32),
        "reward": rng.normal(size=(T, N)), "done": np.zeros((T, N), bool),
        "last": SimpleNamespace(proprio=np.zeros((N, L, 17), np.float32),
                                context=np.zeros((N, L, 53), np.float32), limb_mask=mask[0]),
    }  # fmt: skip
    with torch.no_grad():  # the acting policy's log-probabilities, as the collector records
        logp, _ = _policy(
            teacher,
            *(
                torch.as_tensor(buf[k].reshape(T * N, *buf[k].shape[2:]))
                for k in ("proprio", "context", "limb_mask", "action")
            ),
            torch.as_tensor(buf["action_mask"].reshape(T * N, L, 2)).float(),
        )
    buf["logp"] = logp.numpy().reshape(T, N)
    return buf


def test_ppo_target_kl_stops_the_epochs_early(teacher_run: Path, tmp_path: Path) -> None:
    from hd_deploy.train.ppo import _update

    # k3: any step at all takes it past a target of 1e-9 (k1 can be negative)
    ppo = dataclasses.replace(PPOConfig.tiny(), epochs=6, lr=1e-2, kl_stop="epoch",
                              kl_estimator="k3")  # fmt: skip
    buf = _random_batch(load_teacher(teacher_run / "checkpoint"), ppo)
    steps, epochs = {}, {}
    for target in (0.0, 1e-9):
        model = load_teacher(teacher_run / "checkpoint")
        opt = torch.optim.Adam(model.parameters(), lr=ppo.lr)
        stats = _update(model, opt, buf, dataclasses.replace(ppo, target_kl=target), "cpu")
        steps[target] = max(s["step"] for s in opt.state_dict()["state"].values())
        epochs[target] = stats["epochs"]  # logged in progress.csv
    per_epoch = ppo.batch_size // ppo.minibatch_size
    assert steps[0.0] == ppo.epochs * per_epoch and epochs[0.0] == ppo.epochs
    assert steps[1e-9] == per_epoch  # the first epoch moved the policy past the target
    assert epochs[1e-9] == 1


def test_ppo_minibatch_kl_stop_takes_no_step_past_the_target(teacher_run: Path) -> None:
    from hd_deploy.train.ppo import _update

    ppo = dataclasses.replace(PPOConfig.tiny(), epochs=6, lr=1e-2, kl_stop="minibatch",
                              kl_estimator="k3")  # fmt: skip
    assert ppo.batch_size // ppo.minibatch_size > 1  # an epoch of several steps
    buf = _random_batch(load_teacher(teacher_run / "checkpoint"), ppo)
    model = load_teacher(teacher_run / "checkpoint")
    opt = torch.optim.Adam(model.parameters(), lr=ppo.lr)
    stats = _update(model, opt, buf, dataclasses.replace(ppo, target_kl=1e-9), "cpu")
    # the first step starts at the proximal policy (KL 0); the second starts past the target
    assert max(s["step"] for s in opt.state_dict()["state"].values()) == 1
    assert stats["grad_steps"] == 1 and stats["epochs"] == 1


def test_runs_recorded_before_kl_stop_existed_check_it_per_epoch() -> None:
    recorded = {k: v for k, v in PPOConfig().to_dict().items() if k != "kl_stop"}
    assert PPOConfig.from_dict(recorded).kl_stop == "epoch"
    assert PPOConfig().kl_stop == "minibatch"
    with pytest.raises(ConfigError, match="kl_stop"):
        PPOConfig(kl_stop="batch")


def test_kl_estimator_decides_what_the_stop_compares(teacher_run: Path) -> None:
    from hd_deploy.train.ppo import _update

    ppo = dataclasses.replace(PPOConfig.tiny(), epochs=1, lr=1e-2, kl_stop="epoch")
    buf = _random_batch(load_teacher(teacher_run / "checkpoint"), ppo)

    def update(**changes) -> dict:
        torch.manual_seed(0)  # the same minibatches every time
        model = load_teacher(teacher_run / "checkpoint")
        opt = torch.optim.Adam(model.parameters(), lr=ppo.lr)
        return _update(model, opt, buf, dataclasses.replace(ppo, **changes), "cpu")

    first = update(target_kl=0.0)  # one epoch, no stop: both estimates of it are logged
    k1, k3 = first["kl_k1"], first["approx_kl"]
    assert abs(k1 - k3) > 0.1 * max(abs(k1), k3)  # they differ on this batch
    between = (k1 + k3) / 2  # the epoch passes the target by one estimate and not the other
    for estimator, value in (("k1", k1), ("k3", k3)):
        stats = update(epochs=3, target_kl=between, kl_estimator=estimator)
        assert (stats["epochs"] == 1) == (value > between), estimator


def test_runs_recorded_before_kl_estimator_existed_compared_k3() -> None:
    recorded = {k: v for k, v in PPOConfig().to_dict().items() if k != "kl_estimator"}
    assert PPOConfig.from_dict(recorded).kl_estimator == "k3"
    assert PPOConfig().kl_estimator == "k1"  # MetaMorph's
    with pytest.raises(ConfigError, match="kl_estimator"):
        PPOConfig(kl_estimator="k2")


def test_robot_advantage_norm_standardises_each_robot_by_its_own_samples() -> None:
    from hd_deploy.train.ppo import standardise_advantages

    gen = torch.Generator().manual_seed(0)
    # a fast walker's advantages are 50x a faller's; a third robot has 3 samples only
    robot = torch.tensor([0] * 200 + [1] * 200 + [2] * 3)
    adv = torch.randn(403, generator=gen) * torch.where(robot == 0, 50.0, 1.0) + robot * 7.0
    batch = standardise_advantages(adv)
    assert abs(batch.mean().item()) < 1e-5 and abs(batch.std().item() - 1) < 1e-5
    assert batch[robot == 1].std() < 0.05  # by the batch's scale the faller barely pulls
    own = standardise_advantages(adv, robot, min_samples=32)
    centred = adv - adv.mean()
    for k in (0, 1):  # each robot's to unit size, its offset from the batch's mean kept
        assert own[robot == k].square().mean().item() == pytest.approx(1, rel=1e-5)
        ratio = own[robot == k] / centred[robot == k]
        assert torch.allclose(ratio, ratio[0])  # one scale a robot
    assert torch.equal(own[robot == 2], batch[robot == 2])  # too few: the batch's scale


def test_robot_advantage_norm_reaches_the_update(teacher_run: Path) -> None:
    from hd_deploy.train.ppo import _update

    ppo = dataclasses.replace(PPOConfig.tiny(), epochs=1, lr=1e-2)
    buf = _random_batch(load_teacher(teacher_run / "checkpoint"), ppo)
    T, N = buf["reward"].shape
    buf["reward"] = buf["reward"] * np.where(np.arange(N) % 2, 100.0, 1.0)  # one loud robot
    buf["robot"] = np.broadcast_to(np.arange(N) % 2, (T, N)).copy()

    def loss(norm: str) -> float:
        torch.manual_seed(0)  # the same minibatches every time
        model = load_teacher(teacher_run / "checkpoint")
        opt = torch.optim.Adam(model.parameters(), lr=ppo.lr)
        stats = _update(model, opt, buf, dataclasses.replace(ppo, advantage_norm=norm), "cpu",
                        value_only=False)  # fmt: skip
        return stats["policy_loss"]

    assert loss("robot") != pytest.approx(loss("batch"), rel=1e-3)
    assert PPOConfig().advantage_norm == "batch"  # MetaMorph's, and every run's before
    with pytest.raises(ConfigError, match="advantage_norm"):
        PPOConfig(advantage_norm="episode")


def test_bf16_learner_multiplies_in_bfloat16_and_keeps_float32_weights(teacher_run) -> None:
    from hd_deploy.train.ppo import _update

    teacher = load_teacher(teacher_run / "checkpoint")
    ppo = dataclasses.replace(PPOConfig.tiny(), precision="bf16")
    buf = _random_batch(teacher, ppo)
    args = [torch.as_tensor(buf[k][0]) for k in ("proprio", "context", "limb_mask", "action")]
    amask = torch.as_tensor(buf["action_mask"][0]).float()
    with torch.no_grad():
        full, v_full = _policy(teacher, *args, amask)
        half, v_half = _policy(teacher, *args, amask, bf16=True)
    assert half.dtype == v_half.dtype == torch.float32  # log-density and losses in float32
    assert not torch.equal(half, full)  # the matmuls did run in bfloat16 ...
    torch.testing.assert_close(half, full, rtol=0.05, atol=0.5)  # ... close to float32
    torch.testing.assert_close(v_half, v_full, rtol=0.05, atol=0.05)
    before = [p.detach().clone() for p in teacher.parameters()]
    stats = _update(teacher, torch.optim.Adam(teacher.parameters(), lr=1e-3), buf, ppo, "cpu")
    assert all(np.isfinite(v) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))


def test_precision_is_recorded_and_can_change_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    robots = bundled_robots()[:ROBOTS]
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=64)
    train_teacher(robots, run, teacher_config=TeacherConfig.tiny(), ppo=ppo,
                  precision="bf16", show_progress=False)  # fmt: skip
    extra = json.loads((run / "checkpoint" / "checkpoint.json").read_text())["extra"]
    assert json.loads((run / "run.json").read_text())["ppo"]["precision"] == "bf16"
    assert extra["precision"] == "bf16"
    train_teacher([], run, resume=True, total_steps=128, precision="fp32", show_progress=False)
    extra = json.loads((run / "checkpoint" / "checkpoint.json").read_text())["extra"]
    assert json.loads((run / "run.json").read_text())["ppo"]["precision"] == "fp32"
    assert extra["precision"] == "fp32" and extra["iteration"] == 2
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16"):
        train_teacher([], run, resume=True, precision="fp16", show_progress=False)


def test_resume_changes_the_update_settings_and_records_when(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=64)
    train_teacher(bundled_robots()[:ROBOTS], run, teacher_config=TeacherConfig.tiny(), ppo=ppo,
                  show_progress=False)  # fmt: skip
    train_teacher([], run, resume=True, total_steps=128, show_progress=False,
                  changes={"epochs": 2, "lr": 1e-3, "threads": 1, "clip_value": True,
                           "kl_estimator": "k3", "context_noise": 0.5})  # fmt: skip
    meta = json.loads((run / "run.json").read_text())
    assert (meta["ppo"]["epochs"], meta["ppo"]["lr"], meta["ppo"]["clip_value"]) == (2, 1e-3, True)
    assert meta["changes"] == [
        {
            "after_iteration": 1,
            "total_steps": [64, 128],
            "epochs": [1, 2],
            "lr": [ppo.lr, 1e-3],
            "kl_estimator": ["k1", "k3"],
            "clip_value": [False, True],
            "context_noise": [0.0, 0.5],
        }
    ]  # threads were already 1: not a change
    with open(run / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[1]["lr"]) > ppo.lr  # the new lr ran (cosine: half)
    with pytest.raises(ConfigError, match="a resumed run keeps its n_envs"):
        train_teacher([], run, resume=True, changes={"n_envs": 8}, show_progress=False)
    with pytest.raises(ConfigError, match="minibatch_size .* exceeds the batch"):
        train_teacher([], run, resume=True, changes={"minibatch_size": 10**6},
                      show_progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        train_teacher([], run, resume=True, changes={"threads": 0}, show_progress=False)
    with pytest.raises(ConfigError, match="context_noise must be >= 0"):
        train_teacher([], run, resume=True, changes={"context_noise": -1.0}, show_progress=False)
    with pytest.raises(ConfigError, match="adds no iteration .* give at least 192"):
        train_teacher([], run, resume=True, total_steps=100, show_progress=False)
    assert json.loads((run / "run.json").read_text()) == meta  # refused: nothing written


def test_context_noise_reaches_the_training_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hd_deploy.train import ppo as ppo_module

    asked = []

    class Spy(ppo_module.VecLocomotionEnv):
        def __init__(self, *args, **kwargs) -> None:
            asked.append(kwargs.get("context_noise"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ppo_module, "VecLocomotionEnv", Spy)
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=64, context_noise=0.25)
    train_teacher(bundled_robots()[:ROBOTS], tmp_path / "run", teacher_config=TeacherConfig.tiny(),
                  ppo=ppo, show_progress=False)  # fmt: skip
    assert asked == [0.25]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["ppo"]["context_noise"] == 0.25


def test_bf16_on_a_cpu_without_it_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hd_deploy.train import ppo as ppo_module
    from hd_deploy.train.collect import native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n")
    assert native_bf16("cpu", info) is True
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma f16c\n")  # an AVX2 EPYC
    assert native_bf16("cpu", info) is False
    assert native_bf16("cpu", tmp_path / "absent") is None  # not Linux: no claim, no warning

    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=64)
    robots = bundled_robots()[:ROBOTS]
    for native, precision, warned in ((False, "bf16", True), (True, "bf16", False),
                                      (None, "bf16", False), (False, "fp32", False)):  # fmt: skip
        monkeypatch.setattr(ppo_module, "native_bf16", lambda dev, n=native: n)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            train_teacher(robots, tmp_path / f"{native}-{precision}", ppo=ppo,
                          teacher_config=TeacherConfig.tiny(), precision=precision,
                          show_progress=False)  # fmt: skip
        ours = [w for w in seen if issubclass(w.category, HdWarning)]
        assert len(ours) == int(warned), (native, precision, [str(w.message) for w in seen])
        if warned:
            assert "pass --precision fp32" in str(ours[0].message)


def test_stale_batches_are_weighted_not_clipped(teacher_run: Path) -> None:
    """Decoupled PPO: the clip is centred on the policy at the start of the update; a batch
    collected by an older policy only changes each sample's (truncated) importance weight."""
    from hd_deploy.train.ppo import _update

    ppo = dataclasses.replace(
        PPOConfig.tiny(), epochs=1, max_grad_norm=1e9, max_is_weight=2.0, target_kl=0.0
    )
    ppo = dataclasses.replace(ppo, minibatch_size=ppo.batch_size, update_normalizer=False)
    buf = _random_batch(load_teacher(teacher_run / "checkpoint"), ppo)
    moves, stats = {}, {}
    for shift in (0.0, 1.0, -5.0):  # the acting policy's log-probabilities, shifted
        model = load_teacher(teacher_run / "checkpoint")
        before = [v.detach().clone() for v in model.actor_parameters()]
        opt = torch.optim.SGD(model.parameters(), lr=1.0)  # steps far above float32 ulps
        stats[shift] = _update(model, opt, {**buf, "logp": buf["logp"] + shift}, ppo, "cpu")
        after = model.actor_parameters()
        moves[shift] = torch.cat([(v - b).flatten() for v, b in zip(after, before, strict=True)])
    assert abs(stats[0.0]["stale_kl"]) < 1e-4 and stats[0.0]["explained_var"] <= 1.0
    assert stats[1.0]["stale_kl"] == pytest.approx(1.0, abs=1e-4)
    assert stats[1.0]["clip_frac"] == 0.0  # one step from the proximal policy: nothing clipped
    # weight proximal / acting = e^-shift, truncated at 2: the policy's step scales with it
    tol = {"rtol": 1e-4, "atol": 1e-4 * moves[0.0].abs().max().item()}  # float32 sums
    torch.testing.assert_close(moves[1.0], math.exp(-1.0) * moves[0.0], **tol)
    torch.testing.assert_close(moves[-5.0], 2.0 * moves[0.0], **tol)


def test_gae_matches_hand_computation() -> None:
    ppo = dataclasses.replace(PPOConfig.tiny(), gamma=0.5, gae_lambda=1.0)
    reward = np.array([[1.0], [1.0], [1.0]])
    done = np.array([[False], [True], [False]])
    values = np.zeros((3, 1))
    adv, ret = _gae(reward, done, values, np.array([4.0]), ppo)
    # step 1 ends the episode: 1 + 0.5*1 = 1.5 ; step 2: 1 ; step 3 bootstraps 1 + 0.5*4 = 3
    np.testing.assert_allclose(adv[:, 0], [1.5, 1.0, 3.0])
    np.testing.assert_allclose(ret, adv)


def test_distill_and_evaluate(teacher_run: Path, tmp_path: Path) -> None:
    robots = bundled_robots()[:ROBOTS]
    cfg = DistillConfig.tiny()
    result = distill_student(
        teacher_run / "checkpoint", robots, tmp_path / "student",
        student_config=HyperNetConfig.tiny(), config=cfg, show_progress=False,
    )  # fmt: skip
    assert result.samples == ROBOTS * cfg.samples_per_robot
    student = load_student(tmp_path / "student" / "checkpoint")
    teacher = load_teacher(teacher_run / "checkpoint")
    # the student sees exactly the teacher's observation statistics
    torch.testing.assert_close(student.normalizer.mean, teacher.normalizer.mean)
    meta = json.loads((tmp_path / "student" / "checkpoint" / "checkpoint.json").read_text())
    assert meta["kind"] == "student" and len(meta["robots"]) == ROBOTS
    assert tuple(meta["robot_fingerprints"]) == _fingerprints(robots)
    _assert_contexts_recorded(read_checkpoint_info(tmp_path / "student" / "checkpoint"), robots)
    report = evaluate("student", tmp_path / "student" / "checkpoint", robots[:1], episodes=1,
                      workers=1, show_progress=False)  # fmt: skip
    assert report["robots"][0]["name"] == robots[0].stem
    assert report["robots"][0]["fingerprint"] == _fingerprints(robots[:1])[0]
    assert report["robots"][0]["seen_in_training"] is True  # the student trained on it
    assert np.isfinite(report["return_mean"])


def test_distill_resume_labels_with_the_runs_own_teacher(teacher_run: Path, tmp_path) -> None:
    robots, run = bundled_robots()[:1], tmp_path / "student"
    cfg = DistillConfig.tiny()
    distill_student(teacher_run / "checkpoint", robots, run, student_config=HyperNetConfig.tiny(),
                    config=cfg, show_progress=False)  # fmt: skip
    before = json.loads((run / "run.json").read_text())
    with pytest.raises(ConfigError, match="a resumed run keeps its epochs; it can change n_work"):
        distill_student(None, robots, run, resume=True, changes={"epochs": 9},
                        show_progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="device"):  # no such device here: nothing written
        distill_student(None, robots, run, resume=True, changes={"device": "tpu"},
                        show_progress=False)  # fmt: skip
    assert json.loads((run / "run.json").read_text()) == before
    result = distill_student(None, robots, run, resume=True, show_progress=False,
                             changes={"n_workers": 1, "device": "cpu"})  # fmt: skip
    assert result.epochs == cfg.epochs
    meta = json.loads((run / "run.json").read_text())
    assert (meta["distill"]["n_workers"], meta["distill"]["device"]) == (1, "cpu")
    assert meta["changes"] == [
        {"after_epoch": cfg.epochs, "n_workers": [cfg.n_workers, 1], "device": ["auto", "cpu"]}
    ]
    other = tmp_path / "other-teacher"
    shutil.copytree(teacher_run / "checkpoint", other)
    with pytest.raises(ValueError, match="was distilled from .* leave --teacher out"):
        distill_student(other, robots, run, resume=True, show_progress=False)


def test_distill_refuses_a_student_as_teacher(teacher_run: Path, tmp_path: Path) -> None:
    from hd_deploy.models import CheckpointError

    distill_student(
        teacher_run / "checkpoint", bundled_robots()[:1], tmp_path / "s",
        student_config=HyperNetConfig.tiny(), config=DistillConfig.tiny(), show_progress=False,
    )  # fmt: skip
    with pytest.raises(CheckpointError):
        distill_student(tmp_path / "s" / "checkpoint", bundled_robots()[:1], tmp_path / "t",
                        config=DistillConfig.tiny(), show_progress=False)  # fmt: skip


def test_distill_dagger_round_adds_student_driven_samples(teacher_run: Path, tmp_path) -> None:
    robots = bundled_robots()[:ROBOTS]
    cfg = dataclasses.replace(DistillConfig.tiny(), dagger_rounds=1)
    result = distill_student(
        teacher_run / "checkpoint", robots, tmp_path / "student",
        student_config=HyperNetConfig.tiny(), config=cfg, show_progress=False,
    )  # fmt: skip
    assert result.samples == 2 * ROBOTS * cfg.samples_per_robot
    rows = (tmp_path / "student" / "progress.csv").read_text().strip().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["0", "1"]


def test_distill_resume_after_a_crash_does_not_collect_a_round_twice(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hd_deploy.train.bc as bc
    import hd_deploy.train.distill as distill

    robots = bundled_robots()[:1]
    cfg = dataclasses.replace(DistillConfig.tiny(), dagger_rounds=1)
    kwargs = {"student_config": HyperNetConfig.tiny(), "config": cfg, "show_progress": False}
    rounds: list[int] = []  # the round of every collection
    collect, save = distill.collect, bc.save_checkpoint

    def counted(*args, **kw):
        rounds.append(kw.get("seed_offset", 0))
        return collect(*args, **kw)

    def killed_after_round_data(*args, **kw):
        if rounds == [0, 1]:  # round 1 collected and its data saved; no checkpoint since
            raise RuntimeError("killed")
        save(*args, **kw)

    monkeypatch.setattr(distill, "collect", counted)
    whole = distill_student(teacher_run / "checkpoint", robots, tmp_path / "whole", **kwargs)
    assert rounds == [0, 1]

    rounds.clear()
    run = tmp_path / "crashed"
    monkeypatch.setattr(bc, "save_checkpoint", killed_after_round_data)
    with pytest.raises(RuntimeError, match="killed"):
        distill_student(teacher_run / "checkpoint", robots, run, **kwargs)
    assert DistillData.load(run / "data.npz").n_samples == whole.samples  # the round is on disk
    monkeypatch.setattr(bc, "save_checkpoint", save)
    resumed = distill_student(None, robots, run, resume=True, show_progress=False)

    assert rounds == [0, 1]  # as many collections as the uninterrupted run
    assert resumed.samples == whole.samples == 2 * cfg.samples_per_robot
    assert DistillData.load(run / "data.npz").n_samples == whole.samples

    def epoch_round_samples(folder: Path) -> list[list[str]]:
        rows = (folder / "progress.csv").read_text().strip().splitlines()
        return [row.split(",")[:3] for row in rows]

    assert epoch_round_samples(run) == epoch_round_samples(tmp_path / "whole")


def test_distill_init_starts_from_a_student_checkpoint(teacher_run: Path, tmp_path) -> None:
    from hd_deploy.models import CheckpointError

    robots = bundled_robots()[:1]
    first = tmp_path / "first"
    distill_student(
        teacher_run / "checkpoint", robots, first, student_config=HyperNetConfig.tiny(),
        config=DistillConfig.tiny(), show_progress=False,
    )  # fmt: skip
    start = load_student(first / "checkpoint")
    # lr so small that one step barely moves the weights: the run must begin at `start`
    cfg = dataclasses.replace(DistillConfig.tiny(), epochs=1, lr=1e-12)
    distill_student(
        teacher_run / "checkpoint", robots, tmp_path / "more", config=cfg,
        student_config=HyperNetConfig.reference(), init=first / "checkpoint",
        show_progress=False,
    )  # fmt: skip
    after = load_student(tmp_path / "more" / "checkpoint")
    assert after.config == start.config  # the init's size wins over student_config
    for (name, a), b in zip(start.state_dict().items(), after.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)
    assert json.loads((tmp_path / "more" / "run.json").read_text())["init"] == str(
        first / "checkpoint"
    )
    with pytest.raises(CheckpointError):  # a teacher is no student to start from
        distill_student(teacher_run / "checkpoint", robots, tmp_path / "bad", config=cfg,
                        init=teacher_run / "checkpoint", show_progress=False)  # fmt: skip
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("bad", [0.0, -1e-3])
def test_configs_refuse_a_non_positive_learning_rate(bad: float) -> None:
    with pytest.raises(ValueError, match="lr must be > 0"):
        DistillConfig(lr=bad)
    with pytest.raises(ValueError, match="lr must be > 0"):
        PPOConfig(lr=bad)


def test_distill_refuses_seed_data_of_other_robots(teacher_run: Path, tmp_path) -> None:
    import shutil

    first = tmp_path / "first"
    distill_student(
        teacher_run / "checkpoint", bundled_robots()[:ROBOTS], first,
        student_config=HyperNetConfig.tiny(), config=DistillConfig.tiny(), show_progress=False,
    )  # fmt: skip
    (tmp_path / "second").mkdir()
    shutil.copy(first / "data.npz", tmp_path / "second" / "data.npz")
    with pytest.raises(ValueError, match="holds data of 2 robots, the run has 1"):
        distill_student(
            teacher_run / "checkpoint", bundled_robots()[:1], tmp_path / "second",
            init=first / "checkpoint", config=DistillConfig.tiny(), show_progress=False,
        )  # fmt: skip


def test_distill_seeds_a_run_with_another_runs_data_in_its_robot_order(
    teacher_run: Path, tmp_path
) -> None:
    robots = bundled_robots()[:ROBOTS]
    first = tmp_path / "first"
    kw = {"config": DistillConfig.tiny(), "show_progress": False}
    distill_student(teacher_run / "checkpoint", robots, first,
                    student_config=HyperNetConfig.tiny(), **kw)  # fmt: skip
    seed = first / "data.npz"
    before = DistillData.load(seed)
    # no new collection: the run trains on the seed's samples; its DAgger round adds to
    # the run's own file (a hard link until then) and leaves the seed as it was
    dagger = dataclasses.replace(DistillConfig.tiny(), dagger_rounds=1)
    second = distill_student(teacher_run / "checkpoint", robots, tmp_path / "second",
                             init=first / "checkpoint", data=seed, config=dagger,
                             show_progress=False)  # fmt: skip
    after = DistillData.load(tmp_path / "second" / "data.npz")
    assert json.loads((tmp_path / "second" / "run.json").read_text())["data"] == str(seed)
    assert after.n_samples == second.samples > before.n_samples
    np.testing.assert_array_equal(after.proprio[: before.n_samples], before.proprio)
    np.testing.assert_array_equal(DistillData.load(seed).proprio, before.proprio)
    with pytest.raises(ConfigError, match="its robot 1 is not .* give the robots in the data"):
        distill_student(teacher_run / "checkpoint", robots[::-1], tmp_path / "swapped",
                        init=first / "checkpoint", data=seed, **kw)  # fmt: skip
    assert not (tmp_path / "swapped").exists()
    with pytest.raises(ConfigError, match="drop --data"):
        distill_student(None, robots, first, data=seed, resume=True, **kw)
    (tmp_path / "extended").mkdir()  # as scripts/extend_data.py leaves a run folder
    shutil.copy(seed, tmp_path / "extended" / "data.npz")
    with pytest.raises(ConfigError, match="already seeds this run"):
        distill_student(teacher_run / "checkpoint", robots, tmp_path / "extended", data=seed, **kw)
    own = tmp_path / "extended" / "data.npz"  # naming the folder's own file is no conflict
    again = distill_student(teacher_run / "checkpoint", robots, tmp_path / "extended",
                            init=first / "checkpoint", data=own, **kw)  # fmt: skip
    assert again.samples == before.n_samples
    with pytest.raises(FileNotFoundError, match="no such file"):
        distill_student(teacher_run / "checkpoint", robots, tmp_path / "third",
                        data=tmp_path / "none.npz", **kw)  # fmt: skip


def test_seed_data_is_copied_whole_where_it_cannot_be_linked(tmp_path, monkeypatch) -> None:
    import os

    from hd_deploy.train import distill

    source, target = tmp_path / "a.npz", tmp_path / "run" / "data.npz"
    source.write_bytes(b"samples")
    target.parent.mkdir()

    def no_link(*args):
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    distill._link_or_copy(source, target)
    assert target.read_bytes() == b"samples" and not target.is_symlink()
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.npz"]  # no partial left


@pytest.mark.parametrize("name", ["weight_decay", "context_noise"])
def test_distill_config_refuses_negative_regularisation(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be >= 0"):
        DistillConfig(**{name: -0.1})


def test_weight_decay_is_decoupled_from_the_gradient() -> None:
    student = HyperNetPolicy(HyperNetConfig.tiny())
    opt = make_optimizer(student, DistillConfig(lr=0.1, weight_decay=0.5))
    before = [p.detach().clone() for p in opt.param_groups[0]["params"]]
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.zeros_like(p)
    opt.step()  # a zero gradient moves nothing but the decay: p <- p * (1 - lr * wd)
    for b, p in zip(before, opt.param_groups[0]["params"], strict=True):
        torch.testing.assert_close(p.detach(), b * 0.95)
    assert not any(n.startswith("normalizer.") for n, p in student.named_parameters()
                   if any(p is q for q in opt.param_groups[0]["params"]))  # fmt: skip


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_context_noise_perturbs_only_what_the_hypernetwork_sees(noise: float, monkeypatch) -> None:
    student = HyperNetPolicy(HyperNetConfig.tiny())
    rng = np.random.default_rng(0)
    L = student.config.max_limbs
    parts = [{"proprio": rng.standard_normal((32, L, 17)).astype(np.float32),
              "action": np.zeros((32, L, 2), np.float32),
              "context": rng.standard_normal((L, 53)).astype(np.float32),
              "limb_mask": np.arange(L) < 2 + r, "action_mask": np.ones((L, 2), bool)}
             for r in range(2)]  # fmt: skip
    data = DistillData.from_parts(parts)
    original = data.context.copy()
    seen = []
    generate = student.generate

    def spy(context, limb_mask):
        seen.append((context.detach().clone(), limb_mask.numpy()))
        return generate(context, limb_mask)

    monkeypatch.setattr(student, "generate", spy)
    cfg = dataclasses.replace(DistillConfig.tiny(), context_noise=noise, device="cpu")
    train_epoch(student, make_optimizer(student, cfg), data, cfg, torch.device("cpu"))
    assert seen
    for context, masks in seen:  # robots told apart by their limb counts (2 and 3)
        clean = torch.as_tensor(original[masks.sum(axis=1) - 2])
        assert torch.equal(context, clean) == (noise == 0.0)
    assert np.array_equal(data.context, original)  # the data itself is untouched


def test_collect_adds_episode_openings_per_robot(teacher_run: Path) -> None:
    from hd_deploy.train.rollout import collect

    robots = bundled_robots()[:ROBOTS]
    # One-step openings: every extra sample is a freshly reset state, nearly at rest.
    cfg = dataclasses.replace(DistillConfig.tiny(), start_samples_per_robot=16, start_steps=1)
    data = collect(teacher_run / "checkpoint", robots, config=cfg, show_progress=False)
    assert data.n_samples == ROBOTS * (cfg.samples_per_robot + 16)
    for r in range(ROBOTS):
        idx = data.robot_indices(r)
        assert len(idx) == cfg.samples_per_robot + 16
        real = data.limb_mask[r]
        speed = np.abs(data.proprio[idx][:, real, 3:9]).max(axis=(1, 2))
        assert speed[-16:].max() < 0.1
        assert speed[: cfg.samples_per_robot].max() > 0.1  # the full episodes move


def test_distill_config_refuses_empty_openings() -> None:
    with pytest.raises(ValueError, match="start_steps must be >= 1"):
        DistillConfig(start_steps=0)
    with pytest.raises(ValueError, match="start_samples_per_robot must be >= 0"):
        DistillConfig(start_samples_per_robot=-1)


@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("bf16", 0.05)])
def test_rollouts_record_the_log_probability_of_the_acting_policy(
    teacher_run: Path, precision: str, atol: float
) -> None:
    from hd_deploy.envs.task import TaskConfig
    from hd_deploy.envs.vec_env import VecLocomotionEnv
    from hd_deploy.train.collect import Collector
    from hd_deploy.train.scaling import RunningScale

    teacher = load_teacher(teacher_run / "checkpoint")
    ppo = dataclasses.replace(PPOConfig.tiny(), precision=precision)
    task = TaskConfig(max_limbs=teacher.config.max_limbs)
    env = VecLocomotionEnv(bundled_robots()[:ROBOTS], n_envs=ppo.n_envs, n_workers=0, config=task)
    collector = Collector(
        env, ppo, RunningScale(ppo.n_envs, ppo.gamma), torch.device("cpu"), seed=0
    )
    try:
        buf, _ = collector.collect(teacher)
    finally:
        collector.close()
    T, N = ppo.rollout_steps, ppo.n_envs
    flat = {k: torch.as_tensor(buf[k].reshape(T * N, *buf[k].shape[2:]))
            for k in ("proprio", "context", "limb_mask", "action", "action_mask")}  # fmt: skip
    with torch.no_grad():
        logp, _ = _policy(teacher, flat["proprio"], flat["context"], flat["limb_mask"],
                          flat["action"], flat["action_mask"].float(),
                          bf16=precision == "bf16")  # fmt: skip
    # bf16: both sides multiply in bfloat16, in batches of different sizes
    np.testing.assert_allclose(buf["logp"].reshape(-1), logp.numpy(), rtol=0, atol=atol)
    if precision == "bf16":  # and the acting policy did multiply in bfloat16
        with torch.no_grad():
            logp32, _ = _policy(teacher, flat["proprio"], flat["context"], flat["limb_mask"],
                                flat["action"], flat["action_mask"].float())  # fmt: skip
        assert np.abs(buf["logp"].reshape(-1) - logp32.numpy()).max() > 1e-5


def test_clipped_value_loss_takes_no_gradient_from_a_prediction_past_the_clip() -> None:
    start = torch.zeros(4)
    ret = torch.tensor([1.0, 1.0, 0.1, 1.0])
    # past the clip, away from the return; past it, beyond the return; inside it (twice)
    value = torch.tensor([0.5, -0.5, 0.5, 0.1], requires_grad=True)
    plain = value_loss(value, start, ret)
    assert plain.item() == pytest.approx(0.5 * (0.25 + 2.25 + 0.16 + 0.81) / 4)
    clipped = value_loss(value, start, ret, clip=0.2)
    # 1: max(0.25, (0.2 - 1)^2 = 0.64); 2: max(2.25, (-0.2 - 1)^2) = 2.25; 3: max(0.16, 0.01)
    assert clipped.item() == pytest.approx(0.5 * (0.64 + 2.25 + 0.16 + 0.81) / 4)
    clipped.backward()
    assert value.grad is not None
    assert value.grad[0] == 0  # the clipped error rules: moving on gains nothing
    assert (value.grad[1:] != 0).all()
    grad = torch.autograd.grad(value_loss(value, start, ret), value)[0]
    assert torch.equal(value.grad[1:], grad[1:])  # where the plain error rules, its gradient


def test_lr_warmup_ramps_the_first_iterations_from_a_tenth_as_metamorph_does(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    ppo = dataclasses.replace(PPOConfig.tiny(), total_steps=256, lr_schedule="constant",
                              lr_warmup=2)  # fmt: skip
    train_teacher(bundled_robots()[:ROBOTS], run, teacher_config=TeacherConfig.tiny(), ppo=ppo,
                  show_progress=False)  # fmt: skip
    with open(run / "progress.csv") as f:
        lrs = [float(row["lr"]) / ppo.lr for row in csv.DictReader(f)]
    assert [round(x, 6) for x in lrs] == [0.1, 0.55, 1.0, 1.0]  # 4 iterations of 64
    assert json.loads((run / "run.json").read_text())["ppo"]["lr_warmup"] == 2
    with pytest.raises(ConfigError, match="lr_warmup must be >= 0"):
        dataclasses.replace(ppo, lr_warmup=-1)
