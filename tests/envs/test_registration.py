"""gymnasium.make("hd_deploy/Locomotion-v0") after ``import hd_deploy``, in either order."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from hd_deploy.envs.registration import EPISODE_STEPS, GYM_ENV_ID
from hd_deploy.envs.task import TaskConfig
from hd_deploy.morphology.sources import bundled_robots

STEPS = 3


def test_make_reset_step_and_check_env() -> None:
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make(GYM_ENV_ID, robot=str(bundled_robots()[0]))
    assert env.spec is not None and env.spec.max_episode_steps == TaskConfig().episode_steps
    obs, info = env.reset(seed=0)
    assert obs["proprio"].shape == (TaskConfig().max_limbs, 17) and not info["unstable"]
    for _ in range(STEPS):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.isfinite(reward) and not truncated
    check_env(env.unwrapped)
    env.close()


def test_episode_steps_match_the_task() -> None:
    assert EPISODE_STEPS == TaskConfig().episode_steps


def test_registration_works_in_either_import_order_and_only_once() -> None:
    robot = str(bundled_robots()[0])
    for imports in ("import hd_deploy, gymnasium", "import gymnasium, hd_deploy"):
        script = textwrap.dedent(
            f"""
            {imports}
            import importlib
            env = gymnasium.make({GYM_ENV_ID!r}, robot={robot!r})
            env.reset(seed=0)
            importlib.reload(hd_deploy)  # a second registration neither warns nor fails
            gymnasium.make({GYM_ENV_ID!r}, robot={robot!r})
            print(type(env.unwrapped).__name__)
            """
        )
        out = subprocess.run(
            [sys.executable, "-W", "error", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, (imports, out.stderr[-2000:])
        assert out.stdout.strip() == "LocomotionEnv", imports


def test_import_hd_deploy_does_not_import_gymnasium() -> None:
    script = "import sys, hd_deploy; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
