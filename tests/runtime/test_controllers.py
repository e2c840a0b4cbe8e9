"""Runtime controllers: backends agree, bad files fail with one line, no torch inside."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from exporters.deploy_kit import TOL, Exported, rollout_obs, torch_ctrl
from onnx import TensorProto, helper

from hd_deploy.models.controller import TorchController
from hd_deploy.runtime import (
    CController,
    Controller,
    ControllerError,
    NumpyController,
    OnnxController,
    load_controller,
    native,
    read_metadata,
)

N_OBS = 12
ARRAY_BACKENDS = ["onnx", "numpy"] + (["c"] if native.find_compiler() else [])


def test_every_backend_gives_the_same_controls(student: Exported) -> None:
    obs = rollout_obs(student.task, N_OBS)
    want = torch_ctrl(student.module, obs)
    controllers = [load_controller(student.path, b) for b in ARRAY_BACKENDS]
    controllers.append(TorchController(student.module, student.task.robot))
    for ctrl in controllers:
        assert isinstance(ctrl, Controller)
        ctrl.reset()
        got = np.stack([ctrl.act(o) for o in obs])
        assert got.shape == (N_OBS, 6) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    assert controllers[0].metadata == controllers[1].metadata


def test_act_returns_a_fresh_array_and_checks_shape(student: Exported) -> None:
    obs = rollout_obs(student.task, 2)
    for backend in ARRAY_BACKENDS:
        ctrl = load_controller(student.path, backend)
        first = ctrl.act(obs[0])
        kept = first.copy()
        ctrl.act(obs[1])
        np.testing.assert_array_equal(first, kept)
        with pytest.raises(ValueError, match=r"shape \(85,\)"):
            ctrl.act(obs[0][:-1])


def test_numpy_backend_refuses_teacher_files(teacher: Exported) -> None:
    with pytest.raises(ControllerError, match="student .*only.*teacher"):
        NumpyController(teacher.path)
    with pytest.raises(ControllerError, match="c backend runs student .*only.*teacher"):
        CController(teacher.path)
    OnnxController(teacher.path).act(np.zeros(85, dtype=np.float32))


@pytest.mark.parametrize("backend", ARRAY_BACKENDS)
def test_corrupted_file_is_one_clear_line(student: Exported, tmp_path, backend: str) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not an onnx file at all\xff\xfe" * 10)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(student.path.read_bytes()[:2000])
    for path in (garbage, truncated):
        with pytest.raises(ControllerError) as info:
            load_controller(path, backend)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
    with pytest.raises(ControllerError, match="no such controller file"):
        load_controller(tmp_path / "missing.onnx", backend)


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_foreign_onnx_file_is_refused(tmp_path, backend: str) -> None:
    x = helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 85])
    y = helper.make_tensor_value_info("ctrl", TensorProto.FLOAT, [1, 85])
    graph = helper.make_graph([helper.make_node("Relu", ["obs"], ["ctrl"])], "foreign", [x], [y])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ControllerError, match="not an hd_deploy controller"):
        load_controller(path, backend)


def test_newer_format_and_unknown_backend_are_refused(student: Exported, tmp_path) -> None:
    model = onnx.load(str(student.path))
    for prop in model.metadata_props:
        if prop.key == "hd_deploy_format_version":
            prop.value = "99"
    path = tmp_path / "future.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ControllerError, match="version 99 is not supported"):
        read_metadata(path)
    with pytest.raises(ControllerError, match="unknown backend 'tensorrt'"):
        load_controller(student.path, "tensorrt")


def test_runtime_never_imports_torch(student: Exported) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import mujoco
        from hd_deploy.runtime import ControlLoop, load_controller, read_metadata, run_episodes
        from hd_deploy.envs.task import TaskConfig

        path = {str(student.path)!r}
        meta = read_metadata(path)
        for backend in ("onnx", "numpy"):
            ctrl = load_controller(path, backend)
            model = mujoco.MjModel.from_xml_string(meta["robot_mjcf"])
            data = mujoco.MjData(model)
            loop = ControlLoop(ctrl, model, data)
            for _ in range(3):
                loop.step()
            assert loop.policy_calls == 3
            run_episodes(ctrl, episodes=1, config=TaskConfig(episode_steps=5))
        bad = sorted(m for m in ("torch", "gymnasium") if m in sys.modules)
        assert not bad, bad
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_numpy_graph_runs_a_whole_batch(student_dynamic: Exported) -> None:
    from hd_deploy.runtime.numpy_graph import NumpyGraph

    obs = rollout_obs(student_dynamic.task, N_OBS)
    graph = NumpyGraph(onnx.load(str(student_dynamic.path)), source="test")
    np.testing.assert_allclose(graph(obs), torch_ctrl(student_dynamic.module, obs), atol=TOL)
    assert graph.n_steps <= 16  # constants folded: only the MLP's own ops remain


# --- integrity of the weights ---------------------------------------------------------


def _weights_span(path: Path) -> tuple[int, int]:
    """Byte span of the largest initializer's raw data inside the file."""
    import onnx

    proto = onnx.load(str(path))
    biggest = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    data = path.read_bytes()
    start = data.index(biggest.raw_data)
    return start, start + len(biggest.raw_data)


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_a_flipped_byte_in_the_weights_is_refused(student, tmp_path, backend, where) -> None:
    start, end = _weights_span(student.path)
    data = bytearray(student.path.read_bytes())
    data[start + int(where * (end - start))] ^= 0x55
    bad = tmp_path / "flipped.onnx"
    bad.write_bytes(bytes(data))
    with pytest.raises(ControllerError, match="do not match the digest") as info:
        load_controller(bad, backend)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    load_controller(student.path, backend)  # the untouched file loads


