"""Tiny checkpoints, two small robot sets and one benchmark run shared by the bench tests.

The checkpoints record the first set's robot as their training robot (by fingerprint): the
first set is seen in training, the second unseen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from hd_deploy.models import (
    HyperNetConfig,
    HyperNetPolicy,
    TeacherConfig,
    TeacherPolicy,
    save_checkpoint,
)
from hd_deploy.morphology import robot_fingerprint
from hd_deploy.morphology.generator import generate_robot

from ._helpers import CALLS, EPISODES, ROBOT_LIMBS, STEPS


@pytest.fixture(scope="session")
def robot_sets(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A folder holding one small robot, and one robot file: two robot sets."""
    root = tmp_path_factory.mktemp("robots")
    folder = root / "set_a"
    folder.mkdir()
    a = folder / "small-a.xml"
    a.write_text(generate_robot(3, n_limbs=ROBOT_LIMBS[0]))
    b = root / "small-b.xml"
    b.write_text(generate_robot(4, n_limbs=ROBOT_LIMBS[1]))
    return [folder, b]


@pytest.fixture(scope="session")
def checkpoints(
    tmp_path_factory: pytest.TempPathFactory, robot_sets: list[Path]
) -> tuple[Path, Path]:
    """(teacher, student) checkpoint folders with tiny random models, trained (so their
    metadata says) on the first robot set's robot."""
    root = tmp_path_factory.mktemp("ckpt")
    trained = sorted(robot_sets[0].glob("*.xml"))
    names, fingerprints = [f.stem for f in trained], [robot_fingerprint(f) for f in trained]
    torch.manual_seed(0)
    teacher = save_checkpoint(root / "teacher", TeacherPolicy(TeacherConfig.tiny()),
                              robots=names, fingerprints=fingerprints)  # fmt: skip
    student = save_checkpoint(root / "student", HyperNetPolicy(HyperNetConfig.tiny()),
                              robots=names, fingerprints=fingerprints)  # fmt: skip
    return teacher, student


@pytest.fixture(scope="session")
def bench_run(
    tmp_path_factory: pytest.TempPathFactory,
    checkpoints: tuple[Path, Path],
    robot_sets: list[Path],
) -> tuple[dict[str, Any], Path]:
    """One benchmark run with returns on both robot sets: (report, out folder)."""
    from hd_deploy.bench import run_benchmark

    out = tmp_path_factory.mktemp("bench_out")
    report = run_benchmark(
        *checkpoints,
        robot_sets,
        out_dir=out,
        episodes=EPISODES,
        calls=CALLS,
        throughput_steps=STEPS,
        bake_repeats=1,
    )
    return report, out
