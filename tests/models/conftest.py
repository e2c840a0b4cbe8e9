"""Shared fixtures for model tests (robots with contexts and observed states)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ._helpers import (
    GYM_NAMES,
    UNIMAL_TRAIN,
    RobotCase,
    gym_assets,
    make_case,
    random_robot_xml,
)


@pytest.fixture(scope="session")
def random_cases() -> list[RobotCase]:
    """One random robot for every limb count 2..12."""
    return [make_case(random_robot_xml(n, seed=n), seed=n) for n in range(2, 13)]


@pytest.fixture(scope="session")
def gym_cases() -> list[RobotCase]:
    return [make_case(gym_assets() / f"{name}.xml") for name in GYM_NAMES]


@pytest.fixture(scope="session")
def unimal_cases() -> list[RobotCase]:
    """Every UNIMAL training robot; skips (saying why) when the folder is absent."""
    if not UNIMAL_TRAIN.is_dir():
        pytest.skip(f"UNIMAL robots not available at {UNIMAL_TRAIN}")
    files = sorted(UNIMAL_TRAIN.glob("*.xml"))
    if not files:
        pytest.skip(f"no UNIMAL robot files in {UNIMAL_TRAIN}")
    return [make_case(f, seed=i, n_obs=2) for i, f in enumerate(files)]


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the machine is shared; restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
