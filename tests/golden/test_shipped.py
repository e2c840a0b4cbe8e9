"""Golden outputs of the shipped checkpoints: silent drift in features or models fails here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hd_deploy.train.shipped import golden_outputs, shipped

GOLDEN = Path(__file__).with_name("shipped.json")


@pytest.fixture(scope="module")
def now() -> dict:
    return golden_outputs(shipped("teacher"), shipped("student"))


def test_golden_file_belongs_to_the_shipped_checkpoints(now: dict) -> None:
    golden = json.loads(GOLDEN.read_text())
    hint = "shipped checkpoints changed: run python scripts/golden.py"
    assert now["teacher_hash"] == golden["teacher_hash"], hint
    assert now["student_hash"] == golden["student_hash"], hint


@pytest.mark.parametrize("key", ["obs", "teacher_ctrl", "student_ctrl"])
def test_shipped_outputs_match_golden(now: dict, key: str) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert sorted(now["robots"]) == sorted(golden["robots"])
    for name, want in golden["robots"].items():
        got = np.asarray(now["robots"][name][key])
        np.testing.assert_allclose(got, np.asarray(want[key]), atol=1e-5, err_msg=name)
