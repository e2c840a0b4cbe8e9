"""Reading robots: limbs, joint slots, actuators, fingerprints, and clear errors."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mujoco
import numpy as np
import pytest

from hd_deploy.envs.task import build_model
from hd_deploy.morphology import MorphologyError, load_model, parse_robot
from hd_deploy.morphology.sources import resolve_robots
from tests.conftest import TINY_ROBOT, gym_robots


def test_tiny_robot_structure(tiny_xml: str) -> None:
    robot = parse_robot(load_model(tiny_xml))
    assert [limb.name for limb in robot.limbs] == ["torso/0", "limb/0", "limb/1"]
    assert [limb.parent for limb in robot.limbs] == [-1, 0, 1]
    assert [len(limb.joint_ids) for limb in robot.limbs] == [0, 2, 1]
    assert robot.actuator_limb.tolist() == [1, 1, 2]
    assert robot.actuator_slot.tolist() == [0, 1, 0]
    assert robot.gear.tolist() == [150, 250, 300]
    assert robot.root_height == pytest.approx(0.6)
    mask = robot.action_mask(4)
    assert mask.tolist() == [[False, False], [True, True], [True, False], [False, False]]


def test_actions_to_ctrl_gathers_and_clips(tiny_xml: str) -> None:
    robot = parse_robot(load_model(tiny_xml))
    actions = np.array([[9, 9], [0.5, -2.0], [0.25, 9], [9, 9]])
    np.testing.assert_allclose(robot.actions_to_ctrl(actions), [0.5, -1.0, 0.25])


def test_fingerprint_is_stable_and_sensitive(tiny_xml: str) -> None:
    a = parse_robot(load_model(tiny_xml)).fingerprint
    assert a == parse_robot(load_model(tiny_xml)).fingerprint
    assert re.fullmatch(r"[0-9a-f]{16}", a)
    # The floor the environment adds does not change the robot's identity.
    _, with_floor = build_model(tiny_xml)
    assert with_floor.fingerprint == a
    assert parse_robot(load_model(tiny_xml.replace('gear="300"', 'gear="200"'))).fingerprint != a
    longer = tiny_xml.replace("0 0 0 0 0 -0.2", "0 0 0 0 0 -0.3")
    assert parse_robot(load_model(longer)).fingerprint != a


def test_jointless_bodies_are_welded_to_their_parent() -> None:
    ant = load_model(gym_robots()[0])
    robot = parse_robot(ant)
    assert robot.n_limbs == 9 and robot.n_actuators == 8
    torso = robot.limbs[0]
    assert len(torso.body_ids) == 5  # torso + four joint-less leg stubs


@pytest.mark.parametrize("path", gym_robots(), ids=lambda p: p.stem)
def test_gym_robots_parse(path: Path) -> None:
    model, robot = build_model(path)
    assert robot.n_actuators == model.nu
    assert 2 <= robot.n_limbs <= 12


def _variant(old: str, new: str) -> str:
    assert old in TINY_ROBOT
    return TINY_ROBOT.replace(old, new)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<mujoco><worldbody><body>", "malformed MJCF"),
        (_variant("<actuator>", "<actuator><motor joint='nope'/>"), "cannot compile"),
        (
            re.sub(r"<actuator>.*</actuator>", "", TINY_ROBOT, flags=re.S),
            "no actuators",
        ),
        (
            _variant(
                '<joint name="limby/1"',
                '<joint name="a" axis="1 0 0"/><joint name="b" axis="0 0 1"/><joint name="limby/1"',
            ),
            "has 3 hinge joints",
        ),
        (_variant('name="limby/1" type="hinge"', 'name="limby/1" type="ball"'), "ball joint"),
        (_variant('name="limby/1" type="hinge"', 'name="limby/1" type="slide"'), "slide joint"),
        (
            _variant("<actuator>", '<actuator><motor joint="root" gear="1 0 0 0 0 0"/>'),
            "not a limb hinge",
        ),
        (
            _variant(
                "</worldbody>",
                '<site name="s" pos="0 0 0"/></worldbody>',
            ).replace('<motor joint="limby/1" gear="300"', '<motor site="s" gear="300"'),
            "transmission",
        ),
        (
            _variant("<actuator>", '<actuator><motor joint="limby/1" gear="10"/>'),
            "drive the same joint",
        ),
    ],
)
def test_bad_robots_raise_clear_errors(xml: str, message: str) -> None:
    with pytest.raises(MorphologyError, match=message) as info:
        parse_robot(load_model(xml))
    assert "\n" not in str(info.value)


def test_more_limbs_than_maximum(tiny_xml: str) -> None:
    with pytest.raises(MorphologyError, match="3 limbs, more than the maximum of 2"):
        parse_robot(load_model(tiny_xml), max_limbs=2)


def test_two_robots_in_one_model_is_refused(tiny_xml: str) -> None:
    spec = mujoco.MjSpec.from_string(tiny_xml)
    body = spec.worldbody.add_body(name="other", pos=[2, 0, 1])
    body.add_joint(type=mujoco.mjtJoint.mjJNT_FREE)
    body.add_geom(size=[0.1, 0, 0])
    with pytest.raises(MorphologyError, match="several movable top-level bodies"):
        parse_robot(spec.compile())


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(MorphologyError, match="no such robot file"):
        load_model(tmp_path / "missing.xml")
    with pytest.raises(MorphologyError, match="holds no robot"):
        resolve_robots([tmp_path])
    with pytest.raises(MorphologyError, match="no such robot file or folder"):
        resolve_robots([tmp_path / "nope"])


# --- numbers a robot file must not hold -------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('gear="150"', 'gear="nan"', "motor '.*' has a non-finite gear"),
        ('pos="0 0 -0.1"', 'pos="0 nan -0.1"', "body 'limb/0' has a non-finite pos"),
        ('axis="1 0 0"', 'axis="inf 0 0"', "joint 'limbx/0' has a non-finite axis"),
        ('range="0 60"', 'range="0 inf"', "joint 'limby/0' has a non-finite range"),
        ('density="600"', 'density="nan"', "mass and inertia .* 'limb/0', id 2, line \\d+"),
        ('<joint name="limby/1"', '<joint damping="nan" name="limby/1"',
         "joint 'limby/1' has a non-finite damping"),
    ],
)  # fmt: skip
def test_non_finite_numbers_are_refused_naming_element_and_attribute(
    tiny_xml: str, old: str, new: str, message: str
) -> None:
    assert old in tiny_xml
    with pytest.raises(MorphologyError, match=message):
        build_model(tiny_xml.replace(old, new, 1))


def test_malformed_file_keeps_mujocos_line_number(tiny_file) -> None:
    tiny_file.write_text(tiny_file.read_text()[:400])
    with pytest.raises(MorphologyError, match=r"malformed MJCF: .*Line number=\d+") as info:
        load_model(tiny_file)
    assert "\n" not in str(info.value)


def test_settotalmass_is_applied_after_compiling_the_same_model_without_a_warning() -> None:
    cheetah = next(p for p in gym_robots() if p.stem == "half_cheetah")
    assert 'settotalmass="14"' in cheetah.read_text()  # MuJoCo 4 deprecates the attribute
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = mujoco.MjModel.from_xml_path(str(cheetah))  # MuJoCo's own handling
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load_model(cheetah)
        build_model(cheetah)
    assert got.body_mass.sum() == pytest.approx(14.0)
    for field in ("body_mass", "body_inertia", "dof_invweight0", "actuator_acc0", "dof_M0"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
