"""Every command: the toolkit's own errors are one line and exit 2; a bug keeps its traceback."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hd_deploy.cli.bench import bench_app
from hd_deploy.cli.deploy import export_app, run_app, tune_app
from hd_deploy.cli.inspect import generate_app, inspect_app
from hd_deploy.cli.train import clone_app, distill_app, eval_app, experts_app, train_app
from hd_deploy.errors import ConfigError, HdWarning
from hd_deploy.morphology.sources import bundled_robots

runner = CliRunner()
ROBOT = str(bundled_robots()[0])

# (command, the library function it calls, arguments); the function is replaced in each test
COMMANDS = {
    "hd-inspect": (inspect_app, "hd_deploy.morphology.inspect.describe_robot", [ROBOT]),
    "hd-generate": (generate_app, "hd_deploy.morphology.generator.write_robots", ["gen"]),
    "hd-train": (train_app, "hd_deploy.train.ppo.train_teacher", [ROBOT, "--tiny"]),
    "hd-experts": (experts_app, "hd_deploy.train.experts.train_experts", [ROBOT, "--tiny"]),
    "hd-clone": (clone_app, "hd_deploy.train.clone.clone_teacher", ["experts", "--tiny"]),
    "hd-distill": (distill_app, "hd_deploy.train.distill.distill_student", [ROBOT, "--tiny"]),
    "hd-eval": (eval_app, "hd_deploy.train.shipped.resolve_policy", ["teacher"]),
    "hd-export": (export_app, "hd_deploy.exporters.export_robots", [ROBOT]),
    "hd-tune": (tune_app, "hd_deploy.exporters.export_robots", [ROBOT, "--out", "tuned"]),
    "hd-run": (run_app, "hd_deploy.runtime.load_controller", ["robot.onnx"]),
    "hd-bench": (bench_app, "hd_deploy.bench.run_benchmark", ["--no-returns"]),
}


def _raising(exc: Exception):
    def fn(*args, **kwargs):
        raise exc

    return fn


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_plain_value_error_is_a_bug_with_its_traceback(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, target, args = COMMANDS[name]
    monkeypatch.setattr(target, _raising(ValueError("an internal invariant broke")))
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ValueError), (result.exit_code, result.output)
    assert str(result.exception) == "an internal invariant broke"
    assert result.exit_code == 1 and "error:" not in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_toolkit_error_is_one_line(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app, target, args = COMMANDS[name]
    monkeypatch.setattr(target, _raising(ConfigError("count must be >= 1, got 0")))
    line = _one_error_line(runner.invoke(app, args))
    assert line == "error: count must be >= 1, got 0"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_ctrl_c_is_one_line_and_exit_130(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app, target, args = COMMANDS[name]
    monkeypatch.setattr(target, _raising(KeyboardInterrupt()))
    result = runner.invoke(app, args)
    assert result.exit_code == 130, result.output
    assert result.output.strip() == "interrupted"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_toolkit_warning_is_one_line_and_the_work_goes_on(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, target, args = COMMANDS[name]

    def warns_then_fails(*args, **kwargs):
        warnings.warn("bf16 is slow here", HdWarning, stacklevel=2)
        warnings.warn("someone else's", UserWarning, stacklevel=2)
        raise ConfigError("then a mistake")  # reached: the warning did not stop the work

    monkeypatch.setattr(target, warns_then_fails)
    # another warning goes to the hook that was there (here pytest's recorder, which is
    # how logging.captureWarnings or a host program's hook would see it)
    with pytest.warns(UserWarning, match="someone else's") as record:
        result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert not [w for w in record if issubclass(w.category, HdWarning)]  # printed instead
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert lines == ["warning: bf16 is slow here", "error: then a mistake"]


def test_bad_settings_are_toolkit_errors_and_one_line(tmp_path: Path) -> None:
    from hd_deploy.bench.latency import TimingPlan
    from hd_deploy.morphology.generator import write_robots
    from hd_deploy.train.bc import resolve_device
    from hd_deploy.train.config import DistillConfig

    with pytest.raises(ConfigError, match="count must be >= 0, got -1"):
        write_robots(tmp_path / "gen", -1)
    line = _one_error_line(runner.invoke(generate_app, [str(tmp_path / "gen"), "--count", "-1"]))
    assert line == "error: count must be >= 0, got -1"

    with pytest.raises(ConfigError, match="lr must be > 0"):
        DistillConfig(lr=0.0)
    args = [ROBOT, "--tiny", "--lr", "0", "--out", str(tmp_path / "d")]
    assert "lr must be > 0, got 0.0" in _one_error_line(runner.invoke(distill_app, args))

    with pytest.raises(ConfigError, match="calls must be >= 1"):
        TimingPlan.for_calls(0)
    line = _one_error_line(runner.invoke(bench_app, ["--calls", "0", "--out", str(tmp_path)]))
    assert line == "error: calls must be >= 1, got 0"

    with pytest.raises(ConfigError, match="expected auto, cpu or cuda"):
        resolve_device("gpu")
    args = [ROBOT, "--tiny", "--device", "gpu", "--out", str(tmp_path / "t")]
    line = _one_error_line(runner.invoke(train_app, args))
    assert line == "error: device 'gpu': expected auto, cpu or cuda[:N]"
    args = [ROBOT, "--tiny", "--robot-sampling", "greedy", "--out", str(tmp_path / "s")]
    line = _one_error_line(runner.invoke(train_app, args))
    assert line == "error: robot_sampling must be one of balanced, uniform, got 'greedy'"
    args = [ROBOT, "--tiny", "--context-noise", "-0.5", "--out", str(tmp_path / "n")]
    line = _one_error_line(runner.invoke(train_app, args))
    assert line == "error: context_noise must be >= 0, got -0.5"
    assert not any((tmp_path / name).exists() for name in ("d", "t", "s", "n"))


def test_no_command_is_left_out() -> None:
    from hd_deploy.cli import bench, deploy, inspect, train

    apps = {
        id(value)
        for module in (bench, deploy, inspect, train)
        for value in vars(module).values()
        if isinstance(value, typer.Typer)
    }
    assert apps == {id(app) for app, _, _ in COMMANDS.values()}
