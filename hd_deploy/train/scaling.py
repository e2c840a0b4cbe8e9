"""Reward scaling for PPO."""

from __future__ import annotations

import math

import numpy as np


class RunningScale:
    """Running variance of discounted returns, used to scale rewards (VecNormalize style)."""

    def __init__(self, n_envs: int, gamma: float) -> None:
        self.gamma = gamma
        self.ret = np.zeros(n_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + reward
        b_mean, b_var, b_n = self.ret.mean(), self.ret.var(), len(self.ret)
        delta, total = b_mean - self.mean, self.count + b_n
        self.mean += delta * b_n / total
        m2 = self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / total
        self.var, self.count = m2 / total, total
        self.ret[done] = 0.0
        return reward / math.sqrt(self.var + 1e-8)

    def state(self) -> dict:
        return {"mean": float(self.mean), "var": float(self.var), "count": float(self.count)}

    def load(self, state: dict) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]
