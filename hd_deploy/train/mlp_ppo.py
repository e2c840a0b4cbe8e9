"""PPO on one robot with an MLP policy: what the per-robot experts and ``hd-tune`` share.

Each iteration collects ``rollout_steps`` control steps from ``n_envs`` copies of one
robot's task, scales the rewards by the running std of the discounted return, computes GAE
advantages and runs clipped-PPO epochs over minibatches. The policy is any function from a
batch of (preprocessed) observations to action means in [-1, 1] units, executed clipped and
scaled onto each actuator's ctrlrange, with a state-independent Gaussian std.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from hd_deploy.train.config import SingleRobotPPO


@dataclass
class RunningStats:
    """Running mean and variance over the first axis of batches (Chan's parallel update)."""

    mean: np.ndarray
    var: np.ndarray
    count: float = 1e-4

    def update(self, x: np.ndarray) -> None:
        b_mean, b_var, b_n = x.mean(0), x.var(0), len(x)
        delta, total = b_mean - self.mean, self.count + b_n
        self.mean = self.mean + delta * b_n / total
        m2 = self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / total
        self.var, self.count = m2 / total, total

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -10, 10).astype(np.float32)


def gaussian_log_prob(
    mean: torch.Tensor, action: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """Log-density of ``action`` under a diagonal Gaussian, summed over the last axis."""
    z = (action - mean) / log_std.exp()
    return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


@dataclass
class Rollout:
    """One iteration's samples, ``(T, n_envs, ...)``; ``obs`` as the policy saw them."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    last_values: np.ndarray
    finished: list[float] = field(default_factory=list)  # returns of episodes that ended

    @property
    def size(self) -> int:
        return int(self.rewards.size)


class MlpPPO:
    """Clipped PPO over copies of one task.

    Args:
        envs: The task copies (``LocomotionTask`` and its forks), one per environment.
        rng: Reset noise.
        settings: Batch, epochs and PPO constants.
        policy: Preprocessed observations ``(B, dim)`` -> action means ``(B, n_actuators)``.
        value: Preprocessed observations ``(B, dim)`` -> values ``(B,)``.
        log_std: The Gaussian's log std, ``(n_actuators,)`` (trained with the policy).
        policy_params: The policy's parameters, ``log_std`` excluded.
        value_params: The value function's parameters.
        lr: Adam's step size.
        preprocess: Raw flat observations ``(n_envs, dim)`` -> what the networks read.
    """

    def __init__(
        self,
        envs: Sequence[Any],
        rng: np.random.Generator,
        settings: SingleRobotPPO,
        *,
        policy: Callable[[torch.Tensor], torch.Tensor],
        value: Callable[[torch.Tensor], torch.Tensor],
        log_std: nn.Parameter,
        policy_params: Sequence[nn.Parameter],
        value_params: Sequence[nn.Parameter],
        lr: float,
        preprocess: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        self.envs, self.rng, self.settings = list(envs), rng, settings
        self.policy, self.value, self.log_std = policy, value, log_std
        self.preprocess = preprocess
        self._policy_params = [*policy_params, log_std]
        self._params = [*self._policy_params, *value_params]
        self.opt = torch.optim.Adam(self._params, lr=lr, eps=1e-5)
        self.obs = np.stack([e.reset(rng).reshape(-1) for e in self.envs])
        n = len(self.envs)
        self._returns = RunningStats(np.zeros(1), np.ones(1))
        self._discounted, self._episode = np.zeros(n), np.zeros(n)

    def collect(self) -> Rollout:
        """Step every environment ``rollout_steps`` times with the stochastic policy."""
        s, envs = self.settings, self.envs
        T, n, nu = s.rollout_steps, len(envs), self.log_std.shape[0]
        dim = self.obs.shape[1]
        out = Rollout(
            obs=np.zeros((T, n, dim), np.float32),
            actions=np.zeros((T, n, nu), np.float32),
            rewards=np.zeros((T, n)),
            dones=np.zeros((T, n)),
            log_probs=np.zeros((T, n)),
            values=np.zeros((T, n)),
            last_values=np.zeros(n),
        )
        for t in range(T):
            o = torch.as_tensor(self.preprocess(self.obs))
            with torch.no_grad():
                mean = self.policy(o)
                a = mean + self.log_std.exp() * torch.randn_like(mean)
                out.log_probs[t] = gaussian_log_prob(mean, a, self.log_std).numpy()
                out.values[t] = self.value(o).numpy()
            out.obs[t], out.actions[t] = o.numpy(), a.numpy()
            for i, env in enumerate(envs):
                res = env.step(env.robot.scale_ctrl(out.actions[t, i]))
                self._episode[i] += res.reward
                out.rewards[t, i] = res.reward
                if res.terminated or res.truncated:
                    out.dones[t, i] = 1.0
                    out.finished.append(float(self._episode[i]))
                    self._episode[i] = 0.0
                    self.obs[i] = env.reset(self.rng).reshape(-1)
                else:
                    self.obs[i] = env.observe().reshape(-1)
        with torch.no_grad():
            out.last_values[:] = self.value(torch.as_tensor(self.preprocess(self.obs))).numpy()
        return out

    def update(self, batch: Rollout, *, train_policy: bool = True) -> None:
        """PPO epochs over ``batch`` (the value function alone when not ``train_policy``)."""
        s = self.settings
        T, n = batch.rewards.shape
        for t in range(T):  # scale rewards by the running std of the discounted return
            self._discounted = self._discounted * s.gamma + batch.rewards[t]
            self._returns.update(self._discounted[:, None])
            self._discounted[batch.dones[t] > 0] = 0.0
        rew = batch.rewards / math.sqrt(self._returns.var[0] + 1e-8)
        adv, gae = np.zeros_like(rew), np.zeros(n)
        for t in reversed(range(T)):
            next_v = batch.last_values if t == T - 1 else batch.values[t + 1]
            live = 1.0 - batch.dones[t]
            delta = rew[t] + s.gamma * next_v * live - batch.values[t]
            gae = delta + s.gamma * s.gae_lambda * live * gae
            adv[t] = gae
        obs = torch.as_tensor(batch.obs.reshape(T * n, -1))
        act = torch.as_tensor(batch.actions.reshape(T * n, -1))
        old_lp = torch.as_tensor(batch.log_probs.reshape(-1), dtype=torch.float32)
        advs = torch.as_tensor(adv.reshape(-1), dtype=torch.float32)
        rets = torch.as_tensor((adv + batch.values).reshape(-1), dtype=torch.float32)
        for _ in range(s.epochs):
            perm = torch.randperm(T * n)
            for start in range(0, T * n, s.minibatch_size):
                idx = perm[start : start + s.minibatch_size]
                loss = 0.5 * 0.5 * (self.value(obs[idx]) - rets[idx]).pow(2).mean()
                if train_policy:
                    a_ = advs[idx]
                    a_ = (a_ - a_.mean()) / (a_.std() + 1e-8)
                    lp = gaussian_log_prob(self.policy(obs[idx]), act[idx], self.log_std)
                    ratio = torch.exp(lp - old_lp[idx])
                    clipped = ratio.clamp(1 - s.clip, 1 + s.clip)
                    loss = loss - torch.min(ratio * a_, clipped * a_).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self._params, s.max_grad_norm)
                self.opt.step()
