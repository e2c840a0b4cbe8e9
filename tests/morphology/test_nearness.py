"""Placing a robot against the robots a model trained on (morphology context distance)."""

from __future__ import annotations

import numpy as np
import pytest

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.morphology import MorphologyError, load_model, parse_robot, robot_fingerprint
from hd_deploy.morphology.nearness import (
    FAR,
    Nearest,
    TrainingRobots,
    distances,
    fingerprint_and_place,
    fingerprints_and_places,
    place,
    spacing,
)
from hd_deploy.morphology.sources import bundled_robots


def test_a_place_is_the_context_the_policy_reads() -> None:
    files = bundled_robots()[:3]
    fps, places = fingerprints_and_places(files, 12)
    assert places.shape == (3, 12, 53)
    for f, fp, p in zip(files, fps, places, strict=True):
        task = LocomotionTask(f, config=TaskConfig(max_limbs=12))
        np.testing.assert_array_equal(p, task.padded_context()[0])
        assert fp == robot_fingerprint(f) == fingerprint_and_place(f, 12)[0]


def test_a_robot_with_more_limbs_than_the_model_hosts_is_refused() -> None:
    f = bundled_robots()[0]
    model = load_model(f)
    robot = parse_robot(model, name="r", max_limbs=None)
    with pytest.raises(
        MorphologyError, match=f"r: {robot.n_limbs} limbs, more than the maximum of 2"
    ):
        place(robot, model, 2)


def test_distances_spacing_and_the_nearest() -> None:
    pool = np.zeros((3, 2, 2))
    pool[1, 0, 0], pool[2, 1, 1] = 3.0, 4.0  # 0 -> 1: 3, 0 -> 2: 4, 1 -> 2: 5
    np.testing.assert_allclose(distances(pool, pool), [[0, 3, 4], [3, 0, 5], [4, 5, 0]])
    assert spacing(pool) == 3.0  # nearest others: 3, 3, 4
    assert spacing(pool[:1]) is None
    query = np.zeros((2, 2))
    query[1, 1] = 3.5
    training = TrainingRobots.of(["a", "b", "c"], pool)
    near = training.nearest(query)
    assert near == Nearest("c", 0.5, 3.0, 3) and not near.far
    assert near.describe() == (
        "nearest training robot c at 0.50; its 3 training robots lie 3.00 from their nearest "
        "at the median"
    )
    query[1, 1] = -10.0  # 10.0 from a, farther than FAR x 3 from all
    assert training.nearest(query).far
    assert Nearest("a", 99.0, None, 1).far is False  # one training robot: no scale to judge by
    assert FAR * 3.0 < 10.0
    with pytest.raises(ValueError, match="2 places for 3 training robots"):
        TrainingRobots.of(["a", "b", "c"], pool[:2])
