"""The analysis scripts under scripts/: imitation gap and the model card's return plot."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hd_deploy.models import HyperNetConfig, HyperNetPolicy
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.runtime import native
from hd_deploy.train.config import DistillConfig
from hd_deploy.train.distill import imitation_errors
from hd_deploy.train.rollout import DistillData

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _data(student: HyperNetPolicy, n_limbs=(3, 5), samples: int = 7) -> DistillData:
    rng = np.random.default_rng(0)
    L = student.config.max_limbs
    parts = []
    for n in n_limbs:
        context = np.zeros((L, student.config.context_dim), np.float32)
        context[:n] = rng.standard_normal((n, student.config.context_dim))
        limb_mask = np.arange(L) < n
        action_mask = np.zeros((L, 2), bool)
        action_mask[:n, 0] = True
        proprio = np.zeros((samples, L, 17), np.float32)
        proprio[:, :n] = rng.standard_normal((samples, n, 17))
        with torch.no_grad():
            w = student.generate(torch.as_tensor(context[None]), torch.as_tensor(limb_mask[None]))
            own = student.apply(w, torch.as_tensor(proprio), torch.zeros(samples, dtype=torch.long))
        parts.append({"proprio": proprio, "action": own.numpy(), "context": context,
                      "limb_mask": limb_mask, "action_mask": action_mask})  # fmt: skip
    return DistillData.from_parts(parts)


def test_imitation_errors_are_zero_on_own_actions_and_grow_with_noise() -> None:
    student = HyperNetPolicy(HyperNetConfig.tiny()).eval()
    data = _data(student)
    for e in imitation_errors(student, data):
        assert e.loss < 1e-10 and e.relative < 1e-8 and e.executed < 1e-10
    data.action = data.action + 0.1  # every real actuator off by 0.1: loss 0.5 * 0.01
    for e in imitation_errors(student, data):
        assert abs(e.loss - 0.005) < 1e-6
    # beyond +-1 only what the motor runs counts: labels of 1 and of 3 are the same command
    data.action = np.where(data.action_mask[data.robot] > 0, 1.0, 0.0).astype(np.float32)
    at_one = imitation_errors(student, data)
    assert data.saturated == 0.0
    data.action = data.action * 3.0
    at_three = imitation_errors(student, data)
    assert data.saturated == 1.0
    for one, three in zip(at_one, at_three, strict=True):
        assert three.loss > one.loss + 1.0  # the training loss sees a difference of 2 or more
        assert three.executed == pytest.approx(one.executed)  # the robot does not


def test_return_plot_needs_both_evaluations(tmp_path: Path) -> None:
    card = _load("model_card")
    out = tmp_path / "plot.png"
    assert not card.plot_returns(tmp_path, "t", "s", out) and not out.exists()
    for run, scale in (("t", 1.0), ("s", 0.9)):
        robots = [{"name": f"r{i}", "return_mean": scale * 100 * i} for i in range(4)]
        (tmp_path / f"eval_{run}_train.json").write_text(json.dumps({"robots": robots}))
    assert card.plot_returns(tmp_path, "t", "s", out)
    assert out.stat().st_size > 1000


def test_card_names_where_a_ppo_teacher_trained() -> None:
    card = _load("model_card")
    assert card._ppo_device({}) == "a 2-core CPU"  # checkpoints from before the field
    gpu = {"device": "cuda (NVIDIA H200)", "workers": 14}
    assert card._ppo_device(gpu) == "cuda (NVIDIA H200) with 14 physics workers"


def test_sweep_settings_and_held_out_robots() -> None:
    sweep = _load("generalisation_sweep")
    name, distill, model = sweep.parse_setting("reg:context_noise=0.2,context_dropout=0.3,lr=5e-4")
    assert name == "reg" and distill.context_noise == 0.2 and distill.lr == 5e-4
    assert model.context_dropout == 0.3 and model.hidden == HyperNetConfig.small().hidden
    assert sweep.parse_setting("base:")[0] == "base"
    with pytest.raises(SystemExit, match="unknown option 'dropout'"):
        sweep.parse_setting("x:dropout=0.3")
    train, held = sweep.split_robots(12, holdout_every=5, among=10)
    assert held == [4, 9] and train == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]


def test_sweep_trains_a_fresh_student_per_setting_and_reports_every_set() -> None:
    sweep = _load("generalisation_sweep")
    teacher = HyperNetPolicy(HyperNetConfig.tiny())  # only its normaliser is read
    data = _data(teacher, n_limbs=(2, 3, 4), samples=40)
    cfg = dataclasses.replace(DistillConfig.tiny(), device="cpu")
    train, held = data.select([0, 1]), data.select([2])
    res = sweep.run_setting("t", cfg, HyperNetConfig.tiny(), train, {"held_out": held}, teacher,
                            epochs=3, eval_every=2, seed=0)  # fmt: skip
    assert [row["epoch"] for row in res["curve"]] == [2, 3]
    assert res["final"]["held_out"]["relative_median"] > 0


def test_add_fingerprints_records_the_named_robots_and_keeps_the_weights(
    tmp_path: Path, tiny_xml: str
) -> None:
    from hd_deploy.models import (
        TeacherConfig,
        TeacherPolicy,
        checkpoint_hash,
        read_checkpoint_info,
        save_checkpoint,
    )
    from hd_deploy.morphology import robot_fingerprint
    from hd_deploy.morphology.generator import generate_robot

    script = _load("add_fingerprints")
    robots = tmp_path / "robots"
    robots.mkdir()
    (robots / "tiny.xml").write_text(tiny_xml)
    (robots / "gen.xml").write_text(generate_robot(3, n_limbs=3))
    (robots / "other.xml").write_text(generate_robot(4, n_limbs=3))  # not named: not read
    ckpt = save_checkpoint(tmp_path / "ckpt", TeacherPolicy(TeacherConfig.tiny()),
                           robots=["gen", "tiny"])  # fmt: skip
    weights, hashed = (ckpt / "model.safetensors").read_bytes(), checkpoint_hash(ckpt)
    want = [robot_fingerprint(robots / "gen.xml"), robot_fingerprint(robots / "tiny.xml")]
    assert script.add_fingerprints(ckpt, [robots]) == want
    assert read_checkpoint_info(ckpt).robot_fingerprints == tuple(want)
    assert (ckpt / "model.safetensors").read_bytes() == weights
    assert checkpoint_hash(ckpt) == hashed
    (robots / "tiny.xml").unlink()
    with pytest.raises(ValueError, match=r"no robot file for 1 of the .+: \['tiny'\]"):
        script.add_fingerprints(ckpt, [robots])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "gen.xml").write_text(generate_robot(5, n_limbs=3))
    with pytest.raises(ValueError, match="another file named gen is a different robot"):
        script.add_fingerprints(ckpt, [robots, elsewhere])


def _robot_folder(folder: Path, **robots: str) -> Path:
    """A folder of MJCF files, ``name=text`` each."""
    folder.mkdir()
    for name, text in robots.items():
        (folder / f"{name}.xml").write_text(text)
    return folder


def test_add_contexts_records_the_named_robots_and_keeps_the_model(
    tmp_path: Path, tiny_xml: str
) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy, checkpoint_hash, save_checkpoint
    from hd_deploy.models.checkpoint import read_checkpoint_info, read_contexts
    from hd_deploy.morphology.generator import generate_robot
    from hd_deploy.morphology.nearness import fingerprints_and_places

    script = _load("add_contexts")
    robots = _robot_folder(tmp_path / "robots", tiny=tiny_xml, gen=generate_robot(3, n_limbs=3))
    config = TeacherConfig.tiny()
    fps, want = fingerprints_and_places([robots / "gen.xml", robots / "tiny.xml"],
                                        config.max_limbs)  # fmt: skip
    by_name = save_checkpoint(tmp_path / "a", TeacherPolicy(config), robots=["gen", "tiny"])
    # by fingerprint: a renamed file is the same robot
    (robots / "gen.xml").rename(robots / "renamed.xml")
    by_fp = save_checkpoint(tmp_path / "b", TeacherPolicy(config), robots=["gen", "tiny"],
                            fingerprints=fps)  # fmt: skip
    hashed = checkpoint_hash(by_fp)
    script.add_contexts(by_fp, [robots])
    got = read_contexts(read_checkpoint_info(by_fp))
    assert got is not None
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert checkpoint_hash(by_fp) == hashed
    with pytest.raises(ValueError, match=r"no robot file for 1 of the .+: \['gen'\]"):
        script.add_contexts(by_name, [robots])  # by name, and gen is now renamed.xml
    (robots / "renamed.xml").rename(robots / "gen.xml")
    script.add_contexts(by_name, [robots])
    np.testing.assert_allclose(read_contexts(read_checkpoint_info(by_name)), want, atol=1e-3)


def test_add_eval_fingerprints_marks_the_bodies_a_checkpoint_trained_on(
    tmp_path: Path, tiny_xml: str
) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy, save_checkpoint
    from hd_deploy.morphology import robot_fingerprint
    from hd_deploy.morphology.generator import generate_robot

    script = _load("add_eval_fingerprints")
    # twin: the training robot under another name
    robots = _robot_folder(tmp_path / "robots", twin=tiny_xml, other=generate_robot(3, n_limbs=3))
    ckpt = save_checkpoint(tmp_path / "ckpt", TeacherPolicy(TeacherConfig.tiny()),
                           robots=["tiny"], fingerprints=[robot_fingerprint(tiny_xml)])  # fmt: skip
    rows = [{"name": n, "return_mean": 1.0} for n in ("twin", "other")]
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({"policy": str(ckpt), "kind": "teacher", "robots": rows}))
    files = {f.stem: f for f in robots.glob("*.xml")}
    script.add_eval_fingerprints(report, files)
    got = json.loads(report.read_text())["robots"]
    assert [(r["name"], r["seen_in_training"]) for r in got] == [("twin", True), ("other", False)]
    assert got[1]["fingerprint"] == robot_fingerprint(robots / "other.xml")
    assert got[0]["return_mean"] == 1.0  # the numbers stay
    with pytest.raises(ValueError, match="robot twin is not among --robots"):
        script.add_eval_fingerprints(report, {})
    card = _load("model_card")
    s = {"robots": [dict(r, return_mean=3.0) for r in got]}
    assert card._unseen_means(json.loads(report.read_text()), s) == (1, 1.0, 3.0)
    assert card._unseen_means({"robots": rows}, s) is None  # reports from before


def test_model_card_reports_the_generalisation_sweep(tmp_path: Path) -> None:
    card = _load("model_card")
    assert not any("Regularising" in line for line in card._limits(tmp_path, "t", "s"))
    (tmp_path / "sweep").mkdir()
    final = {"held_out": {"relative_median": 0.84}, "unseen": {"relative_median": 1.16}}
    report = {"epochs": 40, "held_out": [4, 9], "results": [{"name": "drop", "final": final}]}
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps(report))
    (line,) = [x for x in card._limits(tmp_path, "t", "s") if "Regularising" in x]
    assert "drop 0.84 / 1.16" in line and "2 UNIMAL training robots held out" in line


def test_model_card_reports_the_executed_imitation_error_where_measured(tmp_path: Path) -> None:
    card = _load("model_card")
    old = {"set": "x/test", "relative_median": 0.78}
    (tmp_path / "gap_s.json").write_text(json.dumps({"samples": 300, "sets": [old]}))
    lines = [x for x in card._limits(tmp_path, "t", "s") if "imitation error" in x
             or "executed actions" in x]  # fmt: skip
    assert len(lines) == 1 and "test 0.78" in lines[0]  # a report from before: no new line
    new = {**old, "executed_relative_median": 0.92, "teacher_saturated": 0.45}
    (tmp_path / "gap_s.json").write_text(json.dumps({"samples": 300, "sets": [new]}))
    (line,) = [x for x in card._limits(tmp_path, "t", "s") if "executed actions" in x]
    assert "test 0.92 (45% of the teacher's commands beyond +-1)" in line


def test_model_card_pools_the_evaluation_seeds(tmp_path: Path) -> None:
    card = _load("model_card")
    for run, returns in (("t", (100.0, 120.0)), ("s", (95.0, 90.0))):
        for name, (seed, value) in zip(("train", "train_seed1"), enumerate(returns), strict=True):
            report = {"seed": seed, "episodes": 3, "return_mean": value, "robots": []}
            (tmp_path / f"eval_{run}_{name}.json").write_text(json.dumps(report))
    (line,) = card._seed_lines(tmp_path, "t", "s")  # test measured at one seed only: no line
    assert line.startswith("- UNIMAL train at evaluation seeds 0, 1")
    assert "95.0%" in line and "75.0%" in line
    assert "pooled over the seeds 84.1%" in line  # (95 + 90) / (100 + 120)
    for run, returns in (("t", (200.0, 100.0)), ("s", (180.0, 100.0))):
        for name, (seed, value) in zip(("mutate200", "mutate200_seed1"), enumerate(returns),
                                       strict=True):  # fmt: skip
            report = {"seed": seed, "episodes": 1, "return_mean": value, "robots": []}
            (tmp_path / f"eval_{run}_{name}.json").write_text(json.dumps(report))
    held_out = card._seed_lines(tmp_path, "t", "s")[1]
    assert held_out.startswith("- Held-out `mutate200` at evaluation seeds 0, 1 (1 episode each)")
    assert "pooled over the seeds 93.3%" in held_out  # 280 / 300


def test_model_card_names_the_robot_that_carries_the_train_shortfall(tmp_path: Path) -> None:
    card = _load("model_card")
    assert card._deficit_line(tmp_path, "t", "s") == []
    for run, values in (("t", (100.0, 50.0, 10.0)), ("s", (40.0, 40.0, 10.0))):
        robots = [{"name": f"r{i}", "return_mean": v} for i, v in enumerate(values)]
        (tmp_path / f"eval_{run}_train.json").write_text(json.dumps({"robots": robots}))
    (line,) = card._deficit_line(tmp_path, "t", "s")
    assert "`r0` alone carries 86%" in line and "1 evaluation seed)" in line  # 60 of 70
    robots = [{"name": f"r{i}", "return_mean": v} for i, v in enumerate((40.0, 40.0, 90.0))]
    (tmp_path / "eval_s_train.json").write_text(json.dumps({"robots": robots}))
    (line,) = card._deficit_line(tmp_path, "t", "s")  # the student leads overall (r2: +80)
    assert "`r0` alone carries 86%" in line and "ten worst robots 100%" in line


def test_physics_bound_is_positive_and_refuses_no_steps() -> None:
    from hd_deploy.bench.physics import physics_steps_per_s
    from hd_deploy.morphology.sources import bundled_robots

    assert physics_steps_per_s(bundled_robots()[:1], steps_per_robot=5) > 0
    with pytest.raises(ValueError, match="steps_per_robot must be >= 1"):
        physics_steps_per_s(bundled_robots()[:1], steps_per_robot=0)


def test_env_benchmark_reports_its_share_of_the_physics_bound(tmp_path: Path) -> None:
    bench = _load("bench_env")
    rows = bench.main(["--steps", "3", "--envs", "2", "--workers", "0", "--physics-steps", "3",
                       "--unimal", str(tmp_path / "absent")])  # fmt: skip
    assert len(rows) == 1 and rows[0].robot_set == "bundled"
    assert rows[0].cores == 1 and 0 < rows[0].ratio < 10


@pytest.mark.parametrize("robots, controllers", [(12, 6)])
def test_fuzz_sample_never_crashes(robots: int, controllers: int, tmp_path: Path) -> None:
    fuzz = _load("fuzz")
    results = fuzz.main(["--robots", str(robots), "--controllers", str(controllers),
                         "--unimal", str(tmp_path / "absent")])  # fmt: skip
    assert results["robots"]["crashed"] == 0 and results["controllers"]["crashed"] == 0
    assert sum(results["robots"].values()) == robots
    assert results["robots"]["refused"] > 0  # the mutations do reach the checks


@pytest.mark.slow
def test_fuzz_everything_never_crashes() -> None:
    results = _load("fuzz").main(["--robots", "300", "--controllers", "80"])
    assert results["robots"]["crashed"] == 0 and results["controllers"]["crashed"] == 0


def test_control_step_benchmark_times_every_stage_of_every_backend() -> None:
    rows = _load("bench_control_step").main([str(bundled_robots()[0]), "--steps", "20"])
    backends = {"onnx", "numpy"} | ({"c", "c-split"} if native.find_compiler() else set())
    assert {r["backend"] for r in rows} == backends
    one_call = [r for r in rows if r["backend"] == "c" and r["observation"] == "native"]
    assert len(one_call) == (1 if native.find_compiler() else 0)
    for r in rows:
        assert r["obs_us_p50"] > 0 and r["latency_us_p50"] > 0 and r["physics_us_p50"] > 0
        want = (r["obs_us_p50"] + r["latency_us_p50"]) / r["physics_us_p50"]
        assert math.isclose(r["obs_policy_over_physics"], want, rel_tol=1e-9)


def test_extend_data_appends_teacher_data_for_the_new_robots_only(tmp_path: Path) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy, save_checkpoint
    from hd_deploy.train.rollout import collect

    script = _load("extend_data")
    teacher = save_checkpoint(tmp_path / "teacher", TeacherPolicy(TeacherConfig.tiny()), robots=[])
    cfg = dataclasses.replace(DistillConfig.tiny(), samples_per_robot=8)
    old_robots = [str(r) for r in bundled_robots()[:1]]
    run = tmp_path / "run"
    run.mkdir()
    meta = {"distill": cfg.to_dict(), "teacher": str(teacher), "robots": old_robots}
    (run / "run.json").write_text(json.dumps(meta))
    old = collect(teacher, old_robots, config=cfg, show_progress=False)
    old.save(run / "data.npz")
    out = tmp_path / "new"
    script.main([str(run), *map(str, bundled_robots()[:2]), "--out", str(out), "--workers", "0"])
    both = DistillData.load(out / "data.npz")
    assert (out / "robots.txt").read_text().split() == [*old_robots, str(bundled_robots()[1])]
    assert both.n_robots == 2 and np.array_equal(np.bincount(both.robot), [8, 8])
    assert np.array_equal(both.proprio[both.robot_indices(0)], old.proprio)
    record = json.loads((out / "extended.json").read_text())
    assert (record["run"], record["robots_added"], record["samples_added"]) == (str(run), 1, 8)
    card_line = _load("model_card").extended_line(out)
    assert "labelled the 1 added robots" in card_line[0] and "(8 samples," in card_line[0]
    assert _load("model_card").extended_line(run) == []  # a run collected by hd-distill
    with pytest.raises(SystemExit, match="already holds a run or its data"):
        script.main([str(run), str(bundled_robots()[2]), "--out", str(out)])
    with pytest.raises(SystemExit, match="every robot given is already in the run"):
        script.main([str(run), old_robots[0], "--out", str(tmp_path / "other")])
    (teacher / "model.safetensors").unlink()  # a run whose teacher's weights were pruned
    with pytest.raises(SystemExit, match="its teacher does not load"):
        script.main([str(run), str(bundled_robots()[2]), "--out", str(tmp_path / "other")])


def test_model_card_names_the_robot_mix_and_the_zero_shot_curve(tmp_path: Path) -> None:
    card = _load("model_card")
    robots = [
        "../shared/unimal/train/a.xml",
        "../shared/unimal/train_mutate/b.xml",
        "../shared/unimal/train_mutate/c.xml",
        "training/generated/gen-1.xml",
        "x/d.xml",
    ]
    assert card.robot_mix(robots) == "1 UNIMAL train, 2 train_mutate, 1 generated, 1 other"
    progress = tmp_path / "progress.csv"
    progress.write_text("iteration,env_steps,return_recent,eval_return\n"
                        "1,100,5.0,\n2,200,9.0,3.5\n3,300,12.0,\n")  # fmt: skip
    assert card.zero_shot_curve(progress) == [(200, 9.0, 3.5)]
    # a run that logged the mean over robots (balanced sampling) is read by it, where logged
    progress.write_text("iteration,env_steps,return_recent,eval_return,return_robots\n"
                        "1,100,5.0,2.0,\n2,200,9.0,3.5,40.0\n")  # fmt: skip
    assert card.zero_shot_curve(progress) == [(100, 5.0, 2.0), (200, 40.0, 3.5)]
    assert card.thin([1, 2, 3]) == [1, 2, 3]
    shown = card.thin(list(range(40)))  # a long run's evaluations: at most 12, the last kept
    steps = {b - a for a, b in zip(shown, shown[1:], strict=False)}
    assert len(shown) <= 12 and shown[-1] == 39 and len(steps) == 1


def test_model_card_says_what_a_student_run_trained_on_and_how_far() -> None:
    card = _load("model_card")
    plan = {"epochs": 6, "dagger_rounds": 1}
    assert card.trained(plan, {"epoch": "6", "round": "1"}) == "6 epochs, DAgger rounds 1"
    assert card.trained(plan, {"epoch": "3", "round": "0"}) == (
        "3 of its 6 epochs, DAgger rounds 0 of its 1"
    )
    run = {"distill": {"samples_per_robot": 8000, "dagger_rounds": 0}, "data": "a/data.npz"}
    assert (
        card._samples(run, {"round": "0", "samples": "2097000"}) == "2,097,000 samples (`--data`)"
    )
    assert card._timed(run, {"round": "0"}) == "training"
    run["distill"] = {"samples_per_robot": 1500, "dagger_rounds": 1}  # its round collected
    assert card._samples(run, {"round": "1"}) == "1500 teacher samples per robot"
    assert card._timed(run, {"round": "1"}) == "training and DAgger collection"


def test_model_card_measures_the_teacher_against_the_papers(tmp_path: Path) -> None:
    card = _load("model_card")
    assert not any("paper" in line for line in card._limits(tmp_path, "t", "s"))
    for name, seed, value in (("train", 0, 1700.0), ("train_seed1", 1, 1900.0),
                              ("test", 0, 585.0)):  # fmt: skip
        report = {
            "seed": seed,
            "return_mean": value,
            "robots": [{"name": "a", "return_mean": value}],
        }
        (tmp_path / f"eval_t_{name}.json").write_text(json.dumps(report))
    (line,) = [x for x in card._limits(tmp_path, "t", "s") if "paper" in x]
    assert "1800 on train (50%), 585 on test (50%)" in line  # seeds pooled: (1700 + 1900) / 2


def test_model_card_tables_every_test_robot_and_the_replaced_pair(tmp_path: Path) -> None:
    card = _load("model_card")
    for run, seeds in (("t", {0: (100.0, 40.0), 1: (80.0, 20.0)}), ("s", {0: (90.0, 0.0)})):
        for seed, values in seeds.items():
            name = "test" if seed == 0 else f"test_seed{seed}"
            robots = [{"name": f"r{i}", "return_mean": v} for i, v in enumerate(values)]
            report = {"seed": seed, "robots": robots, "return_mean": sum(values) / 2}
            (tmp_path / f"eval_{run}_{name}.json").write_text(json.dumps(report))
    table = card.per_robot_table(tmp_path, "t", "s")
    assert "mean over evaluation seeds 0;" in table[3]  # only the seeds both were measured at
    assert table[-2:] == ["| r0 | 100.0 | 90.0 | 90% |", "| r1 | 40.0 | 0.0 | - |"]
    assert card.per_robot_table(tmp_path, "t", "absent") == []
    prev = card.previous_lines(tmp_path, "t:s")
    assert prev[-1] == "| UNIMAL test | 60.0 | 45.0 |" and prev[-2] == "| UNIMAL train | - | - |"
    report = {"seed": 0, "robots": [{"name": "m0", "return_mean": 30.0}], "return_mean": 30.0}
    (tmp_path / "eval_s_mutate200.json").write_text(json.dumps(report))  # a row once measured
    assert card.previous_lines(tmp_path, "t:s")[-1] == "| held-out `mutate200` | - | 30.0 |"
    assert card.previous_lines(tmp_path, None) == []


def test_model_card_finds_the_run_behind_a_shipped_checkpoint(tmp_path: Path) -> None:
    card = _load("model_card")
    run = tmp_path / "training" / "student_x"
    (run / "checkpoint").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "checkpoint" / "checkpoint.json").write_text('{"kind": "student", "a": 1}')
    shipped = tmp_path / "assets" / "student"
    shipped.mkdir(parents=True)
    (shipped / "checkpoint.json").write_text('{"kind": "student", "a": 1}')
    assert card.run_of(run / "checkpoint", tmp_path / "training") == run
    assert card.run_of(shipped, tmp_path / "training") == run  # the copy, by its record
    (shipped / "checkpoint.json").write_text('{"kind": "student", "a": 2}')
    with pytest.raises(SystemExit, match="no run in .* wrote this checkpoint"):
        card.run_of(shipped, tmp_path / "training")
    assert card.seeded_line({"data": "training/a/data.npz"}) == [
        "- Trained on `training/a/data.npz`'s samples (`--data`), not a new collection."
    ]
    assert card.seeded_line({"init": None}) == card.seeded_line({"data": None}) == []


def test_chained_runs_start_where_the_run_before_ended(tmp_path: Path) -> None:
    plot = _load("plot_wall_clock")
    header = "iteration,env_steps,wall_s,return_recent,eval_return\n"
    first, second = tmp_path / "first", tmp_path / "second"
    for run, rows in ((first, "1,1000000,60,100,\n2,2000000,120,200,50\n"),
                      (second, "1,500000,600,250,80\n")):  # fmt: skip
        run.mkdir()
        (run / "progress.csv").write_text(header + rows)
    assert plot.offsets([first, second], "steps", chain=False) == [0.0, 0.0]
    assert plot.offsets([first, second], "steps", chain=True) == [0.0, 2e6]
    assert plot.offsets([first, second], "hours", chain=True) == [0.0, 120.0]
    rows = plot.read(second)
    assert plot.value_at(rows, 2.0, x="steps", offset=2e6) is None  # starts at 2.5M steps
    assert plot.value_at(rows, 2.5, "eval_return", x="steps", offset=2e6) == 80.0
    assert plot.value_at(rows, 2.5, x="steps", offset=2e6) == 250.0
    assert plot.value_at([*rows, {"env_steps": "0", "return_robots": "300"}], 2.5,
                         x="steps", offset=2e6) == 300.0  # fmt: skip
    plot.main([str(first), str(second), "--chain", "--x", "steps",
               "--out", str(tmp_path / "lineage.png")])  # fmt: skip
    assert (tmp_path / "lineage.png").stat().st_size > 0


def test_plot_places_branches_where_their_init_checkpoint_was_written(tmp_path: Path) -> None:
    plot = _load("plot_wall_clock")
    runs = {name: tmp_path / name for name in ("root", "trunk", "branch", "stray")}
    inits = {  # run: (--init checkpoint, the steps and wall time it was written at)
        "trunk": ("elsewhere/checkpoint", 5e6, 3600.0),  # its run is not listed: from 0
        "branch": (runs["trunk"] / "checkpoint", 2e6, 600.0),
        "stray": (runs["root"] / "checkpoint", 1e6, 60.0),
    }
    for name, run in runs.items():
        run.mkdir()
        (run / "progress.csv").write_text("env_steps,wall_s,return_recent\n1000,10,5\n")
        meta = {}
        if name in inits:
            init, steps, wall = inits[name]
            meta = {
                "init": str(init),
                "init_checkpoint": {"extra": {"env_steps": steps, "wall_s": wall}},
            }
        (run / "run.json").write_text(json.dumps(meta))
    listed = [runs[n] for n in ("root", "trunk", "branch", "stray")]
    assert plot.init_offsets(listed, "steps") == [0.0, 5e6, 7e6, 1e6]
    assert plot.init_offsets(listed, "hours") == [0.0, 3600.0, 4200.0, 60.0]
    # a branch whose --init is a copy made outside the run folder, told its parent
    assert plot.init_offsets(listed, "steps", {runs["stray"]: runs["trunk"]})[3] == 6e6
    out = tmp_path / "branches.png"
    plot.main([*map(str, listed), "--from-init", "--x", "steps", "--out", str(out)])
    assert out.stat().st_size > 0
    with pytest.raises(SystemExit):
        plot.main([*map(str, listed), "--from-init", "--chain", "--out", str(out)])


def _ppo_run(folder: Path, steps: int, device: str, **run) -> dict:
    ppo = {"seed": 0, "n_envs": 32, "rollout_steps": 160, "epochs": 8, "minibatch_size": 5120,
           "lr": 3e-4, "lr_schedule": "cosine", "total_steps": 10**8}  # fmt: skip
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"ppo": ppo, "robots": ["a.xml"], **run}))
    ckpt = {"extra": {"env_steps": steps, "iteration": 1, "wall_s": 60.0, "device": device,
                      "workers": 14}}  # fmt: skip
    (folder / "checkpoint" / "checkpoint.json").write_text(json.dumps(ckpt))
    (folder / "progress.csv").write_text(f"env_steps,return_recent,eval_return\n{steps},10,5\n")
    return ckpt


def test_card_follows_a_teacher_run_to_the_run_it_started_from(tmp_path: Path) -> None:
    card = _load("model_card")
    first = _ppo_run(tmp_path / "first", 5_000_000, "cuda (NVIDIA H200)")
    shipped = tmp_path / "package" / "teacher"  # --init named the package's teacher...
    second = {"init": str(shipped), "init_checkpoint": first}
    ckpt = _ppo_run(tmp_path / "second", 1_000_000, "cpu", **second)
    shipped.mkdir(parents=True)  # ...which holds the continued run's checkpoint by now
    (shipped / "checkpoint.json").write_text(json.dumps(ckpt))
    run = json.loads((tmp_path / "second" / "run.json").read_text())
    lines = card._ppo_lines(run, ckpt, {"return_recent": "10"}, tmp_path / "second")
    assert not any("bfloat16" in line for line in lines)
    ckpt["extra"]["precision"] = "bf16"
    assert any("bfloat16" in line for line in card._ppo_lines(run, ckpt, {}, tmp_path / "second"))
    started = [i for i, line in enumerate(lines) if line.startswith("- Started (`--init`)")]
    assert len(started) == 1 and "first`'s checkpoint" in lines[started[0]]
    sub = lines[started[0] + 1 :]
    assert sub and all(line.startswith("  - ") for line in sub)
    assert any("5,000,000" in line and "H200" in line for line in sub)
    assert any("1,000,000" in line and "2-core CPU" in line for line in lines[: started[0]])


def test_falls_lists_the_robots_that_fall_beside_motors_off() -> None:
    falls = _load("falls")
    files = bundled_robots()[:2]
    report = {
        "policy": "p", "seed": 0,
        "robots": [
            {"name": files[0].stem, "episode_length_mean": 40.0, "return_mean": 5.0,
             "returns": [5.0]},
            {"name": files[1].stem, "episode_length_mean": 1000.0, "return_mean": 90.0,
             "returns": [90.0]},
        ],
    }  # fmt: skip
    out = falls.falls(report, files, below=1000, seed=0)
    assert (out["robots"], out["falling"], out["return_mean"]) == (2, 1, 47.5)
    (row,) = out["rows"]
    length, ret = falls.motors_off(files[0], 1, 0)  # one episode: the report's, at its seed
    assert row["name"] == files[0].stem
    assert (row["motors_off_length"], row["motors_off_return"]) == (length, ret)
    assert 0 < length <= 1000
    assert out["stand_with_motors_off"] == int(length >= 1000)
    with pytest.raises(SystemExit, match="is not among --robots"):
        falls.falls(report, files[1:], below=1000, seed=0)
    alone = falls.falls(report, None, below=1000, seed=0)  # the report's numbers only
    assert alone["rows"] == [{"name": files[0].stem, "length": 40.0, "return": 5.0}]
    assert alone["stand_with_motors_off"] is None


def test_falls_groups_the_robots_by_limb_count() -> None:
    falls = _load("falls")
    report = {"robots": [
        {"name": "a", "n_limbs": 9, "episode_length_mean": 300.0, "return_mean": 10.0},
        {"name": "b", "n_limbs": 7, "episode_length_mean": 1000.0, "return_mean": 500.0},
        {"name": "c", "n_limbs": 9, "episode_length_mean": 1000.0, "return_mean": 30.0},
    ]}  # fmt: skip
    assert falls.by_limbs(report, below=1000) == [
        {"limbs": 7, "robots": 1, "return_mean": 500.0, "falling": 0},
        {"limbs": 9, "robots": 2, "return_mean": 20.0, "falling": 1},
    ]
    assert falls.by_limbs(report, below=200)[1]["falling"] == 0


def test_card_says_how_a_run_stops_at_its_target_kl(tmp_path: Path) -> None:
    card = _load("model_card")
    ckpt = _ppo_run(tmp_path / "run", 1_000_000, "cpu")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    run["ppo"]["target_kl"] = 0.05  # recorded before kl_stop existed: checked per epoch
    first = card._ppo_lines(run, ckpt, {}, tmp_path / "run")[0]
    assert "an update's epochs stop at KL (k3) 0.05" in first
    run["ppo"].update(kl_stop="minibatch", kl_estimator="k1")
    first = card._ppo_lines(run, ckpt, {}, tmp_path / "run")[0]
    assert "no gradient step past an approximate KL (k1) of 0.05" in first
    assert "warmed up" not in first
    run["ppo"]["lr_warmup"] = 5
    first = card._ppo_lines(run, ckpt, {}, tmp_path / "run")[0]
    assert "learning rate warmed up from 0.1x over 5 iterations" in first
    assert "value loss clipped" not in first
    run["ppo"]["clip_value"] = True
    assert (
        "value loss clipped as MetaMorph's" in card._ppo_lines(run, ckpt, {}, tmp_path / "run")[0]
    )


def test_compare_robots_splits_the_change_by_how_long_episodes_lasted(tmp_path: Path) -> None:
    cmp = _load("compare_robots")
    head = "robot,episodes,episode_length,return,draw_share\n"
    (tmp_path / "old.csv").write_text(head + "a,10,100,50,0.5\nb,2,1000,900,0.1\nc,0,nan,nan,0\n")
    (tmp_path / "new.csv").write_text(head + "a,12,160,90,0.4\nb,2,1000,850,0.1\nd,1,5,1,0.5\n")
    rows = cmp.compare(cmp.read(tmp_path / "old.csv"), cmp.read(tmp_path / "new.csv"), short=500)
    assert [r["robots"] for r in rows] == [2, 1, 1]  # a and b only: c has no episode, d is new
    everyone, short, long = rows
    assert everyone["return_old"] == 475 and everyone["return_new"] == 470
    assert (short["median_return_change"], short["median_length_change"]) == (40, 60)
    assert (long["rose"], long["fell"]) == (0, 1)
    (tmp_path / "bad.csv").write_text("robot,return\na,1\n")
    assert cmp.main([str(tmp_path / "old.csv"), str(tmp_path / "bad.csv")]) == 2
    assert cmp.main([str(tmp_path / "old.csv"), str(tmp_path / "new.csv")]) == 0


def test_nearest_robots_groups_a_report_by_distance_to_the_training_robots() -> None:
    nr = _load("nearest_robots")
    files = bundled_robots()[:4]
    places = np.stack([nr.place(f) for f in files])
    assert places.shape == (4, 12 * 53)
    train, queries = places[:2], places[1:]
    d = nr.nearest(queries, train)
    assert d[0] == pytest.approx(0.0, abs=1e-3)  # a training robot is its own nearest
    expected = [min(np.linalg.norm(q - t) for t in train) for q in queries]
    np.testing.assert_allclose(d, expected, rtol=1e-4)
    alone = nr.nearest(train, train, exclude_self=True)
    np.testing.assert_allclose(alone, np.linalg.norm(train[0] - train[1]), rtol=1e-4)
    report = {"robots": [
        {"name": "far", "episode_length_mean": 100.0, "return_mean": 10.0},
        {"name": "near", "episode_length_mean": 1000.0, "return_mean": 500.0},
        {"name": "mid", "episode_length_mean": 1000.0, "return_mean": 300.0},
    ]}  # fmt: skip
    out = nr.by_distance(report, {"far": 9.0, "near": 1.0, "mid": 5.0}, groups=2, below=1000)
    assert [r["name"] for r in out["robots"]] == ["near", "mid", "far"]
    assert out["groups"] == [
        {"distance_min": 1.0, "distance_max": 5.0, "robots": 2, "return_mean": 400.0,
         "falling": 0},
        {"distance_min": 9.0, "distance_max": 9.0, "robots": 1, "return_mean": 10.0,
         "falling": 1},
    ]  # fmt: skip
    assert out["rank_correlation"] == pytest.approx(-1.0)
    assert nr.rank_correlation(np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 9.0])) == 1.0


def test_nearest_robots_splits_at_hd_exports_warning_and_reads_a_checkpoint(
    tmp_path: Path,
) -> None:
    import argparse

    from hd_deploy.models import TeacherConfig, TeacherPolicy, read_checkpoint_info, save_checkpoint
    from hd_deploy.train.shipped import shipped

    nr = _load("nearest_robots")
    robots = [{"name": "a", "distance": 1.0, "return": 500.0, "length": 1000.0},
              {"name": "b", "distance": 4.0, "return": 100.0, "length": 300.0},
              {"name": "c", "distance": 9.0, "return": 50.0, "length": 1000.0}]  # fmt: skip
    marked = [{"robots": [dict(r, seen_in_training=r["name"] == "b") for r in robots]}]
    assert [r["name"] for r in nr.unseen_only({"robots": robots}, marked)["robots"]] == ["a", "c"]
    with pytest.raises(ValueError, match="does not record seen_in_training"):
        nr.unseen_only({"robots": robots}, [{"robots": robots}])
    assert nr.far_split(robots, 4.0, below=1000) == [
        {"robots": 2, "return_mean": 300.0, "falling": 1},
        {"robots": 1, "return_mean": 50.0, "falling": 0},
    ]
    places = nr._training_places(argparse.Namespace(train=None, checkpoint=shipped("teacher")))
    assert places.shape == (len(read_checkpoint_info(shipped("teacher")).robots), 12 * 53)
    bare = save_checkpoint(tmp_path / "bare", TeacherPolicy(TeacherConfig.tiny()), robots=["x"])
    with pytest.raises(ValueError, match="records no robot contexts"):
        nr._training_places(argparse.Namespace(train=None, checkpoint=bare))


def test_nearest_robots_pools_the_seeds_robot_by_robot() -> None:
    nr = _load("nearest_robots")
    a = {"robots": [{"name": "x", "return_mean": 10.0, "episode_length_mean": 1000.0},
                    {"name": "y", "return_mean": 4.0, "episode_length_mean": 200.0}]}  # fmt: skip
    b = {"robots": [{"name": "y", "return_mean": 8.0, "episode_length_mean": 400.0},
                    {"name": "x", "return_mean": 30.0, "episode_length_mean": 1000.0}]}  # fmt: skip
    assert nr.pooled([a, b])["robots"] == [
        {"name": "x", "return_mean": 20.0, "episode_length_mean": 1000.0},
        {"name": "y", "return_mean": 6.0, "episode_length_mean": 300.0},
    ]
    with pytest.raises(ValueError, match="not of the same robots"):
        nr.pooled([a, {"robots": a["robots"][:1]}])
    with pytest.raises(ValueError, match="no robots"):
        nr.pooled([a, {}])


def test_model_card_places_the_test_robots_by_distance_to_the_teachers(tmp_path: Path) -> None:
    card = _load("model_card")
    for run, values in (("t", (100.0, 40.0)), ("s", (90.0, 0.0))):
        robots = [{"name": f"r{i}", "return_mean": v} for i, v in enumerate(values)]
        (tmp_path / f"eval_{run}_test.json").write_text(json.dumps({"seed": 0, "robots": robots}))
    assert card._nearest_line(tmp_path, "t") == []
    near = {
        "reports": ["a", "b"], "train_nearest_median": 2.5, "rank_correlation": -1.0,
        "groups": [
            {"distance_min": 1.0, "distance_max": 1.0, "robots": 1, "return_mean": 100.0,
             "falling": 0},
            {"distance_min": 7.25, "distance_max": 7.25, "robots": 1, "return_mean": 40.0,
             "falling": 1},
        ],
        "robots": [{"name": "r0", "distance": 1.0}, {"name": "r1", "distance": 7.25}],
    }  # fmt: skip
    (tmp_path / "nearest_t_test.json").write_text(json.dumps(near))
    (line,) = card._nearest_line(tmp_path, "t")
    assert "1.0-1.0: 100 (0 of 1 falling); 7.2-7.2: 40 (1 of 1 falling)" in line
    assert "2.50 from each other" in line and "rank correlation -1.00" in line
    assert "2 evaluation seeds pooled" in line
    assert any("Which unseen robots" in x for x in card._limits(tmp_path, "t", "s"))
    table = card.per_robot_table(tmp_path, "t", "s")
    assert table[-4:] == [
        "| robot | teacher | student | student / teacher | distance |",
        "|---|---|---|---|---|",
        "| r0 | 100.0 | 90.0 | 90% | 1.00 |",
        "| r1 | 40.0 | 0.0 | - | 7.25 |",
    ]


def test_context_probe_perturbs_only_what_it_names() -> None:
    script = _load("context_probe")
    from hd_deploy.envs.task import LocomotionTask

    ctx = LocomotionTask(bundled_robots()[0], headless=True).context
    out = dict(script.perturbed(ctx, np.random.default_rng(0), [0.1]))
    assert list(out) == ["own", "limb noise 0.1", "joint range class", "zero"]
    assert np.array_equal(out["own"], ctx)
    noisy, moved = out["limb noise 0.1"], out["joint range class"]
    limb = script.LIMB_DIM
    assert np.array_equal(noisy[:, limb:], ctx[:, limb:]) and not np.array_equal(noisy, ctx)
    assert noisy.min() >= -1.0 and noisy.max() <= 1.0
    changed = np.argwhere(moved != ctx)  # one hinge: its old class off, a new one on
    assert len(changed) == 2 and changed[0, 0] == changed[1, 0]
    assert moved.sum() == ctx.sum() and not out["zero"].any()


def test_context_probe_runs_every_condition_on_the_robots_that_stay_up(tmp_path: Path) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy

    script = _load("context_probe")
    files = bundled_robots()[:2]
    report = {"policy": "p", "seed": 0, "robots": [
        {"name": files[0].stem, "episode_length_mean": 1000.0, "return_mean": 5.0},
        {"name": files[1].stem, "episode_length_mean": 300.0, "return_mean": 90.0},
    ]}  # fmt: skip
    teacher = TeacherPolicy(TeacherConfig.tiny())
    out = script.probe(teacher, report, files, count=5, episodes=1, noise=[0.1], seed=0)
    assert [r["name"] for r in out["robots"]] == [files[0].stem]  # the falling one is left out
    assert list(out["summary"]) == ["own", "limb noise 0.1", "joint range class", "zero"]
    assert all(s["robots"] == 1 for s in out["summary"].values())
    assert out["summary"]["own"]["moved_mean"] == 0 < out["summary"]["zero"]["moved_mean"]
    with pytest.raises(SystemExit, match="is not among --robots"):
        script.probe(teacher, report, files[1:], count=5, episodes=1, noise=[], seed=0)


def test_average_checkpoints_takes_the_mean_of_every_weight_and_refuses_mismatches(
    tmp_path: Path,
) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy, load_teacher, save_checkpoint
    from hd_deploy.models.checkpoint import read_checkpoint_info

    script = _load("average_checkpoints")
    config = TeacherConfig.tiny()
    paths, states = [], []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        model = TeacherPolicy(config)
        model.normalizer.update(torch.randn(4, config.max_limbs, config.proprio_dim) + seed,
                                torch.ones(4, config.max_limbs))  # fmt: skip
        paths.append(save_checkpoint(tmp_path / f"c{seed}", model, robots=["a", "b"],
                                     extra={"iteration": 10 * seed}))  # fmt: skip
        states.append(model.state_dict())
    out = script.average_checkpoints(tmp_path / "avg", paths)
    got = load_teacher(out).state_dict()
    for name, value in got.items():
        if name.endswith("count"):
            assert value == states[0][name]  # equal counts here: the largest is any
            continue
        want = torch.stack([s[name] for s in states]).mean(0)
        torch.testing.assert_close(value, want, rtol=1e-5, atol=1e-6)
    assert not torch.equal(got["normalizer.mean"], states[2]["normalizer.mean"])
    info = read_checkpoint_info(out)
    assert info.robots == ("a", "b")
    assert [s["iteration"] for s in info.extra["averaged_from"]] == [0, 10, 20]
    with pytest.raises(ValueError, match="at least two"):
        script.average_checkpoints(tmp_path / "one", paths[:1])
    other = save_checkpoint(tmp_path / "other", TeacherPolicy(config), robots=["a", "c"])
    with pytest.raises(ValueError, match="other training robots"):
        script.average_checkpoints(tmp_path / "bad", [paths[0], other])
    student = save_checkpoint(tmp_path / "student", HyperNetPolicy(HyperNetConfig.tiny()),
                              robots=["a", "b"])  # fmt: skip
    with pytest.raises(ValueError, match="a student, where .+ is a teacher"):
        script.average_checkpoints(tmp_path / "bad", [paths[0], student])
    bigger = dataclasses.replace(config, n_layers=config.n_layers + 1)
    other = save_checkpoint(tmp_path / "big", TeacherPolicy(bigger), robots=["a", "b"])
    with pytest.raises(ValueError, match="another model config"):
        script.average_checkpoints(tmp_path / "bad", [paths[0], other])


def test_gain_probe_scales_the_commands_and_counts_the_falls(tmp_path: Path, tiny_xml: str) -> None:
    from hd_deploy.envs.task import LocomotionTask
    from hd_deploy.models import TeacherConfig, TeacherPolicy
    from hd_deploy.train.rollout import run_episodes

    script = _load("gain_probe")
    robot = tmp_path / "tiny.xml"
    robot.write_text(tiny_xml)
    torch.manual_seed(0)
    teacher = TeacherPolicy(TeacherConfig.tiny()).eval()
    got = script.probe(teacher, [robot], gains=[1.0, 0.0], episodes=1)
    row = got["robots"][0]["gains"]
    task = LocomotionTask(robot, headless=True)
    motors_off, length = run_episodes(task, lambda obs: np.zeros(task.model.nu), 1, 0)
    assert row["0"]["return"] == pytest.approx(motors_off[0])
    assert row["0"]["length"] == length[0]
    assert row["1"]["return"] != pytest.approx(motors_off[0])
    assert set(got["summary"]) == {"1", "0"}
    with pytest.raises(SystemExit, match="every gain"):
        script.main([str(tmp_path), "--robots", str(robot), "--gains", "-1"])


def test_drop_pos_embedding_keeps_the_mean_slot_and_carries_adam_by_name(tmp_path: Path) -> None:
    from hd_deploy.models import TeacherConfig, TeacherPolicy, load_teacher, save_checkpoint
    from hd_deploy.models.checkpoint import read_checkpoint_info

    script = _load("drop_pos_embedding")
    config = TeacherConfig.tiny()
    torch.manual_seed(0)
    teacher = TeacherPolicy(config)
    L = config.max_limbs
    proprio, context = torch.randn(5, L, config.proprio_dim), torch.rand(5, L, config.context_dim)
    mask = torch.ones(5, L, dtype=torch.bool)
    mask[:2, 3:] = False
    opt = torch.optim.Adam(teacher.parameters())
    teacher.value(proprio, context, mask).sum().backward()
    opt.step()  # moments for every parameter, the critic's nonzero
    ckpt = save_checkpoint(tmp_path / "run", teacher, robots=["a"], extra={"iteration": 7})
    torch.save({"optimizer": opt.state_dict(), "iteration": 7}, ckpt / "trainer_state.pt")
    # the same teacher with every slot's embedding at their mean: what dropping keeps
    flat = TeacherPolicy(config)
    flat.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        for part in ("actor", "critic"):
            pos = getattr(flat, part).pos
            pos.copy_(pos.mean(0).expand_as(pos))

    out = script.write(ckpt, tmp_path / "nopos")
    dropped = load_teacher(out)
    assert not dropped.config.pos_embedding
    assert "actor.pos" not in dropped.state_dict()
    torch.testing.assert_close(dropped.action_mean(proprio, context, mask),
                               flat.action_mean(proprio, context, mask))  # fmt: skip
    torch.testing.assert_close(dropped.value(proprio, context, mask),
                               flat.value(proprio, context, mask))  # fmt: skip
    assert not torch.allclose(dropped.action_mean(proprio, context, mask),
                              teacher.action_mean(proprio, context, mask))  # fmt: skip
    info = read_checkpoint_info(out)
    assert info.extra["iteration"] == 7 and info.robots == ("a",)

    state = torch.load(out / "trainer_state.pt", weights_only=True)
    new_opt = torch.optim.Adam(dropped.parameters())
    new_opt.load_state_dict(state["optimizer"])  # the parameter count matches
    old_names = [n for n, _ in teacher.named_parameters()]
    old_moments = {old_names[i]: m for i, m in opt.state_dict()["state"].items()}
    new_names = [n for n, _ in dropped.named_parameters()]
    new_moments = {new_names[j]: m for j, m in state["optimizer"]["state"].items()}
    assert set(new_moments) == set(old_moments) - {"critic.pos"}  # the critic's, stepped
    for name, moments in new_moments.items():
        torch.testing.assert_close(moments["exp_avg_sq"], old_moments[name]["exp_avg_sq"])
    with pytest.raises(ValueError, match="no positional embedding"):
        script.write(out, tmp_path / "again")
    with pytest.raises(ValueError, match="the checkpoint itself"):
        script.write(ckpt, ckpt)
    (ckpt / "trainer_state.pt").unlink()  # weights alone: no stale state left in OUT
    assert not (script.write(ckpt, out) / "trainer_state.pt").exists()
