"""ONNX export of baked MLPs and teachers: graph, parity, normaliser, metadata, failures."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hd_deploy import __version__
from hd_deploy.envs.task import LocomotionTask, build_model
from hd_deploy.exporters import ExportError, export_controller, export_robots
from hd_deploy.models import BakedMLP, checkpoint_hash
from hd_deploy.morphology.features import PROPRIO_NAMES
from hd_deploy.runtime import FORMAT_KEY, NumpyController, OnnxController, read_metadata

from .deploy_kit import OTHER_ROBOT_FILE, TOL, Exported, Kit, rollout_obs, torch_ctrl

N_ROLLOUT = 24
N_RANDOM = 16
BIG_MEAN = 40.0
BIG_STD = 25.0


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _obs(exported: Exported) -> np.ndarray:
    rng = np.random.default_rng(5)
    random = rng.normal(scale=3.0, size=(N_RANDOM, exported.result.obs_dim))
    return np.concatenate([random.astype(np.float32), rollout_obs(exported.task, N_ROLLOUT)])


# --- graph and parity ------------------------------------------------------------------


def test_student_graph_has_fixed_io_batch_one(student: Exported) -> None:
    model = onnx.load(str(student.path))
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("obs", "ctrl")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 85]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 6]
    assert student.result.opset >= 18
    assert student.result.max_abs_diff <= TOL and student.result.samples > 0


def test_student_parity_torch_onnxruntime_numpy(student: Exported) -> None:
    obs = _obs(student)
    want = torch_ctrl(student.module, obs)
    onnx_ctrl, numpy_ctrl = OnnxController(student.path), NumpyController(student.path)
    got_ort = np.stack([onnx_ctrl.act(o) for o in obs])
    got_np = np.stack([numpy_ctrl.act(o) for o in obs])
    np.testing.assert_allclose(got_ort, want, rtol=0, atol=TOL)
    np.testing.assert_allclose(got_np, want, rtol=0, atol=TOL)
    # Not a degenerate check: most controls lie strictly inside the control range.
    assert np.mean(np.abs(want) < 0.999) > 0.5
    assert np.ptp(want, axis=0).min() > 1e-3


def test_dynamic_batch(student_dynamic: Exported) -> None:
    model = onnx.load(str(student_dynamic.path))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    obs = _obs(student_dynamic)
    sess = _session(student_dynamic.path)
    for batch in (obs, obs[:1], obs[:7]):
        got = sess.run(["ctrl"], {"obs": batch})[0]
        np.testing.assert_allclose(got, torch_ctrl(student_dynamic.module, batch), atol=TOL)


def test_teacher_export_parity_and_same_interface(teacher: Exported, student: Exported) -> None:
    obs = _obs(teacher)
    want = torch_ctrl(teacher.module, obs)
    got = np.stack([OnnxController(teacher.path).act(o) for o in obs])
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    assert np.ptp(want, axis=0).min() > 1e-3
    assert teacher.path.name == "gen-11.teacher.onnx"
    t_meta, s_meta = read_metadata(teacher.path), read_metadata(student.path)
    assert t_meta["policy_kind"] == "teacher" and s_meta["policy_kind"] == "student"
    assert set(t_meta) == set(s_meta)
    for key in ("robot_fingerprint", "obs_dim", "n_actuators", "observation_layout"):
        assert t_meta[key] == s_meta[key]
    t_io = [(v.name, str(v.type)) for v in onnx.load(str(teacher.path)).graph.input]
    s_io = [(v.name, str(v.type)) for v in onnx.load(str(student.path)).graph.input]
    assert t_io == s_io


def test_normaliser_is_applied_exactly_once(tmp_path) -> None:
    task = LocomotionTask(OTHER_ROBOT_FILE)
    robot, n = task.robot, task.robot.n_limbs * 17
    g = torch.Generator().manual_seed(3)
    widths = (n, 8, 8, robot.n_actuators)
    weights = [
        (torch.randn(b, a, generator=g) * 0.5 / a**0.5, torch.randn(b, generator=g) * 0.1)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    mean = torch.full((n,), BIG_MEAN) + torch.randn(n, generator=g)
    std = torch.full((n,), BIG_STD)
    lo, hi = torch.as_tensor(robot.ctrl_range, dtype=torch.float32).T
    mlp = BakedMLP.from_tensors(
        obs_mean=mean, obs_std=std, weights=weights, ctrl_low=lo, ctrl_high=hi,
        name=robot.name, fingerprint=robot.fingerprint, actuator_names=robot.actuator_names,
    )  # fmt: skip
    result = export_controller(
        mlp, robot, OTHER_ROBOT_FILE.read_text(), tmp_path / "norm.onnx",
        kind="student", source_hash="test",
    )  # fmt: skip
    raw = (mean + torch.randn(6, n, generator=g) * BIG_STD * 2).numpy()
    got = np.stack([OnnxController(result.path).act(o) for o in raw])
    once = torch_ctrl(mlp, raw)
    twice = torch_ctrl(mlp, ((torch.from_numpy(raw) - mean) / std).numpy())
    np.testing.assert_allclose(got, once, atol=TOL)
    assert np.max(np.abs(got - twice)) > 1e-2


# --- metadata and file -----------------------------------------------------------------


def test_metadata_round_trip(student: Exported, kit: Kit) -> None:
    meta = read_metadata(student.path)
    robot = student.task.robot
    assert meta[FORMAT_KEY] == 1
    assert meta["robot_name"] == "gen-11" and meta["robot_fingerprint"] == robot.fingerprint
    assert meta["source_checkpoint"] == checkpoint_hash(kit.student_ckpt)
    assert meta["toolkit_version"] == __version__
    assert meta["actuator_names"] == list(robot.actuator_names)
    assert (meta["n_limbs"], meta["n_actuators"], meta["obs_dim"]) == (5, 6, 85)
    assert (meta["sim_timestep"], meta["frame_skip"]) == (0.005, 4)
    assert meta["control_timestep"] == pytest.approx(0.02)
    layout = meta["observation_layout"]
    assert layout["feature_names"] == list(PROPRIO_NAMES)
    assert layout["limb_names"] == [limb.name for limb in robot.limbs]
    # The file alone rebuilds its robot.
    _, rebuilt = build_model(meta["robot_mjcf"], name=meta["robot_name"])
    assert rebuilt.fingerprint == robot.fingerprint


def test_file_is_self_contained_and_small(student: Exported, teacher: Exported) -> None:
    assert sorted(p.name for p in student.path.parent.iterdir()) == ["gen-11.onnx"]
    for exported in (student, teacher):
        model = onnx.load(str(exported.path), load_external_data=False)
        assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
        assert all(len(n.metadata_props) == 0 for n in model.graph.node)  # no stack traces
        tensors = sum(t.numel() * 4 for t in exported.module.state_dict().values())
        mjcf = len(read_metadata(exported.path)["robot_mjcf"])
        assert exported.path.stat().st_size < tensors + mjcf + 16_384


# --- failures --------------------------------------------------------------------------


def test_failed_parity_raises_and_leaves_no_file(
    student: Exported, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hd_deploy.exporters.onnx.TOLERANCE", -1.0)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="differs from torch"):
        export_controller(
            student.module, student.task.robot, read_metadata(student.path)["robot_mjcf"], out,
            kind="student", source_hash="x",
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_wrong_kind_and_wrong_mjcf_are_refused(student: Exported, tmp_path) -> None:
    robot, text = student.task.robot, read_metadata(student.path)["robot_mjcf"]
    with pytest.raises(ExportError, match="does not match"):
        export_controller(student.module, robot, text, tmp_path / "a.onnx",
                          kind="teacher", source_hash="x")  # fmt: skip
    with pytest.raises(ExportError, match="fingerprint"):
        export_controller(student.module, robot, OTHER_ROBOT_FILE.read_text(),
                          tmp_path / "a.onnx", kind="student", source_hash="x")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_missing_shipped_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path, kit: Kit) -> None:
    monkeypatch.setattr("hd_deploy.exporters.robots.SHIPPED_CHECKPOINTS", tmp_path / "none")
    with pytest.raises(
        ExportError, match=r"no shipped student checkpoint at .*; pass --checkpoint"
    ):
        export_robots([kit.robot_file], out_dir=tmp_path / "out")
    with pytest.raises(ExportError, match="no shipped teacher checkpoint"):
        export_robots([kit.robot_file], out_dir=tmp_path / "out", teacher=True)


def test_clashing_robot_names_are_refused(kit: Kit, tmp_path) -> None:
    other = tmp_path / "copy"
    other.mkdir()
    (other / kit.robot_file.name).write_text(kit.robot_file.read_text())
    with pytest.raises(ExportError, match="gen-11"):
        export_robots([kit.robot_file, other], checkpoint=kit.student_ckpt, out_dir=tmp_path)
