"""The vectorised environment: shared-memory workers agree with in-process stepping and
report a crashed or failing worker in one line instead of hanging."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from hd_deploy.envs.task import TaskConfig
from hd_deploy.envs.vec_env import VecLocomotionEnv, WorkerError
from hd_deploy.errors import ConfigError

CONFIG = TaskConfig(episode_steps=5, max_limbs=5)
N_ENVS = 4


def _rollout(env: VecLocomotionEnv, steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = [env.reset().proprio]
    for _ in range(steps):
        step = env.step(rng.uniform(-1, 1, (N_ENVS, 5, 2)).astype(np.float32))
        out += [step.obs.proprio, step.reward, step.final_proprio]
    return out


def test_a_process_worker_steps_like_this_process(tiny_file) -> None:
    with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=0, config=CONFIG) as local:
        want = _rollout(local, 12)
    with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=1, config=CONFIG) as shared:
        got = _rollout(shared, 12)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("gone_before_step", [False, True])  # True: the send breaks the pipe
def test_a_killed_worker_is_one_error_line(tiny_file, gone_before_step: bool) -> None:
    with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=2, config=CONFIG) as env:
        env.reset()
        proc = env._workers[1]._proc  # type: ignore[attr-defined]
        os.kill(proc.pid, signal.SIGKILL)
        if gone_before_step:
            proc.join(timeout=5)
        with pytest.raises(WorkerError) as info:
            env.step(np.zeros((N_ENVS, 5, 2), np.float32))
    msg = str(info.value)
    assert "environment worker 1 (slots 2-3) died" in msg and "\n" not in msg


def test_workers_leave_ctrl_c_to_the_parent(tiny_file) -> None:
    """A terminal's Ctrl-C reaches the workers too; the parent decides how to stop."""
    # spawned as from a terminal: SIGINT not ignored (a background shell's would be)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=2, config=CONFIG) as env:
            env.reset()
            for worker in env._workers:  # type: ignore[attr-defined]
                os.kill(worker._proc.pid, signal.SIGINT)
            env.step(np.zeros((N_ENVS, 5, 2), np.float32))  # all still answer
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_exception_in_a_worker_is_one_error_line(tiny_file) -> None:
    with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=2, config=CONFIG) as env:
        env.reset()
        with pytest.raises(WorkerError, match=r"worker 0 .* failed: ValueError: unknown worker"):
            env._run("explode")


def test_a_diverged_simulation_ends_its_episode_flagged(tiny_xml: str) -> None:
    # A robot whose joints are driven hard at a huge timestep blows up within a few steps.
    unstable = tiny_xml.replace('gear="150"', 'gear="1e9"')
    config = TaskConfig(timestep=0.05, episode_steps=50, max_limbs=5)
    with VecLocomotionEnv([unstable], n_envs=2, n_workers=1, config=config) as env:
        env.reset()
        episodes = []
        for _ in range(50):
            episodes += env.step(np.ones((2, 5, 2), np.float32)).episodes
    assert episodes and all(e["unstable"] for e in episodes)


def test_context_noise_is_one_draw_an_episode_near_the_exact_context(tiny_file) -> None:
    from hd_deploy.envs.task import LocomotionTask

    exact = LocomotionTask(tiny_file, config=CONFIG, headless=True).context
    n = len(exact)
    spread = exact.std(axis=0)
    zeros = np.zeros((N_ENVS, 5, 2), np.float32)
    with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=0, config=CONFIG) as env:
        np.testing.assert_array_equal(env.reset().context[:, :n], np.stack([exact] * N_ENVS))
    with VecLocomotionEnv(
        [tiny_file], n_envs=N_ENVS, n_workers=0, config=CONFIG, context_noise=0.5
    ) as env:
        first = env.reset().context
        seen = [env.step(zeros).obs.context for _ in range(CONFIG.episode_steps)]
    noise = first[:, :n] - exact
    assert np.all(first[:, n:] == 0.0)  # padding stays zero
    assert np.all(noise[:, :, spread == 0] == 0.0)  # what every limb shares stays exact
    assert np.all(noise[:, :, spread > 0] != 0.0)
    assert abs(np.std(noise[:, :, spread > 0] / spread[spread > 0]) - 0.5) < 0.15
    for context in seen[:-1]:  # the episode goes on: the same draw
        np.testing.assert_array_equal(context, first)
    assert np.all(seen[-1][:, :n, spread > 0] != first[:, :n, spread > 0])  # a new episode


def test_context_noise_is_the_same_in_a_worker_process(tiny_file) -> None:
    contexts = []
    for workers in (0, 1):
        with VecLocomotionEnv([tiny_file], n_envs=N_ENVS, n_workers=workers, config=CONFIG,
                              context_noise=0.3) as env:  # fmt: skip
            contexts.append(env.reset().context)
    np.testing.assert_array_equal(*contexts)


def test_negative_context_noise_is_a_config_error(tiny_file) -> None:
    with pytest.raises(ConfigError, match="context_noise"):
        VecLocomotionEnv([tiny_file], n_envs=1, n_workers=0, config=CONFIG, context_noise=-0.1)
