"""CLI smoke tests: hd-inspect, hd-generate, hd-train, hd-distill, hd-eval (tiny runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hd_deploy.cli.inspect import generate_app, inspect_app
from hd_deploy.cli.train import clone_app, distill_app, eval_app, experts_app, train_app
from hd_deploy.morphology.sources import bundled_robots
from tests.conftest import gym_robots

runner = CliRunner()


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_inspect_json_keys(tiny_file: Path) -> None:
    result = runner.invoke(inspect_app, [str(tiny_file), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for key in ("name", "n_limbs", "n_actuators", "obs_dim", "context_dim", "fingerprint", "limbs"):
        assert key in info
    assert info["n_limbs"] == 3 and info["obs_dim"] == 51 and info["context_dim"] == 159


def test_inspect_table_on_gym_and_bundled_robots() -> None:
    for path in [*gym_robots(), *bundled_robots()]:
        result = runner.invoke(inspect_app, [str(path)])
        assert result.exit_code == 0, result.output
        assert "fingerprint" in result.output


def test_inspect_broken_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body>")
    assert "malformed MJCF" in _one_error_line(runner.invoke(inspect_app, [str(bad)]))
    missing = _one_error_line(runner.invoke(inspect_app, [str(tmp_path / "none.xml")]))
    assert "no such robot file" in missing


def test_inspect_places_the_robot_against_a_checkpoints_training_robots(tmp_path: Path) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy, save_checkpoint
    from hd_deploy.models.checkpoint import read_checkpoint_info, read_contexts
    from hd_deploy.train.shipped import shipped

    # unseen by the shipped models, and far from their robots (7.0 from the student's, which
    # lie 2.9 apart; 7.3 from the teacher's, 4.3 apart)
    robot = next(r for r in bundled_robots() if r.stem == "gen-4")
    result = runner.invoke(inspect_app, [str(robot), "--checkpoint", "student", "--json"])
    assert result.exit_code == 0, result.output
    near = json.loads(result.output)["nearest_training"]
    info = read_checkpoint_info(shipped("student"))
    assert near["checkpoint"] == "student" and near["robot"] in info.robots
    assert near["training_robots"] == len(info.robots) and near["far"]
    assert near["distance"] > 1.5 * near["spacing"]
    result = runner.invoke(inspect_app, [str(robot), "--checkpoint", str(shipped("teacher"))])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-2].startswith(f"{robot.stem}: nearest training robot ")
    assert lines[-1].startswith(f"warning: {robot.stem} is unlike every robot this model")
    # a training robot of the shipped teacher lies at its own place
    contexts = read_contexts(read_checkpoint_info(shipped("teacher")))
    assert contexts is not None and contexts.shape[1:] == (12, 53)
    bare = save_checkpoint(tmp_path / "bare", TeacherPolicy(TeacherConfig.tiny()), robots=["x"])
    line = _one_error_line(runner.invoke(inspect_app, [str(robot), "--checkpoint", str(bare)]))
    assert "records no training robots' contexts (scripts/add_contexts.py adds them)" in line
    line = _one_error_line(runner.invoke(inspect_app, [str(robot), "--checkpoint", "nope"]))
    assert "nope: no such checkpoint" in line


def test_eval_notes_the_robots_the_checkpoint_trained_on() -> None:
    from hd_deploy.cli.train import seen_line

    def robot(ret: float, seen: bool | None) -> dict:
        return {"return_mean": ret, "seen_in_training": seen}

    report = {"robots": [robot(800.0, True), robot(100.0, False), robot(300.0, False)]}
    assert seen_line(report) == (
        "note: 1 of 3 robots are bodies this checkpoint trained on (by fingerprint): mean "
        "return 800.0 on them, 200.0 on the other 2"
    )
    assert seen_line({"robots": [robot(1.0, False), robot(2.0, None)]}) is None
    assert seen_line({"robots": [{"return_mean": 5.0}]}) is None  # reports from before it


def test_generate_writes_robots(tmp_path: Path) -> None:
    every = ["--count", "3", "--seed", "5", "--stand-steps", "0"]
    result = runner.invoke(generate_app, [str(tmp_path / "every"), *every])
    assert result.exit_code == 0 and result.output.strip().endswith("every"), result.output
    names = sorted(p.name for p in (tmp_path / "every").glob("*.xml"))
    assert names == ["gen-5.xml", "gen-6.xml", "gen-7.xml"]
    # by default the draws that fold unpowered are skipped: gen-7 does (hd-bench's bundled one)
    result = runner.invoke(
        generate_app, [str(tmp_path / "standing"), "--count", "3", "--seed", "5"]
    )
    assert result.exit_code == 0 and "draws skipped" in result.output, result.output
    assert "gen-7.xml" not in {p.name for p in (tmp_path / "standing").glob("*.xml")}


def test_train_distill_eval_tiny(tmp_path: Path) -> None:
    robot = str(bundled_robots()[0])
    tiny = ["--tiny", "--n-envs", "2", "--rollout-steps", "16"]  # a batch of 32, as --tiny
    shape = ["--epochs", "2", "--minibatch-size", "16"]
    result = runner.invoke(train_app, [robot, *tiny, *shape, "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    ppo = json.loads((tmp_path / "t" / "run.json").read_text())["ppo"]
    assert (ppo["n_envs"], ppo["rollout_steps"]) == (2, 16)
    assert (ppo["epochs"], ppo["minibatch_size"]) == (2, 16)
    teacher = tmp_path / "t" / "checkpoint"
    result = runner.invoke(
        distill_app, [robot, "--tiny", "--teacher", str(teacher), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    collection = json.loads((tmp_path / "s" / "collection.json").read_text())
    data = np.load(tmp_path / "s" / "data.npz")
    assert collection["samples"] == len(data[data.files[0]]) > 0 and collection["wall_s"] >= 0
    out = tmp_path / "eval.json"
    args = [str(tmp_path / "s" / "checkpoint"), "--robots", robot, "--episodes", "1"]
    result = runner.invoke(eval_app, [*args, "--workers", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["robots"][0]["name"] == Path(robot).stem
    assert "return_mean" in report and "return_mean" in report["robots"][0]


def test_train_says_so_when_no_episode_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hd_deploy.train.ppo import TrainResult

    short = TrainResult(tmp_path / "t", 32, 1, float("nan"), False)  # no episode ended yet
    monkeypatch.setattr("hd_deploy.train.ppo.train_teacher", lambda *a, **k: short)
    result = runner.invoke(train_app, [str(bundled_robots()[0]), "--tiny", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "32 env steps, no episode finished yet" in result.output and "nan" not in result.output


def test_train_no_pos_embedding_reaches_the_new_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hd_deploy.train.ppo import TrainResult

    seen = []

    def fake(*args, **kwargs):
        seen.append(kwargs["teacher_config"])
        return TrainResult(tmp_path / "t", 32, 1, float("nan"), False)

    monkeypatch.setattr("hd_deploy.train.ppo.train_teacher", fake)
    robot = str(bundled_robots()[0])
    for flag, want in (("--no-pos-embedding", False), ("--pos-embedding", True)):
        result = runner.invoke(train_app, [robot, "--tiny", flag, "--out", str(tmp_path / flag)])
        assert result.exit_code == 0, result.output
        assert seen[-1].pos_embedding is want
    result = runner.invoke(train_app, [robot, "--reference", "--no-pos-embedding"])
    assert result.exit_code == 0, result.output
    assert seen[-1].pos_embedding is False and seen[-1].n_layers == 5


def test_experts_clone_tiny(tmp_path: Path) -> None:
    robot = str(bundled_robots()[0])
    args = [robot, "--tiny", "--workers", "1", "--out", str(tmp_path / "e")]
    result = runner.invoke(experts_app, args)
    assert result.exit_code == 0, result.output
    assert "experts: 1 robots" in result.output
    result = runner.invoke(clone_app, [str(tmp_path / "e"), "--tiny", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "checkpoint" / "model.safetensors").exists()
    assert "no experts" in _one_error_line(runner.invoke(clone_app, [str(tmp_path / "nothing")]))


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no robot" in _one_error_line(runner.invoke(train_app, [str(empty), "--tiny"]))
    line = _one_error_line(runner.invoke(eval_app, [str(tmp_path / "nope")]))
    assert "no such checkpoint" in line
    line = _one_error_line(runner.invoke(eval_app, [str(empty)]))
    assert "neither a checkpoint folder" in line
    # a robot the model cannot host: more limbs than the maximum
    big = tmp_path / "big.xml"
    big.write_text(_chain_robot(13))
    line = _one_error_line(
        runner.invoke(train_app, [str(big), "--tiny", "--out", str(tmp_path / "x")])
    )
    assert "13 limbs, more than the maximum of 12" in line
    # options that contradict each other or a config's bounds
    out = ["--out", str(tmp_path / "d")]
    line = _one_error_line(runner.invoke(distill_app, ["--init", str(empty), "--reference", *out]))
    assert "--init takes the size of its checkpoint" in line
    line = _one_error_line(runner.invoke(distill_app, ["--tiny", "--weight-decay", "-1", *out]))
    assert "weight_decay must be >= 0" in line
    assert not (tmp_path / "d").exists()
    # hd-train --init --reference: the paper's PPO settings, the checkpoint's size
    line = _one_error_line(runner.invoke(train_app, ["--init", str(empty), "--reference", *out]))
    assert "checkpoint" in line and "--init takes the size" not in line
    # --resume: an option the run would ignore is refused unless it is the run's own value
    run = tmp_path / "r"
    run.mkdir()
    record = {"ppo": {"n_envs": 4, "minibatch_size": 512}, "teacher": {"action_std": 0.9},
              "distill": {"epochs": 12, "dagger_rounds": 1}}  # fmt: skip
    (run / "run.json").write_text(json.dumps(record))
    resume = ["--resume", "--out", str(run)]
    line = _one_error_line(runner.invoke(train_app, [*resume, "--n-envs", "8"]))
    assert "--resume goes on with the run's own settings" in line
    assert "--n-envs 8 (the run's: 4)" in line and "it can change --steps, --epochs" in line
    same = [*resume, "--n-envs", "4", "--action-std", "0.9", "--epochs", "2"]
    assert "no checkpoint to resume from" in _one_error_line(runner.invoke(train_app, same))
    line = _one_error_line(runner.invoke(train_app, [*resume, "--no-pos-embedding"]))
    assert "--no-pos-embedding (the run's: --pos-embedding)" in line
    line = _one_error_line(
        runner.invoke(train_app, ["--init", str(empty), "--no-pos-embedding", *out])
    )
    assert "--init takes the model of its checkpoint" in line and "drop_pos_embedding" in line
    line = _one_error_line(runner.invoke(train_app, [*resume, "--lr-warmup", "5"]))
    # a resumed run does not warm up again; one recorded before the option had none
    assert "--lr-warmup 5 (the run's: 0)" in line
    line = _one_error_line(runner.invoke(train_app, ["--tiny", "--lr-warmup", "-1", *out]))
    assert "lr_warmup must be >= 0" in line
    line = _one_error_line(runner.invoke(distill_app, [*resume, "--epochs", "80", "--lr", "1"]))
    # lr is not recorded here: a run.json from before a setting existed loads its default
    assert "--epochs 80 (the run's: 12), --lr 1.0 (the run's: 0.001)" in line
    line = _one_error_line(runner.invoke(distill_app, [*resume, "--clip-labels"]))
    assert "--clip-labels (the run's: --no-clip-labels)" in line
    same = [*resume, "--no-clip-labels"]
    assert "no checkpoint to resume from" in _one_error_line(runner.invoke(distill_app, same))
    line = _one_error_line(runner.invoke(distill_app, [*resume, "--dagger", "0"]))
    assert "--dagger 0 (the run's: 1)" in line and "it can change --workers, --device" in line
    same = [*resume, "--epochs", "12", "--workers", "1"]
    line = _one_error_line(runner.invoke(distill_app, same))
    assert "no checkpoint to resume from" in line
    big_minibatch = ["--tiny", "--minibatch-size", "4096", *out]
    assert "exceeds the batch" in _one_error_line(runner.invoke(train_app, big_minibatch))
    fp16 = ["--tiny", "--precision", "fp16", *out]
    assert "precision must be one of fp32, bf16" in _one_error_line(runner.invoke(train_app, fp16))
    line = _one_error_line(runner.invoke(train_app, ["--tiny", "--init", str(empty), *out]))
    assert "checkpoint" in line
    for command in (train_app, distill_app, clone_app):  # two sizes: none wins silently
        line = _one_error_line(runner.invoke(command, [str(empty), "--reference", "--tiny", *out]))
        assert "--reference and --tiny name two sizes" in line
    assert not (tmp_path / "d").exists()


def _chain_robot(n_limbs: int) -> str:
    """A torso with a chain of ``n_limbs - 1`` one-hinge capsules."""
    body = ""
    for i in reversed(range(n_limbs - 1)):
        body = (
            f'<body name="l{i}" pos="0.1 0 0"><joint name="j{i}" axis="0 1 0" range="-30 30"/>'
            f'<geom type="capsule" fromto="0 0 0 0.1 0 0" size="0.02"/>{body}</body>'
        )
    motors = "".join(f'<motor joint="j{i}" gear="150"/>' for i in range(n_limbs - 1))
    return (
        '<mujoco><compiler angle="degree"/><worldbody><body name="torso" pos="0 0 0.5">'
        f'<freejoint/><geom size="0.1"/>{body}</body></worldbody>'
        f"<actuator>{motors}</actuator></mujoco>"
    )


def test_a_gl_backend_without_its_library_breaks_only_rendering() -> None:
    import os
    import subprocess
    import sys

    from hd_deploy.morphology.sources import bundled_robots

    code = (
        "import sys; from hd_deploy.cli.inspect import inspect_app; "
        f"sys.argv = ['hd-inspect', {str(bundled_robots()[0])!r}]; inspect_app()"
    )
    env = {**os.environ, "MUJOCO_GL": "osmesa"}  # libOSMesa is absent here (and if not: fine)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-1500:]
    assert "limbs" in done.stdout and "Traceback" not in done.stderr


def test_messages_say_what_to_do(tmp_path) -> None:
    from typer.testing import CliRunner

    from hd_deploy.cli.inspect import inspect_app
    from hd_deploy.cli.train import eval_app
    from hd_deploy.morphology.sources import BUNDLED_ROBOTS, bundled_robots

    runner = CliRunner()
    res = runner.invoke(inspect_app, [str(BUNDLED_ROBOTS)])
    assert res.exit_code == 2 and "a folder; name one robot file in it" in res.output
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "checkpoint.json").write_text("{}")
    res = runner.invoke(eval_app, [str(run), "--robots", str(bundled_robots()[0])])
    assert res.exit_code == 2 and f"a run folder, not a checkpoint; pass {run / 'checkpoint'}" in (
        res.output
    )
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = runner.invoke(eval_app, ["teacher", "--robots", str(bundled_robots()[0]),
                                   "--json", str(blocker / "x.json")])  # fmt: skip
    assert res.exit_code == 2 and "--json" in res.output and "a file" in res.output
