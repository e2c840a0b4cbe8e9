"""hd-export and hd-run end to end with tiny checkpoints (typer's CliRunner)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from exporters.deploy_kit import OTHER_ROBOT_FILE, Exported, Kit, kit, student  # noqa: F401
from typer.testing import CliRunner

from hd_deploy.cli.deploy import export_app, run_app, tune_app
from hd_deploy.runtime.native import find_compiler

runner = CliRunner()
JSON_KEYS = {
    "return_mean", "return_std", "episode_length_mean", "episodes",
    "latency_us_p50", "latency_us_p99", "steps_per_s",
}  # fmt: skip


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# --- hd-export ------------------------------------------------------------------------


def test_export_writes_verified_controllers(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    result = runner.invoke(
        export_app, [str(kit.robot_file), "--checkpoint", str(kit.student_ckpt), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("gen-11: student 85->6") and "verified on" in lines[0]
    assert lines[1].startswith("gen-11: one episode (seed 0): return ")
    assert lines[-1] == f"exported 1 controller(s) to {out}"
    assert (out / "gen-11.onnx").is_file()
    args = [str(kit.robot_file), "--checkpoint", str(kit.student_ckpt), "--out", str(out)]
    quiet = runner.invoke(export_app, [*args, "--no-check"])
    assert quiet.exit_code == 0 and "one episode" not in quiet.output, quiet.output


@pytest.mark.parametrize("far", [False, True])
def test_export_places_the_robot_against_the_training_robots(
    kit: Kit,  # noqa: F811
    tmp_path: Path,
    far: bool,
) -> None:
    import shutil

    import numpy as np

    from hd_deploy.models import read_checkpoint_info
    from hd_deploy.models.checkpoint import write_contexts
    from hd_deploy.morphology.nearness import FAR, fingerprint_and_place

    ckpt = tmp_path / "ckpt"
    shutil.copytree(kit.student_ckpt, ckpt)
    info = read_checkpoint_info(ckpt)
    own = fingerprint_and_place(kit.robot_file, info.config.max_limbs)[1]
    # the checkpoint's training robot recorded at the exported robot's place, or 3 from it;
    # then a second one 1 from the first, so that the training robots have a spacing
    shifted = own.copy()
    shifted[0, 0] += 3.0 if far else 0.0
    other = shifted.copy()
    other[0, 1] += 1.0
    write_contexts(ckpt, np.stack([shifted]), robots=1, config=info.config)
    args = [str(kit.robot_file), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]
    lines = runner.invoke(export_app, [*args, "--no-check"]).output.strip().splitlines()
    assert lines[1] == f"gen-11: nearest training robot gen-11 at {3.0 if far else 0.0:.2f}"
    assert not lines[2].startswith("warning")  # one training robot: nothing to judge by
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    meta["robots"] = ["gen-11", "twin"]
    (ckpt / "checkpoint.json").write_text(json.dumps(meta))
    write_contexts(ckpt, np.stack([shifted, other]), robots=2,
                   config=read_checkpoint_info(ckpt).config)  # fmt: skip
    result = runner.invoke(export_app, [*args, "--no-check", "--format", "onnx", "--format", "c"]
                           if find_compiler() else [*args, "--no-check"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[1] == (
        f"gen-11: nearest training robot gen-11 at {3.0 if far else 0.0:.2f}; its 2 training "
        "robots lie 1.00 from their nearest at the median"
    )
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == far  # 3 is farther than FAR x 1 from both
    assert FAR < 3.0
    if far:
        assert warnings[0].startswith("warning: gen-11 is unlike every robot this model trained on")
    assert sum("nearest training robot" in line for line in lines) == 1  # once, for both files
    # the file carries it: hd-run repeats the warning, its --json the record
    report = tmp_path / "run.json"
    ran = runner.invoke(run_app, [str(tmp_path / "o" / "gen-11.onnx"), "--episodes", "1",
                                  "--json", str(report)])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert ("warning: gen-11 lies 3.00 from the nearest robot" in ran.output) == far
    near = json.loads(report.read_text())["nearest_training"]
    assert near["robot"] == "gen-11" and near["far"] == far
    assert near["spacing"] == pytest.approx(1.0, abs=1e-2)  # stored in float16


@pytest.mark.parametrize(
    ("returns", "length", "unstable", "warning"),
    [
        (500.0, 1000, 0, None),
        (30.0, 1000, 0, "gen-11 barely moves (under 0.1 m/s)"),
        (40.0, 54, 0, "gen-11 fell after 54 of 1000 steps"),
        (1.0, 12, 1, "the simulation diverged after 12 of 1000 steps"),
    ],
)
def test_export_check_warns_when_the_robot_falls_or_stands_still(
    returns: float, length: int, unstable: int, warning: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from hd_deploy.cli.deploy import _check_episode
    from hd_deploy.runtime import RunReport

    report = RunReport("gen-11", (returns,), (length,), 10.0, 20.0, 5000.0, 0, unstable)
    monkeypatch.setattr("hd_deploy.runtime.load_controller", lambda *a, **k: None)
    monkeypatch.setattr("hd_deploy.runtime.run_episodes", lambda *a, **k: report)
    lines = _check_episode(Path("gen-11.onnx"), "gen-11").splitlines()
    assert lines[0] == (f"gen-11: one episode (seed 0): return {returns:.1f} over {length} "
                        f"steps, mean forward speed {returns / length:.2f} m/s")  # fmt: skip
    if warning is None:
        assert len(lines) == 1
    else:
        assert len(lines) == 2 and lines[1].startswith(f"warning: {warning} under this")


def test_export_errors_are_one_line(kit: Kit, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    line = _one_error_line(runner.invoke(export_app, [str(tmp_path / "nope.xml")]))
    assert "no such robot file" in line
    monkeypatch.setattr("hd_deploy.exporters.robots.SHIPPED_CHECKPOINTS", tmp_path / "none")
    line = _one_error_line(runner.invoke(export_app, [str(kit.robot_file)]))
    assert "no shipped student checkpoint at" in line and line.endswith("pass --checkpoint")
    line = _one_error_line(
        runner.invoke(
            export_app, [str(kit.robot_file), "--teacher", "--checkpoint", str(kit.student_ckpt)]
        )
    )
    assert "expected a teacher" in line
    assert not (tmp_path / "controllers").exists()  # the working directory (conftest)


# --- hd-tune --------------------------------------------------------------------------


@pytest.fixture
def tiny_tune(monkeypatch: pytest.MonkeyPatch) -> None:
    """hd-tune with TuneConfig.tiny()'s batch (32 steps an iteration, 1 evaluation episode)."""
    import dataclasses

    from hd_deploy.train import config

    tiny = config.TuneConfig.tiny()
    monkeypatch.setattr(config, "TuneConfig", lambda **kw: dataclasses.replace(tiny, **kw))


