"""The plain-C controller: compiles warning-free as C99 and matches the ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hd_deploy.cli.deploy import export_app
from hd_deploy.envs.task import LocomotionTask
from hd_deploy.exporters.c import CExportResult, SharedController, compile_shared, find_compiler
from hd_deploy.exporters.onnx import verification_obs
from hd_deploy.exporters.robots import export_robots
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.runtime import load_controller
from tests.conftest import unimal_robots

from .deploy_kit import TOL, Kit, rollout_obs

needs_cc = pytest.mark.skipif(find_compiler() is None, reason="no C compiler on this machine")


def _compare_with_onnx(robots: list[Path], out: Path, checkpoint: Path | None = None) -> float:
    """Export ONNX and C for every robot; the worst |C - onnxruntime| over real and random obs."""
    results = export_robots(robots, checkpoint=checkpoint, out_dir=out, formats=("onnx", "c"))
    worst = 0.0
    for source in robots:
        task = LocomotionTask(source)
        name = task.robot.name
        onnx = load_controller(out / f"{name}.onnx")
        lib = compile_shared(out / f"{name}.h", out / f"{name}.c", out / f"lib{name}.so")
        c = SharedController(lib, onnx.metadata["obs_dim"], onnx.metadata["n_actuators"])
        rng = np.random.default_rng(0)
        random = rng.normal(scale=3.0, size=(32, task.robot.n_limbs * 17)).astype(np.float32)
        for obs in np.concatenate([random, rollout_obs(task, 48)]):
            worst = max(worst, float(np.max(np.abs(c.act(obs) - onnx.act(obs)))))
    assert sum(isinstance(r, CExportResult) for r in results) == len(robots)
    return worst


@needs_cc
def test_c_controller_matches_onnx_on_the_kit_robot(kit: Kit, tmp_path: Path) -> None:
    assert _compare_with_onnx([kit.robot_file], tmp_path, kit.student_ckpt) <= TOL


@needs_cc
def test_c_controller_matches_onnx_on_every_bundled_robot(tmp_path: Path) -> None:
    assert _compare_with_onnx(bundled_robots(), tmp_path) <= TOL


@needs_cc
@pytest.mark.slow
def test_c_controller_matches_onnx_on_unimal_robots(tmp_path: Path) -> None:
    assert _compare_with_onnx(unimal_robots("train") + unimal_robots("test"), tmp_path) <= TOL


@needs_cc
def test_header_declares_the_interface_and_the_robot(kit: Kit, tmp_path: Path) -> None:
    (result,) = export_robots([kit.robot_file], checkpoint=kit.student_ckpt, out_dir=tmp_path,
                              formats=("c",))  # fmt: skip
    assert isinstance(result, CExportResult) and result.samples > 0
    assert result.max_abs_diff <= TOL
    header = result.header.read_text()
    task = LocomotionTask(kit.robot_file)
    for line in (
        "void hd_act(const float *obs, float *ctrl);",
        f"#define HD_OBS_DIM {task.robot.n_limbs * 17}",
        f"#define HD_CTRL_DIM {task.robot.n_actuators}",
        f'#define HD_ROBOT_FINGERPRINT "{task.robot.fingerprint}"',
        "#define HD_FRAME_SKIP 4",
    ):
        assert line in header
    assert all(a in header for a in task.robot.actuator_names)
    source = result.source.read_text()
    assert "#include <" not in source.replace("#include <math.h>", "")  # no other library
    assert not (tmp_path / f"{task.robot.name}.onnx").exists()  # only what was asked for


@needs_cc
def test_c_export_is_verified_against_torch(kit: Kit, tmp_path: Path, monkeypatch) -> None:
    from hd_deploy.exporters import c as c_export

    real = c_export.render_c

    def broken(mlp, meta):  # a wrong bias: verification must notice
        header, source = real(mlp, meta)
        return header, source.replace("acc[o] = b[o];", "acc[o] = b[o] + 0.01;")

    monkeypatch.setattr(c_export, "render_c", broken)
    with pytest.raises(c_export.CExportError, match="differs from torch"):
        export_robots([kit.robot_file], checkpoint=kit.student_ckpt, out_dir=tmp_path,
                      formats=("c",))  # fmt: skip
    assert not list(tmp_path.glob("*.c")) and not list(tmp_path.glob("*.h"))


def test_cli_c_format_and_refusals(kit: Kit, tmp_path: Path) -> None:
    runner = CliRunner()
    args = [str(kit.robot_file), "--checkpoint", str(kit.teacher_ckpt), "--teacher",
            "--format", "c", "--out", str(tmp_path)]  # fmt: skip
    res = runner.invoke(export_app, args)
    assert res.exit_code == 2 and "C export is for baked students" in res.output
    res = runner.invoke(export_app, [str(kit.robot_file), "--format", "wasm",
                                     "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 2 and "formats must be among ['onnx', 'c']" in res.output


def test_verification_obs_exercise_clipping_and_real_states(kit: Kit) -> None:
    from hd_deploy.models import load_student

    task = LocomotionTask(kit.robot_file)
    (mlp,) = load_student(kit.student_ckpt).bake([task.robot], [task.context])
    obs = verification_obs(mlp, task, seed=0)
    assert obs.shape[1] == task.robot.n_limbs * 17 and np.isfinite(obs).all()
    assert np.abs(obs).max() > 20  # some far outside the normaliser's range
