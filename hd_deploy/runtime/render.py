"""Watch a controller: an MP4 through ``mujoco.Renderer`` or MuJoCo's passive viewer.

Nothing here is needed to run a controller; it needs an OpenGL backend (EGL or OSMesa
offscreen, a display for the viewer) and, for MP4, imageio with its ffmpeg plugin or an
``ffmpeg`` binary. When one is missing the error says in one line how to get it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from hd_deploy.envs.task import LocomotionTask
from hd_deploy.runtime.controllers import Controller
from hd_deploy.runtime.episodes import run_episodes, task_for

GL_HINT = (
    "install an offscreen OpenGL backend, e.g. `apt-get install libegl1` and set "
    "MUJOCO_GL=egl, or `apt-get install libosmesa6` and set MUJOCO_GL=osmesa"
)
MP4_HINT = "`pip install imageio[ffmpeg]` or install an ffmpeg binary (`apt-get install ffmpeg`)"


class RenderError(RuntimeError):
    """Rendering, video writing or the viewer is not available here (one-line message)."""


class _Stop(Exception):
    """The viewer window was closed."""


def mp4_writer_available() -> str | None:
    """Which MP4 writer can be used: ``"imageio"``, ``"ffmpeg"`` or None."""
    if importlib.util.find_spec("imageio") and importlib.util.find_spec("imageio_ffmpeg"):
        return "imageio"
    if shutil.which("ffmpeg"):
        return "ffmpeg"
    return None


def require_mp4_writer() -> str:
    """The MP4 writer to use (``"imageio"`` or ``"ffmpeg"``).

    Raises:
        RenderError: Neither is available.
    """
    kind = mp4_writer_available()
    if kind is None:
        raise RenderError(f"writing MP4 needs imageio-ffmpeg or ffmpeg: {MP4_HINT}")
    return kind


def require_display() -> None:
    """Raises :class:`RenderError` when no window can be opened (Linux without a display)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise RenderError("--viewer needs a display (DISPLAY is not set); use --video instead")


def make_renderer(model: mujoco.MjModel, *, width: int, height: int) -> mujoco.Renderer:
    """An offscreen renderer on the backend named by ``MUJOCO_GL``.

    Raises:
        RenderError: No OpenGL backend could create a context.
    """
    width = min(width, int(model.vis.global_.offwidth))
    height = min(height, int(model.vis.global_.offheight))
    try:
        _sync_gl_backend()
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as exc:  # GL backends fail with ImportError, RuntimeError, AttributeError
        backend = os.environ.get("MUJOCO_GL", "glfw")
        raise RenderError(
            f"no OpenGL context for rendering (MUJOCO_GL={backend}: {_first_line(exc)}); " + GL_HINT
        ) from exc


def record_episode(
    controller: Controller,
    robot: str | Path | LocomotionTask | None = None,
    *,
    on_frame: Callable[[np.ndarray], None],
    seed: int = 0,
    max_steps: int | None = None,
    width: int = 640,
    height: int = 480,
    allow_mismatch: bool = False,
) -> int:
    """Render one episode, one frame per control step, the camera following the torso.

    Args:
        controller: The controller.
        robot: MJCF path or text, a task, or None for the robot stored in the controller.
        on_frame: Receives each RGB frame, shape ``(height, width, 3)`` uint8.
        seed: Seed of the reset noise.
        max_steps: Stop after this many frames (None: the whole episode).
        width: Image width (capped by the model's offscreen buffer).
        height: Image height (capped likewise).
        allow_mismatch: See :class:`~hd_deploy.runtime.ControlLoop`.

    Returns:
        The number of frames rendered.

    Raises:
        RenderError: No OpenGL backend.
    """
    task = task_for(controller, robot)
    renderer = make_renderer(task.model, width=width, height=height)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.distance, cam.azimuth, cam.elevation = 3.0, 90.0, -20.0
    count = 0

    def grab(t: LocomotionTask) -> None:
        nonlocal count
        if max_steps is not None and count >= max_steps:
            raise _Stop
        cam.lookat[:] = t.data.xpos[t.robot.root_body]
        renderer.update_scene(t.data, camera=cam)
        on_frame(renderer.render())
        count += 1

    try:
        run_episodes(
            controller, task, episodes=1, seed=seed, on_step=grab, allow_mismatch=allow_mismatch
        )
    except _Stop:
        pass
    finally:
        renderer.close()
    return count


