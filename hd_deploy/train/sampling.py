"""Which robot an environment runs next: MetaMorph's balanced replay.

Sampled uniformly, a robot that falls after 100 steps gets a tenth of the experience of one
that walks for the whole 1000: the bodies the policy handles worst are the ones it trains on
least. MetaMorph ("dynamic replay buffer balancing", Gupta et al. 2022; the HyperDistill
authors' code samples so by default) draws each robot in inverse proportion to its recent
episode length, so every robot contributes about the same number of steps.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

SAMPLINGS = ("balanced", "uniform")


def training_return_column(row: Mapping[str, str | float]) -> str:
    """Which column of a ``progress.csv`` row holds its training return as a mean over
    robots: ``return_robots`` where the run logged it, else ``return_recent`` (the mean of
    the last episodes), which estimates the same under uniform sampling, where every
    episode's robot is drawn alike, but not under balanced, where most episodes are those of
    the robots that fall early."""
    robots = float(row.get("return_robots") or "nan")
    return "return_robots" if math.isfinite(robots) else "return_recent"


def training_return(row: Mapping[str, str | float]) -> float:
    """A ``progress.csv`` row's training return as a mean over robots (NaN: none yet)."""
    return float(row.get(training_return_column(row)) or "nan")


class RobotEpisodes:
    """Each robot's recent training episodes: their length, which sets the sampling weights,
    and their return, whose mean over robots does not depend on how robots are drawn.

    A robot's estimates are the mean of its first ``warmup`` episodes, then an exponential
    moving average (``alpha`` per episode), as MetaMorph's ``AgentMeter`` keeps the length.
    MetaMorph samples uniformly until every robot has ``warmup`` episodes (its first 30
    iterations); here a robot with no episode yet counts as the mean of the others, so the
    balance starts at once, as it must when a long run resumes with it switched on.

    Args:
        n_robots: Size of the robot set.
        alpha: EMA weight of a new episode.
        warmup: Episodes averaged before the EMA takes over.
    """

    def __init__(self, n_robots: int, *, alpha: float = 0.1, warmup: int = 10) -> None:
        self.alpha, self.warmup = alpha, warmup
        self.length = np.full(n_robots, np.nan)
        self.ret = np.full(n_robots, np.nan)
        self.count = np.zeros(n_robots, dtype=np.int64)

    def add(self, episodes: Sequence[dict]) -> None:
        """Fold in finished episodes (dicts with ``robot_index``, ``length``, ``return``)."""
        for e in episodes:
            k = e["robot_index"]
            self.count[k] += 1
            n = self.count[k]
            rate = 1.0 / n if n <= self.warmup else self.alpha  # the mean, then the EMA
            for estimate, value in ((self.length, e["length"]), (self.ret, e["return"])):
                old = 0.0 if n == 1 else estimate[k]
                estimate[k] = old + rate * (value - old)

    def weights(self) -> np.ndarray | None:
        """Sampling weights (sum 1), inverse to each robot's episode length; None until a
        robot has finished an episode (sample uniformly)."""
        seen = self.count > 0
        if not seen.any():
            return None
        length = np.where(seen, self.length, self.length[seen].mean())
        inverse = 1.0 / np.maximum(length, 1.0)
        return inverse / inverse.sum()

    def mean_return(self) -> float:
        """The mean over robots (those with an episode) of each one's recent return."""
        seen = self.count > 0
        return float(self.ret[seen].mean()) if seen.any() else float("nan")

    def table(self, names: Sequence[str], weights: np.ndarray | None) -> str:
        """CSV of each robot's estimates and its share of the draws (``robots.csv``), given
        the weights the robots are drawn by (None: uniformly)."""
        if weights is None:
            weights = np.full(len(names), 1.0 / len(names))
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["robot", "episodes", "episode_length", "return", "draw_share"])
        for row in zip(names, self.count, self.length, self.ret, weights, strict=True):
            name, count, length, ret, share = row
            w.writerow([name, count, f"{length:.1f}", f"{ret:.1f}", f"{share:.5f}"])
        return out.getvalue()

    def state(self) -> dict:
        return {"length": self.length.tolist(), "return": self.ret.tolist(),
                "count": self.count.tolist()}  # fmt: skip

    def load(self, state: dict) -> None:
        """Restore :meth:`state` (of a run over the same robots)."""
        self.length = np.array(state["length"], dtype=np.float64)
        self.ret = np.array(state["return"], dtype=np.float64)
        self.count = np.array(state["count"], dtype=np.int64)
