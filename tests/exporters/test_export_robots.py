"""hd-export's library call over real robot sets: bundled, gymnasium, UNIMAL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hd_deploy.envs.task import TaskConfig
from hd_deploy.exporters import ExportResult, export_robots
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.runtime import NumpyController, OnnxController, read_metadata, run_episodes

from .deploy_kit import TOL, Kit

SHARED_UNIMAL = Path(__file__).resolve().parents[3] / "shared" / "unimal"
GYM_ROBOTS = ("hopper", "ant")
SHORT = TaskConfig(episode_steps=20)


def _gym_assets() -> Path:
    import gymnasium

    return Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"


def _unimal(split: str) -> list[Path]:
    folder = SHARED_UNIMAL / split
    files = sorted(folder.glob("*.xml")) if folder.is_dir() else []
    if not files:
        pytest.skip(f"UNIMAL robots not available at {folder} (see ../shared/unimal/README.md)")
    return files


def _check_runs(result: ExportResult) -> None:
    """Verified on export; both runtimes then drive the robot a few steps, identically."""
    assert result.verified and result.max_abs_diff <= TOL
    reports = [
        run_episodes(ctrl(result.path), episodes=1, seed=0, config=SHORT)
        for ctrl in (OnnxController, NumpyController)
    ]
    assert reports[0].lengths == reports[1].lengths
    np.testing.assert_allclose(reports[0].returns, reports[1].returns, rtol=1e-4, atol=1e-4)
    assert reports[0].nonfinite_events == 0


def test_export_bundled_and_gym_robots(kit: Kit, tmp_path: Path) -> None:
    files = [*bundled_robots(), *(_gym_assets() / f"{n}.xml" for n in GYM_ROBOTS)]
    seen: list[str] = []
    results = export_robots(
        files,
        checkpoint=kit.student_ckpt,
        out_dir=tmp_path,
        on_result=lambda r: seen.append(r.robot),
    )
    names = [f.stem for f in files]
    assert [r.robot for r in results] == names == seen
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.onnx" for n in names)
    for result in results:
        _check_runs(result)
    hopper = read_metadata(tmp_path / "hopper.onnx")
    assert hopper["n_actuators"] == 3 and hopper["observation_layout"]["limb_names"][0] == "torso"


def test_export_a_unimal_test_robot(kit: Kit, tmp_path: Path) -> None:
    robot = _unimal("test")[0]
    (result,) = export_robots([robot], checkpoint=kit.student_ckpt, out_dir=tmp_path)
    assert result.robot == robot.stem
    _check_runs(result)


@pytest.mark.slow
def test_export_and_run_every_unimal_robot(kit: Kit, tmp_path: Path) -> None:
    files = _unimal("train") + _unimal("test")
    results = export_robots(files, checkpoint=kit.student_ckpt, out_dir=tmp_path)
    assert len(results) == len(files)
    for result in results:
        _check_runs(result)


# --- robots split over include files, with values on rounding edges -----------------

_MAIN = """<mujoco model="edgy">
  <compiler angle="degree"/>
  <include file="parts/defaults.xml"/>
  <worldbody>
    <body name="torso/0" pos="0 0 0.6">
      <joint name="root" type="free"/>
      <geom name="torso/0" type="sphere" size="0.1000005"/>
      <include file="parts/legs.xml"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="limbx/0" gear="150" ctrlrange="-1 1"/>
    <motor joint="limby/1" gear="250" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""
_DEFAULTS = """<mujoco>
  <default><geom density="500.0005"/><joint armature="1" damping="1"/></default>
</mujoco>"""
_LEGS = """<mujoco>
  <body name="limb/0" pos="0.1234565 0 -0.1">
    <joint name="limbx/0" type="hinge" axis="1 0 0" range="-50 50"/>
    <geom name="limb/0" type="capsule" fromto="0 0 0 0.1234565 0 -0.2" size="0.0500005"/>
    <body name="limb/1" pos="0.1234565 0 -0.2">
      <joint name="limby/1" type="hinge" axis="0 1 0" range="-70 10"/>
      <geom name="limb/1" type="capsule" fromto="0 0 0 0 0 -0.1555555" size="0.0400005"/>
    </body>
  </body>
</mujoco>
"""


def test_a_robot_with_include_files_exports_with_its_own_fingerprint(kit: Kit, tmp_path):
    from hd_deploy.envs.task import LocomotionTask

    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "defaults.xml").write_text(_DEFAULTS)
    (tmp_path / "parts" / "legs.xml").write_text(_LEGS)
    robot = tmp_path / "edgy.xml"
    robot.write_text(_MAIN)
    want = LocomotionTask(robot).robot.fingerprint
    (result,) = export_robots([robot], checkpoint=kit.student_ckpt, out_dir=tmp_path / "out")
    meta = read_metadata(result.path)
    assert meta["robot_fingerprint"] == want and "<include" not in meta["robot_mjcf"]
    embedded = LocomotionTask(meta["robot_mjcf"])
    original = LocomotionTask(robot)
    np.testing.assert_array_equal(embedded.model.jnt_range, original.model.jnt_range)
    np.testing.assert_array_equal(embedded.model.body_mass, original.model.body_mass)
