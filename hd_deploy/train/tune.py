"""Fine-tune a baked controller on its own robot with PPO (``hd-tune``).

A baked MLP carries over what the teacher knows; on a robot unlike every training robot
that can be little (the shipped student stands or falls on many unseen UNIMAL robots).
The bake is also a good starting point for plain PPO on that one robot: a few minutes on
one core turn it into a controller that walks (``scripts/tune_unseen.py`` measures it).
Only the MLP's layers and an exploration std are trained; the bake's observation
normaliser, widths and control ranges stay, so the tuned MLP exports, verifies and runs
like any baked controller. A value network is trained from scratch beside it, alone for
the first ``critic_warmup`` iterations. The tuned weights are kept only when their
deterministic return beats the bake's on the same evaluation episodes.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.models.baked import BakedMLP
from hd_deploy.train.config import TuneConfig
from hd_deploy.train.mlp_ppo import MlpPPO
from hd_deploy.train.rollout import run_episodes

RECENT_EPISODES = 20  # training return: the mean of the last this many episodes
EVAL_SALT = (4242,)  # the evaluation episodes' seeds: (seed, 4242, episode)


@dataclass
class TuneResult:
    """What tuning gave.

    Attributes:
        mlp: The tuned MLP, or the bake itself where tuning did not beat it.
        improved: Whether ``mlp`` is the tuned one.
        returns_before: The bake's deterministic return, one per evaluation episode.
        returns_after: The tuned MLP's, on the same episodes (the same reset noise).
        steps: Environment steps trained.
        wall_s: Wall time of the whole tuning, evaluation included.
        stopped: Whether a stop request ended it before ``total_steps``.
        curve: ``(steps, training return)`` after each iteration that finished an episode.
    """

    mlp: BakedMLP
    improved: bool
    returns_before: list[float]
    returns_after: list[float]
    steps: int
    wall_s: float
    stopped: bool
    curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def return_before(self) -> float:
        return float(np.mean(self.returns_before))

    @property
    def return_after(self) -> float:
        return float(np.mean(self.returns_after))

    def record(self, config: TuneConfig) -> dict[str, Any]:
        """JSON-serialisable summary (also what a tuned controller's metadata holds)."""
        return {
            "steps": self.steps,
            "wall_s": round(self.wall_s, 1),
            "return_before": round(self.return_before, 2),
            "return_after": round(self.return_after, 2),
            "kept": "tuned" if self.improved else "bake",
            "stopped_early": self.stopped,
            "eval_episodes": len(self.returns_before),
            "seed": config.seed,
        }


def deterministic_returns(
    policy: BakedMLP | Callable[[np.ndarray], np.ndarray],
    task: LocomotionTask,
    *,
    seed: int,
    episodes: int,
) -> list[float]:
    """Returns of ``episodes`` deterministic episodes on a copy of ``task``, each from its
    own reset noise (the same for the same ``seed``).

    Args:
        policy: A baked MLP, or any function from the flat observation to the controls.
        task: The robot's task.
        seed: Seed of the reset noise.
        episodes: How many episodes.
    """
    act = _numpy_policy(policy) if isinstance(policy, BakedMLP) else policy
    return run_episodes(task.fork(), act, episodes, seed, salt=EVAL_SALT)[0]


def _numpy_policy(mlp: BakedMLP) -> Callable[[np.ndarray], np.ndarray]:
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(obs.reshape(1, -1), dtype=torch.float32)
            return mlp(x)[0].numpy().astype(np.float64)

    return act


def tune_baked(
    mlp: BakedMLP,
    task: LocomotionTask,
    config: TuneConfig = TuneConfig(),
    *,
    on_iteration: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TuneResult:
    """PPO on ``task`` from ``mlp``'s weights; ``mlp`` itself is left as it was.

    Args:
        mlp: The robot's baked controller.
        task: The robot's task (its robot must be the one ``mlp`` was baked for).
        config: PPO settings and budget.
        on_iteration: Called after each iteration with the steps so far and the training
            return (NaN until an episode ends).
        should_stop: Polled after each iteration; True ends tuning there (the weights so
            far are evaluated and kept if better, as at the end).

    Raises:
        ValueError: ``task``'s robot is not the one ``mlp`` was baked for.
    """
    if mlp.fingerprint and mlp.fingerprint != task.robot.fingerprint:
        raise ValueError(
            f"the controller was baked for '{mlp.robot_name}' ({mlp.fingerprint}), not for "
            f"'{task.robot.name}' ({task.robot.fingerprint})"
        )
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 256-wide MLP: more threads cost more than they give
    try:
        torch.manual_seed(config.seed)
        before = deterministic_returns(mlp, task, seed=config.seed, episodes=config.eval_episodes)
        tuned = copy.deepcopy(mlp)
        dim = tuned.n_obs
        vf = nn.Sequential(
            nn.Linear(dim, config.value_hidden), nn.Tanh(),
            nn.Linear(config.value_hidden, config.value_hidden), nn.Tanh(),
            nn.Linear(config.value_hidden, 1),
        )  # fmt: skip
        envs = [task.fork() for _ in range(config.n_envs)]
        ppo = MlpPPO(
            envs, np.random.default_rng(config.seed), config, policy=tuned.action_mean,
            value=lambda o: vf(tuned.normalize(o))[:, 0],
            log_std=nn.Parameter(torch.full((tuned.n_actuators,), float(np.log(config.init_std)))),
            policy_params=list(tuned.layers.parameters()), value_params=list(vf.parameters()),
            lr=config.lr, preprocess=lambda o: o.astype(np.float32),
        )  # fmt: skip
        finished: list[float] = []
        curve: list[tuple[int, float]] = []
        steps, iteration, stopped = 0, 0, False
        while steps < config.total_steps:
            batch = ppo.collect()
            ppo.update(batch, train_policy=iteration >= config.critic_warmup)
            steps += batch.size
            iteration += 1
            finished += batch.finished
            recent = float(np.mean(finished[-RECENT_EPISODES:])) if finished else float("nan")
            if finished:
                curve.append((steps, recent))
            if on_iteration is not None:
                on_iteration(steps, recent)
            if should_stop is not None and should_stop():
                stopped = steps < config.total_steps
                break
        after = deterministic_returns(tuned, task, seed=config.seed, episodes=config.eval_episodes)
    finally:
        torch.set_num_threads(threads)
    improved = float(np.mean(after)) > float(np.mean(before))
    return TuneResult(
        mlp=tuned if improved else mlp,
        improved=improved,
        returns_before=before,
        returns_after=after,
        steps=steps,
        wall_s=time.perf_counter() - t0,
        stopped=stopped,
        curve=curve,
    )


def plot_tuning(result: TuneResult, out: Path, *, title: str) -> None:
    """PNG of the training return against steps, with the deterministic returns of the
    bake and of the tuned MLP (atomic replace)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    if result.curve:
        xs, ys = zip(*result.curve, strict=True)
        ax.plot(xs, ys, lw=1.5, label=f"training return (last {RECENT_EPISODES} episodes)")
    for value, style, label in (
        (result.return_before, ":", "baked, deterministic"),
        (result.return_after, "--", "tuned, deterministic"),
    ):
        ax.axhline(
            value, ls=style, color="k" if style == ":" else "C1", label=f"{label}: {value:.0f}"
        )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
