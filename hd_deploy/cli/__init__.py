"""Command-line entry points (thin typer commands over library functions)."""

from __future__ import annotations

import os
import sys


def _import_mujoco() -> None:
    """Import MuJoCo so that a ``MUJOCO_GL`` backend whose library is missing breaks only
    rendering, not every command.

    ``import mujoco`` loads the OpenGL backend named by ``MUJOCO_GL`` and fails outright when
    its library is absent (``MUJOCO_GL=osmesa`` without libOSMesa). Only rendering needs
    it: on such a failure MuJoCo is imported with GL disabled, the variable is put back as
    it was, and ``hd-run --video`` reports the missing library in one line when asked.
    """
    try:
        import mujoco  # noqa: F401
    except Exception:
        backend = os.environ.get("MUJOCO_GL")
        if not backend:
            raise
        for name in [m for m in sys.modules if m.split(".")[0] in ("mujoco", "OpenGL")]:
            del sys.modules[name]
        os.environ["MUJOCO_GL"] = "disable"
        try:
            import mujoco  # noqa: F401
        finally:
            os.environ["MUJOCO_GL"] = backend


_import_mujoco()