class Mp4Writer:
    """Stream RGB frames into an H.264 MP4 with imageio-ffmpeg or the ffmpeg binary.

    Args:
        path: Output file.
        fps: Frames per second.

    Raises:
        RenderError: Neither writer is available.
    """

    def __init__(self, path: str | Path, *, fps: float) -> None:
        kind = require_mp4_writer()
        self.path, self.fps, self.kind = Path(path), float(fps), kind
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: Any = None
        self._proc: subprocess.Popen | None = None

    def append(self, frame: np.ndarray) -> None:
        """Add one frame, shape ``(height, width, 3)`` uint8."""
        if self.kind == "imageio":
            if self._writer is None:
                import imageio.v2 as imageio

                self._writer = imageio.get_writer(str(self.path), fps=self.fps, codec="libx264")
            self._writer.append_data(frame)
            return
        if self._proc is None:
            h, w = frame.shape[:2]
            cmd = [
                "ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                "-s", f"{w}x{h}", "-r", f"{self.fps:g}", "-i", "-", "-pix_fmt", "yuv420p",
                "-vcodec", "libx264", str(self.path),
            ]  # fmt: skip
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proc.stdin is not None
        self._proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())

    def close(self) -> None:
        """Finish the file.

        Raises:
            RenderError: The encoder failed.
        """
        if self._writer is not None:
            self._writer.close()
        if self._proc is not None:
            _, err = self._proc.communicate()
            if self._proc.returncode != 0:
                raise RenderError(f"ffmpeg failed: {_first_line(RuntimeError(err.decode()))}")


def record_video(
    controller: Controller,
    path: str | Path,
    robot: str | Path | LocomotionTask | None = None,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    allow_mismatch: bool = False,
) -> Path:
    """Render one episode to an MP4 at the control rate.

    Raises:
        RenderError: No MP4 writer or no OpenGL backend.
    """
    meta = controller.metadata
    writer = Mp4Writer(path, fps=1.0 / (meta["sim_timestep"] * meta["frame_skip"]))
    try:
        record_episode(
            controller,
            robot,
            on_frame=writer.append,
            seed=seed,
            max_steps=max_steps,
            allow_mismatch=allow_mismatch,
        )
    finally:
        writer.close()
    return writer.path


def view(
    controller: Controller,
    robot: str | Path | LocomotionTask | None = None,
    *,
    episodes: int = 1,
    seed: int = 0,
    allow_mismatch: bool = False,
) -> None:
    """Show episodes in MuJoCo's passive viewer at real time; returns when closed or done.

    Raises:
        RenderError: There is no display to open a window on.
    """
    require_display()
    import mujoco.viewer

    task = task_for(controller, robot)
    dt = task.config.control_dt
    try:
        handle = mujoco.viewer.launch_passive(task.model, task.data)
    except Exception as exc:  # GLFW raises its own errors without a usable display
        raise RenderError(f"cannot open the viewer: {_first_line(exc)}") from exc

    def sync(t: LocomotionTask) -> None:
        if not handle.is_running():
            raise _Stop
        handle.sync()
        time.sleep(dt)

    try:
        run_episodes(
            controller,
            task,
            episodes=episodes,
            seed=seed,
            on_step=sync,
            allow_mismatch=allow_mismatch,
        )
    except _Stop:
        pass
    finally:
        handle.close()


def _sync_gl_backend() -> None:
    """Make MuJoCo's GL context class follow ``MUJOCO_GL`` as it is now.

    MuJoCo picks the backend when ``mujoco`` is first imported; a CLI that sets
    ``MUJOCO_GL`` later (never at import time) re-reads it here.
    """
    from mujoco.rendering.classic import gl_context

    wanted = os.environ.get("MUJOCO_GL", "").lower().strip()
    if getattr(gl_context, "_MUJOCO_GL", wanted) != wanted:
        importlib.reload(gl_context)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