@pytest.mark.usefixtures("tiny_tune")
def test_tune_exports_a_verified_controller_that_says_so(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    from hd_deploy.runtime import read_metadata

    out = tmp_path / "out"
    args = [str(kit.robot_file), "--checkpoint", str(kit.student_ckpt), "--out", str(out)]
    result = runner.invoke(tune_app, [*args, "--steps", "64"])  # two iterations of 32
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    first = lines[0]
    assert first.startswith("gen-11: tuned 64 steps in ") and "(deterministic, 1 episode)" in first
    assert lines[1].startswith("gen-11: student 85->6") and "verified on" in lines[1]
    assert lines[-1] == f"tuned and exported 1 controller(s) to {out}"
    record = json.loads((out / "gen-11.tune.json").read_text())
    assert record["steps"] == 64 and len(record["returns_after"]) == 1
    assert (out / "gen-11.tune.png").stat().st_size > 0
    tuned = read_metadata(out / "gen-11.onnx")["tuned"]
    assert tuned["steps"] == 64 and tuned["kept"] in ("tuned", "bake")
    ran = runner.invoke(run_app, [str(out / "gen-11.onnx"), "--episodes", "1"])
    assert ran.exit_code == 0 and "tuned on this robot (hd-tune, 64 steps)" in ran.output


@pytest.mark.usefixtures("tiny_tune")
def test_a_stop_request_ends_tuning_after_the_robot_it_is_on(
    kit: Kit,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import signal

    from hd_deploy.train import tune as tune_module

    real = tune_module.tune_baked

    def interrupted(*args, **kwargs):  # Ctrl-C while the first robot tunes
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(tune_module, "tune_baked", interrupted)
    out = tmp_path / "out"
    robots = [str(kit.robot_file), str(OTHER_ROBOT_FILE)]
    args = [*robots, "--checkpoint", str(kit.student_ckpt), "--out", str(out), "--steps", "1"]
    result = runner.invoke(tune_app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        "stopped by a signal after 1 robot(s); rerun for the rest"
    )
    assert (out / "gen-11.onnx").is_file() and not (out / "gen-1.onnx").exists()


def test_tune_errors_are_one_line(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    line = _one_error_line(runner.invoke(tune_app, [str(tmp_path / "nope.xml")]))
    assert "no such robot file" in line
    line = _one_error_line(
        runner.invoke(tune_app, [str(kit.robot_file), "--checkpoint", str(kit.teacher_ckpt)])
    )
    assert "expected a student" in line
    bad = runner.invoke(tune_app, [str(kit.robot_file), "--steps", "0"])
    assert bad.exit_code == 2 and "--steps" in bad.output
    assert not (tmp_path / "controllers").exists()


# --- hd-run ---------------------------------------------------------------------------


NEEDS_CC = pytest.mark.skipif(not find_compiler(), reason="no C compiler")


@pytest.mark.parametrize("backend", ["onnx", "numpy", pytest.param("c", marks=NEEDS_CC)])
def test_run_prints_and_writes_json(student: Exported, tmp_path: Path, backend: str) -> None:  # noqa: F811
    report = tmp_path / "report.json"
    args = [str(student.path), "--episodes", "2", "--seed", "1", "--backend", backend]
    result = runner.invoke(run_app, [*args, "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert f"({'student'}, {backend} backend)" in result.output
    assert "return" in result.output and "p50" in result.output and "steps/s" in result.output
    doc = json.loads(report.read_text())
    assert JSON_KEYS <= set(doc) and doc["episodes"] == 2 and doc["backend"] == backend


def test_run_errors_are_one_line(student: Exported, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert "not a valid ONNX file" in _one_error_line(runner.invoke(run_app, [str(bad)]))
    line = _one_error_line(
        runner.invoke(run_app, [str(student.path), "--robot", str(OTHER_ROBOT_FILE)])
    )
    assert "does not match" in line and "gen-1" in line and "gen-11" in line
    assert "--allow-mismatch" in line  # the flag the user can type
    monkeypatch.setattr("hd_deploy.runtime.render.mp4_writer_available", lambda: None)
    line = _one_error_line(
        runner.invoke(run_app, [str(student.path), "--video", str(tmp_path / "v.mp4")])
    )
    assert "imageio" in line and "ffmpeg" in line


def test_hd_run_does_not_import_torch(student: Exported) -> None:  # noqa: F811
    script = textwrap.dedent(
        f"""
        import sys
        from typer.testing import CliRunner
        from hd_deploy.cli.deploy import run_app

        result = CliRunner().invoke(run_app, [{str(student.path)!r}, "--episodes", "1"])
        assert result.exit_code == 0, result.output
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
