"""The README's embedding example runs as pasted, after the commands of its section."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Embedding a controller in your own MuJoCo program"


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def _section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end > 0 else None]


def test_the_embedding_example_runs_as_pasted(tmp_path: Path) -> None:
    section = _section()
    (commands,) = _blocks(section, "bash")
    (example,) = _blocks(section, "python")
    (tmp_path / "hd_deploy").symlink_to(REPO / "hd_deploy")  # "from the repository root"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bin_dir = Path(sys.executable).parent
    for line in commands.strip().splitlines():
        argv = shlex.split(line)
        exe = bin_dir / argv[0]
        if not exe.exists():
            pytest.skip(f"{argv[0]} is not installed next to this Python")
        done = subprocess.run([str(exe), *argv[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    run = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "p50" in run.stdout and "physics" in run.stdout
