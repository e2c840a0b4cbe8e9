"""Observation and context definitions against values computed by hand on a tiny robot."""

from __future__ import annotations

import pickle

import mujoco
import numpy as np
import pytest

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.morphology import CONTEXT_DIM, PROPRIO_DIM, context, load_model, parse_robot
from hd_deploy.morphology.features import (
    CONTEXT_SCALE,
    JOINT_RANGE_CLASSES,
    Proprioception,
    gear_class,
    joint_range_class,
    proprio,
)
from hd_deploy.morphology.generator import generate_robot
from hd_deploy.morphology.robot import Robot
from hd_deploy.runtime import native_step
from hd_deploy.runtime.native_step import NativeObservation
from tests.conftest import unimal_robots


def _scaled(value: float, key: str) -> float:
    lo, hi = CONTEXT_SCALE[key]
    return 2 * (value - lo) / (hi - lo) - 1


@pytest.fixture
def tiny(tiny_xml: str):
    model = load_model(tiny_xml)
    return model, parse_robot(model), mujoco.MjData(model)


def test_proprio_by_hand(tiny) -> None:
    from hd_deploy.morphology import proprio

    model, robot, data = tiny
    data.qpos[:3] = [0.7, -0.2, 0.5]  # torso moved
    data.qpos[7:10] = [np.radians(15), np.radians(30), np.radians(-45)]
    data.qvel[:] = 0.0
    data.qvel[0] = 1.5  # torso x velocity
    data.qvel[6:9] = [0.1, -0.2, 0.3]
    mujoco.mj_forward(model, data)
    obs = proprio(robot, model, data)
    assert obs.shape == (3, PROPRIO_DIM) and obs.dtype == np.float32
    # torso: x relative to itself is 0, y and z world
    np.testing.assert_allclose(obs[0, :3], [0.0, -0.2, 0.5], atol=1e-6)
    # limb/0 hangs 0.1 below the torso centre with no rotation above it
    np.testing.assert_allclose(obs[1, :3], [0.0, -0.2, 0.4], atol=1e-6)
    np.testing.assert_allclose(obs[0, 3:6], [1.5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(obs[0, 9:13], [1, 0, 0, 0], atol=1e-6)
    # joint slots: qpos mapped over the range to [0, 1], then qvel
    np.testing.assert_allclose(obs[1, 13:17], [0.75, 0.1, 0.5, -0.2], atol=1e-6)
    np.testing.assert_allclose(obs[2, 13:17], [0.5, 0.3, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(obs[0, 13:17], 0.0)  # torso has no joint slots
    # velocities match MuJoCo's own object velocity (world orientation, inertial frame)
    vel = np.zeros(6)
    mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, robot.limbs[2].body_id, vel, 0)
    np.testing.assert_allclose(obs[2, 3:6], vel[3:], atol=1e-5)
    np.testing.assert_allclose(obs[2, 6:9], vel[:3], atol=1e-5)


def test_context_by_hand(tiny) -> None:
    model, robot, _ = tiny
    ctx = context(robot, model)
    assert ctx.shape == (3, CONTEXT_DIM) and ctx.dtype == np.float32
    assert np.all(np.abs(ctx) <= 1.0)
    # positions relative to the torso, summed down the tree (0, -0.1, -0.3 in z)
    np.testing.assert_allclose(ctx[:, 2], [_scaled(z, "pos") for z in (0.0, -0.1, -0.3)], atol=1e-6)
    np.testing.assert_allclose(
        ctx[0, 10], _scaled(4 / 3 * np.pi * 0.1**3 * 1000, "mass"), atol=1e-5
    )
    np.testing.assert_allclose(ctx[0, 11:13], [_scaled(0.1, "radius"), _scaled(0.0, "length")])
    np.testing.assert_allclose(ctx[1, 11:13], [_scaled(0.05, "radius"), _scaled(0.2, "length")])
    # limb/0 slot 0: range (-30, 30) is class 0, axis x, gear 150 is class 0
    slot0 = ctx[1, 13:33]
    assert slot0[:13].tolist() == [1.0] + [0.0] * 12
    np.testing.assert_allclose(slot0[13:16], [1, 0, 0])
    assert slot0[16:].tolist() == [1, 0, 0, 0]
    # limb/0 slot 1: range (0, 60) is class 2, gear 250 is class 2
    slot1 = ctx[1, 33:53]
    assert np.argmax(slot1[:13]) == 2 and slot1[:13].sum() == 1
    assert slot1[16:].tolist() == [0, 0, 1, 0]
    # limb/1 has one slot; the second is all zero; torso has none
    np.testing.assert_allclose(ctx[2, 13:16], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0][:3])
    assert np.argmax(ctx[2, 13:26]) == JOINT_RANGE_CLASSES.index((-90, 0))
    np.testing.assert_allclose(ctx[2, 33:], 0.0)
    np.testing.assert_allclose(ctx[0, 13:], 0.0)


def test_nearest_classes_for_robots_outside_unimal() -> None:
    assert joint_range_class(np.radians([-31, 29])) == JOINT_RANGE_CLASSES.index((-30, 30))
    assert joint_range_class(np.radians([-170, 170])) == JOINT_RANGE_CLASSES.index((-60, 60))
    assert gear_class(120) == 0 and gear_class(1000) == 3 and gear_class(226) == 2


# --- the vectorised observation against the per-body definition ---------------------


def _proprio_per_body(robot: Robot, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """The observation as first written: one ``mj_objectVelocity`` call per body."""
    b = robot.body_ids
    out = np.zeros((robot.n_limbs, PROPRIO_DIM))
    out[:, 0] = data.xpos[b, 0] - data.xpos[robot.root_body, 0]
    out[:, 1:3] = data.xpos[b, 1:3]
    vel = np.empty(6)
    for i, body in enumerate(b):
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, int(body), vel, 0)
        out[i, 3:6], out[i, 6:9] = vel[3:], vel[:3]
    out[:, 9:13] = data.xquat[b]
    for li in range(robot.n_limbs):
        for si in range(2):
            if robot.slot_qpos[li, si] >= 0:
                lo, hi = robot.slot_range[li, si]
                q = data.qpos[robot.slot_qpos[li, si]]
                out[li, 13 + 2 * si] = (q - lo) / (hi - lo if hi > lo else 1.0)
                out[li, 14 + 2 * si] = data.qvel[robot.slot_dof[li, si]]
    return out.astype(np.float32)


def _check_same_observation(sources: list, *, steps: int = 30) -> None:
    """Both definitions agree to float32 rounding along a random-action rollout."""
    rng = np.random.default_rng(0)
    for source in sources:
        task = LocomotionTask(source)
        observe = Proprioception(task.robot, task.model)  # one gather index, state moving
        in_c = NativeObservation(task.robot, task.model) if native_step.available() else None
        task.reset(rng)
        for _ in range(steps):
            result = task.step(rng.uniform(-1, 1, task.model.nu))
            if result.unstable:
                break
            got = proprio(task.robot, task.model, task.data)
            want = _proprio_per_body(task.robot, task.model, task.data)
            scale = np.maximum(1.0, np.abs(want))
            err = float(np.max(np.abs(got - want) / scale))
            assert err <= 4 * np.finfo(np.float32).eps, (task.robot.name, err)
            np.testing.assert_array_equal(observe(task.data), got)
            if in_c is not None:  # the C observation: the same definition, not a second one
                err_c = float(np.max(np.abs(in_c(task.data) - want) / scale))
                assert err_c <= 4 * np.finfo(np.float32).eps, (task.robot.name, err_c)
            if result.terminated or result.truncated:
                task.reset(rng)


def test_vectorised_observation_on_generated_robots() -> None:
    _check_same_observation([generate_robot(seed) for seed in range(12)])


def test_one_observer_follows_each_data_it_is_given() -> None:
    """The gather index is bound to one ``MjData``; another one (or a pickled copy of the
    observer, as workers receive it) reads its own state, not the first one's."""
    task = LocomotionTask(generate_robot(3))
    observe = Proprioception(task.robot, task.model)
    other = mujoco.MjData(task.model)
    task.reset(np.random.default_rng(0))
    other.qpos[:] = task.data.qpos
    other.qpos[2] += 0.25
    other.qvel[:] = 0.5
    mujoco.mj_forward(task.model, other)
    first, second = observe(task.data), observe(other)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(observe(task.data), first)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(observe))(other), second)
    np.testing.assert_allclose(second, _proprio_per_body(task.robot, task.model, other), atol=1e-6)


@pytest.mark.parametrize("split", ["train", "test"])
def test_vectorised_observation_on_unimal_robots(split: str) -> None:
    _check_same_observation(unimal_robots(split), steps=10)


@pytest.mark.slow
def test_vectorised_observation_on_mutated_unimal_robots() -> None:
    _check_same_observation(unimal_robots("train_mutate"), steps=10)
