"""hd-bench with the shipped checkpoints says which robots they were trained on, by
fingerprint: a bundled robot is unseen (even under a training robot's name), a UNIMAL
training robot is seen (even under another name)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hd_deploy.bench.run import BUNDLED_SEEN_SET, BUNDLED_SET, robot_sources
from hd_deploy.cli.bench import bench_app
from hd_deploy.models import read_checkpoint_info
from hd_deploy.morphology.robot import robot_fingerprint
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.train.shipped import shipped
from tests.conftest import unimal_robots

SIZES = ["--no-returns", "--calls", "5", "--steps", "5"]  # labels only: the least timing


def _bench(sets: list[Path], out: Path) -> tuple[dict[str, Any], str]:
    args = [a for s in sets for a in ("--robots", str(s))] + ["--out", str(out), *SIZES]
    result = CliRunner().invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), result.output


def _terminal_labels(output: str) -> tuple[list[str], list[str]]:
    """The labels in the terminal tables: per robot (after "7L 6A") and per robot set."""
    robots = re.findall(r"\d+L \d+A (.+?)\s+student\b", output)
    sets = re.findall(r"\s1  (seen in training|unseen)\s*$", output, flags=re.M)
    return robots, sets


def _training_robot() -> Path:
    """A UNIMAL training robot both shipped checkpoints name (skips without ../shared)."""
    names = set(read_checkpoint_info(shipped("teacher")).robots)
    names &= set(read_checkpoint_info(shipped("student")).robots)
    return next(f for f in unimal_robots("train") if f.stem in names)


def test_bundled_robot_is_unseen_even_under_a_training_robots_name(tmp_path: Path) -> None:
    bundled = bundled_robots()[0]
    trained_name = read_checkpoint_info(shipped("teacher")).robots[0]
    impostor = tmp_path / f"{trained_name}.xml"  # a name the checkpoints list, another body
    shutil.copy(bundled, impostor)
    report, output = _bench([bundled, impostor], tmp_path / "out")
    for r in report["robots"]:
        assert r["seen_in_training"] == {"teacher": False, "student": False}, r["name"]
        near = r["nearest_training"]["student"]  # the shipped student records its robots
        assert near["far"] and near["distance"] > near["spacing"] > 0, near
    assert report["robots"][1]["name"] == trained_name
    assert [x["seen_in_training"] for x in report["summary"]["sets"]] == [False, False]
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"| {bundled} | 1 | unseen |" in md and f"| {impostor} | 1 | unseen |" in md
    assert _terminal_labels(output) == (["unseen", "unseen"], ["unseen", "unseen"])


def test_training_robot_is_seen_under_any_file_name(tmp_path: Path) -> None:
    robot = _training_robot()
    renamed = tmp_path / "renamed" / "my-robot.xml"  # same body, a name no checkpoint lists
    renamed.parent.mkdir()
    shutil.copy(robot, renamed)
    report, output = _bench([robot, renamed.parent], tmp_path / "out")
    assert [r["name"] for r in report["robots"]] == [robot.stem, "my-robot"]
    for r in report["robots"]:
        assert r["seen_in_training"] == {"teacher": True, "student": True}, r["name"]
        for kind in ("teacher", "student"):  # its own place among the training robots
            near = r["nearest_training"][kind]
            assert near["robot"] == robot.stem and near["distance"] < 1e-2 and not near["far"]
    assert [x["seen_in_training"] for x in report["summary"]["sets"]] == [True, True]
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"{renamed.parent}: median 0.00, 0 of 1 far" in md
    assert f"| {renamed.parent} | 1 | seen in training |" in md
    assert _terminal_labels(output) == (["seen", "seen"], ["seen in training"] * 2)


def test_the_default_run_has_a_seen_and_an_unseen_bundled_set() -> None:
    """hd-bench with no --robots: the bundled robots (neither model trained on them) and the
    bundled seen robots, which both shipped checkpoints name by fingerprint (the teacher
    trained on their generated family beside the UNIMAL robots, the student was distilled
    on them)."""
    sources = robot_sources(None)
    sets = {s.set for s in sources}
    assert sets == {BUNDLED_SET, BUNDLED_SEEN_SET}
    teacher, student = (read_checkpoint_info(shipped(kind)) for kind in ("teacher", "student"))
    for source in sources:
        fp = robot_fingerprint(source.file)
        seen = source.set == BUNDLED_SEEN_SET
        assert teacher.trained_on(fp) is seen and student.trained_on(fp) is seen, source.file
