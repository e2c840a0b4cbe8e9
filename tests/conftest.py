"""Shared fixtures: tiny hand-written robots and the UNIMAL / gymnasium robot sets."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_UNIMAL = Path(__file__).resolve().parents[2] / "shared" / "unimal"

# Torso (sphere, free joint) with two limbs: a two-hinge thigh and a one-hinge shin. Joint
# armature and damping as in UNIMAL (without them gear 300 on these light limbs diverges).
TINY_ROBOT = """
<mujoco model="tiny">
  <compiler angle="degree"/>
  <option timestep="0.005"/>
  <default><joint armature="1" damping="1"/></default>
  <worldbody>
    <body name="torso/0" pos="0 0 0.6">
      <joint name="root" type="free"/>
      <geom name="torso/0" type="sphere" size="0.1" density="1000"/>
      <body name="limb/0" pos="0 0 -0.1">
        <joint name="limbx/0" type="hinge" axis="1 0 0" range="-30 30" limited="true"/>
        <joint name="limby/0" type="hinge" axis="0 1 0" range="0 60" limited="true"/>
        <geom name="limb/0" type="capsule" fromto="0 0 0 0 0 -0.2" size="0.05" density="600"/>
        <body name="limb/1" pos="0 0 -0.2">
          <joint name="limby/1" type="hinge" axis="0 -1 0" range="-90 0" limited="true"/>
          <geom name="limb/1" type="capsule" fromto="0 0 0 0.1 0 -0.1" size="0.05"
                density="600"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="limbx/0" gear="150" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="limby/0" gear="250" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="limby/1" gear="300" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


def unimal_robots(split: str) -> list[Path]:
    """UNIMAL robot files of one split; skips (saying why) when the folder is absent."""
    folder = SHARED_UNIMAL / split
    if not folder.is_dir():
        pytest.skip(f"UNIMAL robots not available at {folder}")
    return sorted(folder.glob("*.xml"))


def gym_robots() -> list[Path]:
    """gymnasium's MuJoCo locomotion assets (Ant, Hopper, Walker2d, HalfCheetah, Swimmer)."""
    import gymnasium

    assets = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"
    return [assets / f"{n}.xml" for n in ("ant", "hopper", "walker2d", "half_cheetah", "swimmer")]


@pytest.fixture
def tiny_xml() -> str:
    return TINY_ROBOT


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.xml"
    path.write_text(TINY_ROBOT)
    return path


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty folder: stray controllers/, bench_out/ or runs/
    folders where the suite is started change nothing, and nothing is left there."""
    monkeypatch.chdir(tmp_path)
