"""The embeddable control loop: stepping, guards, latency and whole-episode reports."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import pytest
from exporters.deploy_kit import OTHER_ROBOT_FILE, ROBOT_FILE, Exported

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.models.controller import TorchController
from hd_deploy.runtime import (
    ControllerError,
    ControlLoop,
    ObservationBuilder,
    RunReport,
    load_controller,
    native,
    native_step,
    read_metadata,
    run_episodes,
)

STEPS = 5
SHORT = TaskConfig(episode_steps=30)
REPORT_KEYS = {
    "return_mean", "return_std", "episode_length_mean", "episodes",
    "latency_us_p50", "latency_us_p99", "steps_per_s",
}  # fmt: skip


class Recorder:
    """Any object with metadata/reset/act is a controller; this one counts calls."""

    def __init__(self, inner: Any, *, output: float | None = None) -> None:
        self.metadata = inner.metadata
        self.inner, self.output, self.calls = inner, output, 0

    def reset(self) -> None:
        self.inner.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.calls += 1
        ctrl = self.inner.act(obs)
        return ctrl if self.output is None else np.full_like(ctrl, self.output)


def _user_model(mjcf: str) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """What a user does: compile the robot themselves."""
    model = mujoco.MjModel.from_xml_string(mjcf)
    return model, mujoco.MjData(model)


def _mjcf(exported: Exported) -> str:
    return read_metadata(exported.path)["robot_mjcf"]


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_loop_steps_a_user_model(student: Exported, backend: str) -> None:
    model, data = _user_model(_mjcf(student))
    loop = ControlLoop(load_controller(student.path, backend), model, data)
    for _ in range(STEPS):
        ctrl = loop.step()
        np.testing.assert_array_equal(data.ctrl, ctrl)
    assert data.time == pytest.approx(STEPS * 4 * model.opt.timestep)
    assert loop.steps == loop.policy_calls == STEPS
    stats = loop.latency_us()
    assert stats["calls"] == STEPS and 0 < stats["p50"] <= stats["p99"]
    assert loop.nonfinite_events == 0 and not loop.last_step_flagged


def test_wrong_robot_is_refused_naming_both(student: Exported) -> None:
    model, data = _user_model(OTHER_ROBOT_FILE.read_text())
    meta = read_metadata(student.path)
    with pytest.raises(ControllerError) as info:
        ControlLoop(load_controller(student.path), model, data)
    message = str(info.value)
    other = LocomotionTask(OTHER_ROBOT_FILE).robot
    for part in (meta["robot_name"], meta["robot_fingerprint"], other.fingerprint):
        assert part in message
    # Overriding the fingerprint does not override the sizes.
    with pytest.raises(ControllerError, match="observations and .* actuators"):
        ControlLoop(load_controller(student.path), model, data, allow_mismatch=True)


def test_allow_mismatch_runs_a_same_sized_robot(student: Exported) -> None:
    torso = '<geom name="torso/0" type="sphere" size="0.1"'
    assert torso in _mjcf(student)
    bigger = _mjcf(student).replace(torso, torso.replace("0.1", "0.12"))  # same layout
    model, data = _user_model(bigger)
    with pytest.raises(ControllerError, match="does not match"):
        ControlLoop(load_controller(student.path), model, data)
    loop = ControlLoop(load_controller(student.path), model, data, allow_mismatch=True)
    loop.step()
    assert loop.policy_calls == 1


def test_timestep_mismatch_is_refused(student: Exported) -> None:
    model, data = _user_model(_mjcf(student))
    model.opt.timestep = 0.002
    with pytest.raises(ControllerError, match="timestep 0.002 s differs"):
        ControlLoop(load_controller(student.path), model, data)


@pytest.fixture(params=["native", "numpy"])
def observation(request, monkeypatch) -> str:
    """Both observation paths of the loop: C (with its own finiteness check) and numpy."""
    if request.param == "numpy":
        monkeypatch.setattr(native_step, "_OBSERVE", False)
    elif not native_step.available():
        pytest.skip("no C compiler")
    return request.param


def test_both_observation_paths_agree(student: Exported, monkeypatch) -> None:
    task, loop, _ = _task_loop(student)
    for _ in range(5):
        task.step(loop.control())
    monkeypatch.setattr(native_step, "_OBSERVE", False)
    plain = ObservationBuilder(loop.robot, task.model, task.data)
    assert not plain.native
    if loop.observe.native:
        np.testing.assert_allclose(loop.observe(), plain(), rtol=1e-6, atol=1e-6)


def test_nonfinite_observation_never_reaches_the_actuators(
    student: Exported, observation: str
) -> None:
    model, data = _user_model(_mjcf(student))
    ctrl = Recorder(load_controller(student.path))
    loop = ControlLoop(ctrl, model, data)
    loop.step()
    data.qvel[model.nv - 1] = np.nan
    data.ctrl[:] = 0.5
    mujoco.mj_forward(model, data)
    applied = loop.control()
    assert ctrl.calls == 1  # the controller never saw the bad observation
    np.testing.assert_array_equal(applied, 0.0)
    assert loop.nonfinite_obs_events == 1 and loop.last_step_flagged


def test_nonfinite_controller_output_becomes_zero_control(student: Exported) -> None:
    model, data = _user_model(_mjcf(student))
    loop = ControlLoop(Recorder(load_controller(student.path), output=np.inf), model, data)
    loop.step()
    np.testing.assert_array_equal(data.ctrl, 0.0)
    assert loop.nonfinite_ctrl_events == 1 and loop.nonfinite_events == 1
    assert loop.last_step_flagged


def test_run_episodes_report(student: Exported) -> None:
    onnx_ctrl = load_controller(student.path, "onnx")
    report = run_episodes(onnx_ctrl, episodes=2, seed=3, config=SHORT)
    assert isinstance(report, RunReport)
    assert report.robot == "gen-11" and report.episodes == 2
    assert all(1 <= n <= SHORT.episode_steps for n in report.lengths)
    assert 0 < report.latency_us_p50 <= report.latency_us_p99 and report.steps_per_s > 0
    doc = report.to_dict()
    assert REPORT_KEYS <= set(doc)
    assert doc["return_mean"] == pytest.approx(np.mean(report.returns))
    again = run_episodes(onnx_ctrl, episodes=2, seed=3, config=SHORT)
    assert again.returns == report.returns
    # Every backend drives the same episodes (the loop does not know which one runs).
    for other in (
        load_controller(student.path, "numpy"),
        TorchController(student.module, student.task.robot),
    ):
        rep = run_episodes(other, ROBOT_FILE, episodes=2, seed=3, config=SHORT)
        assert rep.lengths == report.lengths
        np.testing.assert_allclose(rep.returns, report.returns, rtol=1e-4, atol=1e-4)


def test_run_episodes_on_another_robot_is_refused(student: Exported) -> None:
    with pytest.raises(ControllerError, match="does not match"):
        run_episodes(load_controller(student.path), OTHER_ROBOT_FILE, config=SHORT)


# --- guards on the state and the controls; the time of each stage ------------------


def _task_loop(student: Exported, *, output: float | None = None):
    task = LocomotionTask(_mjcf(student))
    task.reset(np.random.default_rng(0))
    controller = Recorder(load_controller(student.path), output=output)
    return task, ControlLoop(controller, task.model, task.data), controller


def test_a_nan_written_into_the_state_is_caught(student: Exported, observation: str) -> None:
    task, loop, controller = _task_loop(student)
    assert loop.observe.native == (observation == "native")
    task.data.qvel[0] = np.nan  # after mj_forward: the derived quantities are still finite
    assert np.isfinite(loop.observe()).all()
    ctrl = loop.control()
    assert controller.calls == 0 and loop.nonfinite_obs_events == 1 and loop.last_step_flagged
    np.testing.assert_array_equal(ctrl, 0.0)


def test_controls_outside_the_ctrlrange_are_clipped_and_counted(student: Exported) -> None:
    task, loop, _ = _task_loop(student, output=5.0)
    ctrl = loop.step()
    high = task.robot.ctrl_range[:, 1]
    np.testing.assert_allclose(ctrl, high) and np.testing.assert_allclose(task.data.ctrl, high)
    assert loop.clipped_ctrl_events == 1 and not loop.last_step_flagged


def test_a_simulation_mujoco_resets_is_counted(student: Exported) -> None:
    task, loop, _ = _task_loop(student)
    loop.step()
    assert loop.diverged_events == 0
    task.data.qvel[:] = 1e12  # finite, but past MuJoCo's limit: it warns and resets
    loop.step()
    assert loop.diverged_events == 1 and loop.last_step_flagged


def test_run_reports_the_time_of_each_stage(student: Exported) -> None:
    report = run_episodes(load_controller(student.path), episodes=1, config=SHORT)
    doc = report.to_dict()
    for key in ("obs_us_p50", "physics_us_p50", "latency_us_p50"):
        assert 0 < doc[key] < 1e6
    assert doc["obs_policy_over_physics"] == pytest.approx(
        (doc["obs_us_p50"] + doc["latency_us_p50"]) / doc["physics_us_p50"]
    )
    assert "physics" in report.summary()


def test_a_native_build_that_fails_falls_back_to_numpy(student: Exported, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise native.NativeError("hd_observe.c: the C compiler failed: error: nope")

    monkeypatch.setattr(native_step, "_OBSERVE", None)
    monkeypatch.setattr(native, "find_compiler", lambda: "cc")
    monkeypatch.setattr(native, "cached_library", broken)
    with pytest.warns(UserWarning, match="using numpy.*compiler failed"):
        task, loop, _ = _task_loop(student)
    assert not loop.observe.native
    task.step(loop.control())


# --- the whole step in one C call (c backend on the C observation) -------------------

needs_cc = pytest.mark.skipif(
    native.find_compiler() is None or not native_step.available(), reason="no C compiler"
)


class ConstantC:
    """A compiled controller whose ``hd_act`` writes one value into every control."""

    def __init__(self, metadata: dict, value: str, tmp_path) -> None:
        n = int(metadata["n_actuators"])
        stem = f"const_{abs(hash(value))}"  # a fresh path: dlopen keeps a loaded one
        source = tmp_path / f"{stem}.c"
        source.write_text(
            f"void hd_act(const float *obs, float *ctrl) {{\n"
            f"    (void)obs;\n    for (int i = 0; i < {n}; ++i) ctrl[i] = {value};\n}}\n"
        )
        lib = native.compile_shared(source, source, tmp_path / f"{stem}.so", timing=True)
        self.library = native.SharedController(lib, int(metadata["obs_dim"]), n)
        self.metadata = metadata

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.library.act(obs)


def _fused_and_plain(student: Exported, controller_for=None):
    loops = []
    for _ in range(2):
        task = LocomotionTask(_mjcf(student))
        task.reset(np.random.default_rng(0))
        controller = controller_for() if controller_for else load_controller(student.path, "c")
        loops.append((task, ControlLoop(controller, task.model, task.data)))
    (_, fused), (_, plain) = loops
    plain._fused = None
    assert fused.fused and not plain.fused
    return loops


@needs_cc
def test_a_fused_step_equals_the_python_step(student: Exported) -> None:
    (task_a, fused), (task_b, plain) = _fused_and_plain(student)
    for _ in range(20):
        np.testing.assert_array_equal(fused.control(), plain.control())
        np.testing.assert_array_equal(fused.step(), plain.step())
        np.testing.assert_array_equal(task_a.data.ctrl, task_b.data.ctrl)
    np.testing.assert_array_equal(task_a.data.qpos, task_b.data.qpos)
    assert fused.policy_calls == plain.policy_calls == fused.observations == 40
    stages = fused.stage_us()
    assert 0 < stages["obs"]["p50"] and 0 < stages["policy"]["p50"]


@needs_cc
def test_a_fused_step_keeps_every_guard(student: Exported, tmp_path) -> None:
    meta = read_metadata(student.path)
    for value, event in (("5.0f", "clipped_ctrl_events"), ("1.0f / 0.0f", "nonfinite_ctrl_events")):
        (task_a, fused), (task_b, plain) = _fused_and_plain(
            student, lambda v=value: ConstantC(meta, v, tmp_path)
        )
        np.testing.assert_array_equal(fused.step(), plain.step())
        np.testing.assert_array_equal(task_a.data.ctrl, task_b.data.ctrl)
        assert getattr(fused, event) == getattr(plain, event) == 1
        assert fused.last_step_flagged == plain.last_step_flagged
    task_a.data.qvel[0] = task_b.data.qvel[0] = np.nan
    np.testing.assert_array_equal(fused.step(), plain.step())
    np.testing.assert_array_equal(task_a.data.ctrl, 0.0)
    assert fused.nonfinite_obs_events == plain.nonfinite_obs_events == 1
    assert fused.policy_calls == plain.policy_calls == 1
