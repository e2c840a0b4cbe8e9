"""Locomotion task semantics: reset, reward, termination, instability, vectorised env."""

from __future__ import annotations

import numpy as np
import pytest

from hd_deploy.envs.task import FLOOR_MATERIAL, LocomotionTask, TaskConfig
from hd_deploy.envs.vec_env import VecLocomotionEnv
from hd_deploy.morphology import CONTEXT_DIM, PROPRIO_DIM


def test_reset_is_seeded_and_noisy(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml)
    a = task.reset(np.random.default_rng(3))
    b = task.reset(np.random.default_rng(3))
    c = task.reset(np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.max(np.abs(task.data.qvel)) <= 5e-3
    assert task.steps == 0


def test_model_has_floor_and_task_timestep(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml, config=TaskConfig(timestep=0.004))
    assert task.model.opt.timestep == pytest.approx(0.004)
    assert task.model.ngeom == 4  # floor + the robot's three geoms


def test_reward_is_forward_velocity_of_torso(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml)
    task.reset(np.random.default_rng(0))
    x0 = task.torso_x
    res = task.step(np.zeros(3))
    assert res.reward == pytest.approx((task.torso_x - x0) / 0.02)


def test_fall_threshold_is_metamorph(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml)
    assert task.fall_height == pytest.approx(0.5 * (0.6 - 0.2))
    task.reset(np.random.default_rng(0))
    task.data.qpos[2] = 0.05  # torso below the threshold
    assert task.step(np.zeros(3)).terminated


def test_truncation_after_episode_steps(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml, config=TaskConfig(episode_steps=5, drop_clearance=10.0))
    task.reset(np.random.default_rng(0))
    results = [task.step(np.zeros(3)) for _ in range(5)]
    assert [r.truncated for r in results] == [False] * 4 + [True]
    assert not any(r.terminated for r in results)


def test_unstable_state_is_flagged(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml)
    task.reset(np.random.default_rng(0))
    task.data.qvel[:] = np.nan
    res = task.step(np.zeros(3))
    assert res.unstable and res.terminated and res.reward == 0.0


def test_non_finite_controls_are_zeroed(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml)
    task.reset(np.random.default_rng(0))
    res = task.step(np.array([np.nan, 1.0, 0.0]))
    assert not res.unstable
    np.testing.assert_array_equal(task.data.ctrl, 0.0)


@pytest.mark.parametrize("workers", [0, 2])
def test_vec_env_pads_and_autoresets(tiny_file, workers: int) -> None:
    config = TaskConfig(episode_steps=3, max_limbs=5)
    with VecLocomotionEnv([tiny_file], n_envs=3, n_workers=workers, config=config) as env:
        obs = env.reset()
        assert obs.proprio.shape == (3, 5, PROPRIO_DIM)
        assert obs.context.shape == (3, 5, CONTEXT_DIM)
        assert obs.limb_mask[:, :3].all() and not obs.limb_mask[:, 3:].any()
        assert obs.action_mask.sum() == 3 * 3
        np.testing.assert_array_equal(obs.proprio[:, 3:], 0.0)
        finished = []
        for _ in range(3):
            step = env.step(np.zeros((3, 5, 2), np.float32))
            finished += step.episodes
        assert step.truncated.all() and len(finished) == 3
        assert {e["length"] for e in finished} == {3}
        assert np.any(step.final_proprio[:, :3] != 0)
        with pytest.raises(ValueError, match="actions must have shape"):
            env.step(np.zeros((3, 4, 2), np.float32))


def test_gymnasium_env_api(tiny_xml: str) -> None:
    from gymnasium.utils.env_checker import check_env

    from hd_deploy.envs.gym_env import LocomotionEnv

    env = LocomotionEnv(tiny_xml, config=TaskConfig(max_limbs=4))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert obs["proprio"].shape == (4, PROPRIO_DIM) and not info["unstable"]
    obs2, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs["proprio"], obs2["proprio"])
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and not truncated
    with pytest.raises(ValueError, match="action must have shape"):
        env.step(np.zeros(3))


def test_padded_context_has_zero_rows_past_the_robot(tiny_xml: str) -> None:
    task = LocomotionTask(tiny_xml, config=TaskConfig(max_limbs=12))
    ctx, mask = task.padded_context()
    n = task.robot.n_limbs
    assert ctx.shape == (12, task.context.shape[1]) and ctx.dtype == np.float32
    assert mask.tolist() == [True] * n + [False] * (12 - n)
    np.testing.assert_allclose(ctx[:n], task.context, rtol=1e-6)
    assert not ctx[n:].any()


def test_a_robot_with_its_own_floor_gets_no_second_one() -> None:
    import mujoco

    from hd_deploy.envs.task import build_model
    from tests.conftest import gym_robots

    for source in gym_robots()[:2]:  # ant and hopper bring a floor
        model, _ = build_model(source)
        planes = [g for g in range(model.ngeom)
                  if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE]  # fmt: skip
        assert len(planes) == 1, source.name
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, FLOOR_MATERIAL) == -1


def test_the_task_adds_a_floor_to_a_robot_without_one(tiny_xml: str) -> None:
    import mujoco

    from hd_deploy.envs.task import build_model

    model, _ = build_model(tiny_xml)
    assert model.geom("hd_floor").type[0] == mujoco.mjtGeom.mjGEOM_PLANE


def test_the_added_floor_is_a_textured_grid_with_unchanged_physics(tiny_xml: str) -> None:
    import mujoco

    from hd_deploy.envs.task import _HEADLESS_TEXELS, build_model

    model, _ = build_model(tiny_xml)
    floor = model.geom("hd_floor")
    material = model.material(FLOOR_MATERIAL)
    assert floor.matid[0] == material.id
    texture = material.texid[mujoco.mjtTextureRole.mjTEXROLE_RGB]
    assert texture == model.texture(FLOOR_MATERIAL).id
    assert model.tex_width[texture] == model.tex_height[texture] == 300
    # Only the looks changed: the contact settings are the task's as before.
    np.testing.assert_allclose(floor.size, [50.0, 50.0, 0.1])
    np.testing.assert_allclose(floor.friction, [1.0, 0.005, 0.0001])
    assert floor.condim[0] == 3
    # A model that is never drawn keeps a few texels of it.
    headless, _ = build_model(tiny_xml, headless=True)
    texture = headless.material(FLOOR_MATERIAL).texid[mujoco.mjtTextureRole.mjTEXROLE_RGB]
    assert headless.tex_width[texture] == headless.tex_height[texture] == _HEADLESS_TEXELS


def test_a_robot_that_diverges_under_its_motors_is_refused() -> None:
    import re

    from hd_deploy.envs.task import build_model, check_at_rest
    from hd_deploy.morphology import MorphologyError
    from hd_deploy.morphology.sources import bundled_robots

    text = bundled_robots()[0].read_text()
    check_at_rest(*build_model(text))  # the robot as shipped passes
    motor = re.search(r'<motor[^>]*joint="([^"]+)"[^>]*gear="([^"]+)"', text)
    assert motor is not None
    joint, gear = motor.groups()
    broken = text.replace(motor.group(0), motor.group(0).replace(f'gear="{gear}"', 'gear="1e30"'))
    with pytest.raises(MorphologyError, match=f"under random controls .*force on '{joint}'"):
        check_at_rest(*build_model(broken))
