"""How far a robot lies from the robots a model trained on, by morphology context.

A robot's place is its morphology context (53 numbers a limb, each in [-1, 1]) with the
limbs in the tree order the policy reads them, padded with zeros to ``max_limbs`` rows; the
distance between two robots is the Euclidean one between those (a limb one robot has and
the other lacks counts in full). It is coarse (it knows nothing of which differences
matter to a policy) but it tells the robots a policy fails on: the unseen UNIMAL test
robots the shipped teacher drops are the ones far from all of its training robots (the
model card's "Which unseen robots").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from hd_deploy.morphology.errors import MorphologyError
from hd_deploy.morphology.features import context
from hd_deploy.morphology.robot import Robot, load_model, parse_robot, robot_name

# A robot farther than FAR x the training robots' spacing from all of them counts as far.
# The shipped student's 932 training robots lie 2.91 apart; on the 13 unseen UNIMAL test
# robots within 1.5x that of one of them it returns 748 (its teacher 686), on the 30 beyond
# 181 (161); on the 176 mutate200 robots it never trained on 550 within, 134 beyond
# (hd-eval, seeds 0-2 pooled: scripts/nearest_robots.py training/eval_student_mb4_ep_test*.json
# --robots ../shared/unimal/test --checkpoint hd_deploy/assets/checkpoints/student; for
# mutate200 add --unseen).
FAR = 1.5


def place(robot: Robot, model: mujoco.MjModel, max_limbs: int) -> np.ndarray:
    """The robot's context padded to ``(max_limbs, 53)`` (zero rows past its limbs).

    Raises:
        MorphologyError: The robot has more than ``max_limbs`` limbs.
    """
    if robot.n_limbs > max_limbs:
        raise MorphologyError(
            f"{robot.name}: {robot.n_limbs} limbs, more than the maximum of {max_limbs}"
        )
    return pad_context(context(robot, model), max_limbs)


def pad_context(ctx: np.ndarray, rows: int) -> np.ndarray:
    """A robot's context ``(n_limbs, 53)`` padded with zero rows to ``(rows, 53)`` float32,
    as the policy reads it."""
    out = np.zeros((rows, ctx.shape[1]), np.float32)
    out[: len(ctx)] = ctx
    return out


def fingerprint_and_place(source: str | Path, max_limbs: int) -> tuple[str, np.ndarray]:
    """The robot's fingerprint (:attr:`Robot.fingerprint`) and its :func:`place`, from one
    parse of the file.

    Raises:
        MorphologyError: The robot cannot be read, is unsupported or has too many limbs.
    """
    model = load_model(source)
    robot = parse_robot(model, name=robot_name(source, model), max_limbs=None)
    return robot.fingerprint, place(robot, model, max_limbs)


def fingerprints_and_places(
    sources: Sequence[str | Path], max_limbs: int
) -> tuple[list[str], np.ndarray]:
    """:func:`fingerprint_and_place` of every robot: the fingerprints, and the places
    stacked as ``(len(sources), max_limbs, 53)`` (what a checkpoint records of its robots)."""
    pairs = [fingerprint_and_place(s, max_limbs) for s in sources]
    return [f for f, _ in pairs], np.stack([p for _, p in pairs])


def distances(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Euclidean distance from each of ``queries`` (``(n, ...)``) to each of ``pool``
    (``(m, ...)``), as ``(n, m)``."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    p = pool.reshape(len(pool), -1).astype(np.float64)
    d2 = (q**2).sum(1)[:, None] + (p**2).sum(1)[None] - 2.0 * q @ p.T
    return np.sqrt(np.maximum(d2, 0.0))


def spacing(pool: np.ndarray) -> float | None:
    """The median distance from each robot of ``pool`` to its nearest other one (None for
    fewer than two): how far apart a model's training robots lie."""
    if len(pool) < 2:
        return None
    d = distances(pool, pool)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


@dataclass(frozen=True)
class Nearest:
    """A robot's nearest training robot.

    Attributes:
        name: That training robot's name.
        distance: The distance to it.
        spacing: The training robots' own :func:`spacing` (None for a single robot).
        robots: How many training robots there are.
    """

    name: str
    distance: float
    spacing: float | None
    robots: int

    @property
    def far(self) -> bool:
        """Farther than :data:`FAR` x the training robots' spacing from all of them."""
        return self.spacing is not None and self.distance > FAR * self.spacing

    def to_dict(self) -> dict:
        """JSON-ready: ``robot``, ``distance``, ``spacing``, ``training_robots``, ``far``."""
        return {"robot": self.name, "distance": self.distance, "spacing": self.spacing,
                "training_robots": self.robots, "far": self.far}  # fmt: skip

    def describe(self) -> str:
        """One line: the nearest training robot, the distance and the scale it compares to."""
        scale = "" if self.spacing is None else (
            f"; its {self.robots} training robots lie {self.spacing:.2f} from their nearest"
            " at the median"
        )  # fmt: skip
        return f"nearest training robot {self.name} at {self.distance:.2f}{scale}"


@dataclass(frozen=True)
class TrainingRobots:
    """The robots a model trained on, placed (what a checkpoint records of them).

    Attributes:
        names: Their names.
        places: Their places, ``(len(names), max_limbs, 53)``.
        spacing: Their :func:`spacing`, computed once.
    """

    names: tuple[str, ...]
    places: np.ndarray
    spacing: float | None

    @classmethod
    def of(cls, names: Sequence[str], places: np.ndarray) -> TrainingRobots:
        """The training robots ``names`` at ``places`` (parallel, at least one).

        Raises:
            ValueError: No robots, or not as many places as names.
        """
        if not len(names) or len(names) != len(places):
            raise ValueError(f"{len(places)} places for {len(names)} training robots")
        return cls(tuple(names), places, spacing(places))

    def nearest(self, place_: np.ndarray) -> Nearest:
        """The nearest of them to a robot at ``place_``."""
        d = distances(place_[None], self.places)[0]
        i = int(np.argmin(d))
        return Nearest(self.names[i], float(d[i]), self.spacing, len(self.names))
