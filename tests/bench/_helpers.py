"""Sizes shared by the bench tests: tiny repetitions, since they check structure only."""

from __future__ import annotations

CALLS = 20
STEPS = 20
EPISODES = 1
ROBOT_LIMBS = (3, 4)  # two small generated robots, one per robot set