def test_the_digest_covers_weights_not_metadata(student) -> None:
    import onnx

    from hd_deploy.runtime.metadata import WEIGHTS_KEY, weights_digest

    proto = onnx.load(str(student.path))
    digest = weights_digest(proto)
    assert read_metadata(student.path)[WEIGHTS_KEY] == digest
    proto.metadata_props.add(key="note", value="edited")
    assert weights_digest(proto) == digest


# --- metadata and inputs a controller refuses ---------------------------------------


def _with_props(src: Path, dst: Path, **changes: str) -> Path:
    import onnx

    proto = onnx.load(str(src))
    for prop in proto.metadata_props:
        if prop.key in changes:
            prop.value = changes[prop.key]
    onnx.save(proto, str(dst))
    return dst


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sim_timestep": "nan"}, "sim_timestep = nan is outside"),
        ({"frame_skip": "1000000"}, "frame_skip = 1000000 is outside"),
        ({"control_timestep": "0.5"}, "control_timestep = 0.5 is not sim_timestep x frame_skip"),
        ({"n_actuators": "x"}, "malformed controller metadata"),
    ],
)
def test_metadata_values_are_checked(student, tmp_path, changes, message) -> None:
    bad = _with_props(student.path, tmp_path / "bad.onnx", **changes)
    with pytest.raises(ControllerError, match=message):
        read_metadata(bad)


def _with_new_prop(src: Path, dst: Path, key: str, value: str) -> Path:
    import onnx

    proto = onnx.load(str(src))
    proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(dst))
    return dst


def test_the_nearest_training_robot_travels_in_the_metadata(student, tmp_path) -> None:
    from hd_deploy.runtime.metadata import NEAREST_KEY, build_metadata, encode_metadata

    assert NEAREST_KEY not in read_metadata(student.path)  # optional: files before it lack it
    near = {"robot": "r", "distance": 7.5, "spacing": 2.5, "training_robots": 9, "far": True}
    meta = build_metadata(student.task.robot, kind="student", mjcf="", source_hash="x",
                          nearest=near)  # fmt: skip
    value = encode_metadata(meta)[NEAREST_KEY]
    ok = _with_new_prop(student.path, tmp_path / "ok.onnx", NEAREST_KEY, value)
    assert read_metadata(ok)[NEAREST_KEY] == near
    for bad_value in ("{", '{"robot": "r", "distance": 1.0}', "[1]"):
        bad = _with_new_prop(student.path, tmp_path / "bad.onnx", NEAREST_KEY, bad_value)
        with pytest.raises(ControllerError, match="malformed nearest_training"):
            read_metadata(bad)


