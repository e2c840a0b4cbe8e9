"""Watching a controller: offscreen frames, and one-line errors when a piece is missing."""

from __future__ import annotations

import numpy as np
import pytest
from exporters.deploy_kit import Exported

from hd_deploy.runtime import load_controller, render
from hd_deploy.runtime.render import RenderError

FRAMES = 2
WIDTH, HEIGHT = 64, 48


def test_record_episode_renders_frames(student: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    frames: list[np.ndarray] = []
    try:
        n = render.record_episode(
            load_controller(student.path), on_frame=lambda f: frames.append(f.copy()),
            max_steps=FRAMES, width=WIDTH, height=HEIGHT,
        )  # fmt: skip
    except RenderError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")
    assert n == len(frames) == FRAMES
    assert frames[0].shape == (HEIGHT, WIDTH, 3) and frames[0].dtype == np.uint8
    assert frames[0].std() > 0  # not a blank image


def test_video_without_a_writer_says_how_to_get_one(
    student: Exported, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "mp4_writer_available", lambda: None)
    with pytest.raises(RenderError, match=r"pip install imageio\[ffmpeg\]") as info:
        render.record_video(load_controller(student.path), tmp_path / "v.mp4")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "v.mp4").exists()


def test_viewer_without_a_display(student: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RenderError, match="needs a display"):
        render.view(load_controller(student.path))
