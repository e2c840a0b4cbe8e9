"""fvcore against the analytic MAC count, and the report flagging a disagreement."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hd_deploy.bench import MACS_TOLERANCE, macs_check
from hd_deploy.bench.profile import hypernet_cost, student_cost, teacher_cost
from hd_deploy.bench.render import markdown
from hd_deploy.bench.report import summarize
from hd_deploy.envs.task import LocomotionTask
from hd_deploy.models import HyperNetConfig, HyperNetPolicy, TeacherConfig, TeacherPolicy
from hd_deploy.morphology.generator import GeneratorConfig, generate_robot


@pytest.fixture(scope="module")
def robot12() -> LocomotionTask:
    """A generated 12-limb robot with two hinges per limb."""
    xml = generate_robot(0, n_limbs=12, config=GeneratorConfig(two_joint_prob=1.0))
    return LocomotionTask(xml, name="gen-0-12")


def test_macs_check_agreement() -> None:
    ok = macs_check(1000, 1000)
    assert ok == {"fvcore": 1000, "analytic": 1000, "rel_diff": 0.0,
                  "tolerance": MACS_TOLERANCE, "agree": True}  # fmt: skip
    assert macs_check(1009, 1000)["agree"] is True  # 0.9%
    near = macs_check(1011, 1000)
    assert near["agree"] is False and near["rel_diff"] == pytest.approx(0.011)
    assert macs_check(900, 1000)["agree"] is False
    assert macs_check(0, 0)["agree"] is True
    assert macs_check(5, 0)["agree"] is False
    assert macs_check(1050, 1000, tolerance=0.1)["agree"] is True
    with pytest.raises(ValueError, match=">= 0"):
        macs_check(-1, 10)


@pytest.mark.parametrize(
    ("teacher_config", "hypernet_config"),
    [
        (TeacherConfig.tiny(), HyperNetConfig.tiny()),
        (TeacherConfig.reference(), HyperNetConfig.reference()),
    ],
    ids=["tiny", "reference"],
)
def test_fvcore_agrees_with_analytic(
    robot12: LocomotionTask, teacher_config: TeacherConfig, hypernet_config: HyperNetConfig
) -> None:
    robot, ctx = robot12.robot, robot12.context
    teacher = TeacherPolicy(teacher_config)
    hypernet = HyperNetPolicy(hypernet_config)
    t = teacher_cost(teacher.for_robot(robot, ctx), teacher_config)
    s = student_cost(hypernet.bake([robot], [ctx])[0])
    for cost in (t, s):
        assert cost["macs_check"]["agree"] is True
        assert cost["macs_check"]["rel_diff"] == 0.0
        assert cost["params"] == cost["params_analytic"]
    assert s["widths"] == [12 * 17, hypernet_config.hidden, hypernet_config.hidden, 22]
    h = hypernet_cost(hypernet, ctx)
    assert h["params"] == h["params_analytic"] and h["macs_per_bake"] > 0
    if teacher_config == TeacherConfig.reference():
        # DESIGN.md: about 1.66M actor parameters and 19.9M MACs at 12 limbs.
        assert t["params"] == 1_660_418 and t["macs"] == 19_955_712
        assert 13 < t["params"] / s["params"] < 14
        assert 160 < t["macs"] / s["macs"] < 163


def test_mismatching_analytic_count_is_flagged(
    robot12: LocomotionTask, bench_run: tuple[dict[str, Any], Path]
) -> None:
    teacher_config = TeacherConfig.tiny()
    export = TeacherPolicy(teacher_config).for_robot(robot12.robot, robot12.context)
    right = teacher_cost(export, teacher_config)
    wrong = teacher_cost(export, teacher_config, analytic_macs=int(right["macs"] * 1.05))
    assert wrong["macs"] == right["macs"]
    assert wrong["macs_check"]["agree"] is False
    assert wrong["macs_check"]["analytic"] == int(right["macs"] * 1.05)

    report = copy.deepcopy(bench_run[0])
    bad = report["robots"][0]
    bad["teacher"]["macs_check"] = wrong["macs_check"]
    report["summary"] = summarize(report["robots"])
    assert report["summary"]["macs_checks_agree"] is False
    assert report["summary"]["macs_disagreements"] == [f"{bad['name']} teacher"]
    md = markdown(report)
    assert "WARNING: fvcore and analytic MAC counts disagree" in md
    assert "**NO**" in md


def test_student_cost_rejects_odd_input_width() -> None:
    from hd_deploy.models import BakedMLP

    with pytest.raises(ValueError, match="multiple of 17"):
        student_cost(BakedMLP(20, 2, hidden=4, n_hidden_layers=0))
    assert np.isfinite(student_cost(BakedMLP(34, 2, hidden=4, n_hidden_layers=0))["macs"])