def test_the_tuning_record_travels_in_the_metadata(student, tmp_path) -> None:
    from hd_deploy.runtime.metadata import TUNED_KEY, build_metadata, encode_metadata

    assert TUNED_KEY not in read_metadata(student.path)  # optional: hd-export writes none
    tuned = {"steps": 2048, "return_before": 1.5, "return_after": 2.5, "kept": "tuned"}
    meta = build_metadata(student.task.robot, kind="student", mjcf="", source_hash="x",
                          tuned=tuned)  # fmt: skip
    ok = _with_new_prop(
        student.path, tmp_path / "ok.onnx", TUNED_KEY, encode_metadata(meta)[TUNED_KEY]
    )
    assert read_metadata(ok)[TUNED_KEY] == tuned
    for bad_value in ("{", "[1]", "3"):
        bad = _with_new_prop(student.path, tmp_path / "bad.onnx", TUNED_KEY, bad_value)
        with pytest.raises(ControllerError, match="malformed 'tuned'"):
            read_metadata(bad)


def test_an_embedded_robot_that_opens_other_files_is_refused(student, tmp_path) -> None:
    mjcf = read_metadata(student.path)["robot_mjcf"]
    evil = mjcf.replace("<worldbody>", '<include file="/etc/hostname"/><worldbody>', 1)
    bad = _with_props(student.path, tmp_path / "bad.onnx", robot_mjcf=evil)
    with pytest.raises(ControllerError, match="refers to other files"):
        load_controller(bad)


def test_corrupt_metadata_text_is_one_line(student, tmp_path) -> None:
    data = student.path.read_bytes()
    key = b"robot_name\x12"  # the entry's key, then the value's field tag and length
    at = data.index(key) + len(key) + 1  # the value's first byte
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data[:at] + b"\xff\xfe" + data[at + 2 :])
    with pytest.raises(ControllerError, match="corrupted metadata|not a valid ONNX"):
        read_metadata(bad)


def test_act_refuses_complex_and_float32_overflow(student) -> None:
    ctl = load_controller(student.path)
    n = ctl.metadata["obs_dim"]
    with pytest.raises(ValueError, match="real numbers"):
        ctl.act(np.zeros(n, dtype=np.complex64))
    huge = np.zeros(n)
    huge[0] = 1e300
    with pytest.raises(ValueError, match="overflow float32"):
        ctl.act(huge)
    assert np.isfinite(ctl.act(np.zeros(n))).all()  # float64 in range is fine


def test_c_backend_without_a_compiler_is_one_line(student: Exported, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HD_DEPLOY_CACHE", str(tmp_path))  # nothing built yet
    monkeypatch.setattr(native, "find_compiler", lambda: None)
    with pytest.raises(ControllerError, match="no C compiler found") as info:
        load_controller(student.path, "c")
    assert "\n" not in str(info.value) and str(student.path) in str(info.value)


def test_the_build_cache_keeps_the_most_recently_used_libraries(tmp_path) -> None:
    import os

    for i in range(5):
        lib = tmp_path / f"lib-{i}.so"
        lib.write_bytes(b"")
        os.utime(lib, (1000 + i, 1000 + i))
    (tmp_path / "notes.txt").write_text("not a library")
    assert native.prune_cache(tmp_path, keep=3) == 2
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["lib-2.so", "lib-3.so", "lib-4.so", "notes.txt"]


@pytest.mark.skipif(native.find_compiler() is None, reason="no C compiler")
def test_a_cached_library_is_marked_used_on_every_hit(monkeypatch, tmp_path) -> None:
    import os

    monkeypatch.setenv("HD_DEPLOY_CACHE", str(tmp_path))
    files = {"one.c": "int hd_one(void) { return 1; }\n"}
    lib = native.cached_library(files)
    os.utime(lib, (1000, 1000))
    assert native.cached_library(files) == lib and lib.stat().st_mtime > 1000
