"""Export a baked controller as plain C99: ``<robot>.h`` and ``<robot>.c``, no runtime.

For robot programs without an ML runtime (a ros2_control plugin, microcontroller
firmware). The header defines ``HD_OBS_DIM``, ``HD_CTRL_DIM``, the robot's identity and
timing, and documents the observation layout and actuator order; the source holds the
weights as ``static const float`` arrays and one function::

    void hd_act(const float *obs, float *ctrl);

which normalises the observation, runs the MLP (in float, vectorised) and maps the
clipped actions onto each actuator's ctrlrange, exactly as the ONNX file does. It
includes nothing, not even ``<math.h>``. Non-finite observations are the caller's business (the
Python control loop refuses them before they reach a controller); here they propagate.

When a C compiler is present the export is verified like the ONNX one: the source is
compiled into a shared library and compared with the torch module on random and real
observations to :data:`~hd_deploy.exporters.onnx.TOLERANCE`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hd_deploy.errors import HdError
from hd_deploy.models.baked import BakedMLP
from hd_deploy.morphology.nearness import Nearest
from hd_deploy.runtime.native import (  # noqa: F401  (re-exported: the C export's API)
    CFLAGS,
    INCLUDE_GUARD_PREFIX,
    CWeights,
    NativeError,
    SharedController,
    c_identifier,
    compile_shared,
    find_compiler,
    render_c,
)


class CExportError(HdError):
    """A C export failed (no compiler for verification, or a mismatch); one line."""


@dataclass(frozen=True)
class CExportResult:
    """One exported C controller.

    Attributes:
        robot: Robot name.
        header: The ``.h`` file.
        source: The ``.c`` file.
        max_abs_diff: Largest |C - torch| over the verification samples (NaN if skipped).
        samples: Observations compared (0 when verification was skipped).
        nearest: The robot's nearest among the checkpoint's training robots, by
            morphology context (None: the checkpoint records no contexts).
    """

    robot: str
    header: Path
    source: Path
    max_abs_diff: float
    samples: int
    nearest: Nearest | None = None

    def summary(self) -> str:
        check = (
            f"verified on {self.samples} obs, max |diff| {self.max_abs_diff:.1e}"
            if self.samples
            else "not verified"
        )
        return f"{self.robot}: C controller -> {self.header}, {self.source}, {check}"


def c_weights(mlp: BakedMLP) -> CWeights:
    """A baked MLP's arrays, as the ONNX graph holds them (``ctrl_half_range`` included)."""
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in mlp.state_dict().items()}
    layers = tuple(
        (state[f"layers.{i}.weight"], state[f"layers.{i}.bias"]) for i in range(len(mlp.layers))
    )
    half = (0.5 * (state["ctrl_high"] - state["ctrl_low"])).astype(np.float32)
    return CWeights(state["obs_mean"], state["obs_std"], float(mlp.obs_clip), layers,
                    state["ctrl_low"], half)  # fmt: skip


def export_c(
    mlp: BakedMLP,
    meta: Mapping[str, Any],
    out_dir: str | Path,
    *,
    verify_obs: np.ndarray | None = None,
    tolerance: float = 1e-5,
) -> CExportResult:
    """Write ``<robot>.h`` and ``<robot>.c``; verify against torch when given observations.

    Args:
        mlp: The robot's baked controller.
        meta: Its controller metadata.
        out_dir: Output folder (created).
        verify_obs: Observations ``(n, obs_dim)`` to compare C with torch on; None: skip.
        tolerance: Largest allowed |C - torch|.

    Raises:
        CExportError: Verification was asked for and failed (no file is left behind), or
            no C compiler is present for it.
    """
    name = str(meta["robot_name"])
    try:
        header_text, source_text = render_c(c_weights(mlp), meta)
    except NativeError as exc:
        raise CExportError(str(exc)) from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header, source = out / f"{name}.h", out / f"{name}.c"
    diff, samples = float("nan"), 0
    with tempfile.TemporaryDirectory(prefix="hd_c_") as tmp:
        h, c = Path(tmp) / header.name, Path(tmp) / source.name
        h.write_text(header_text, encoding="utf-8")
        c.write_text(source_text, encoding="utf-8")
        if verify_obs is not None:
            try:
                lib = compile_shared(h, c, Path(tmp) / "libcontroller.so")
            except NativeError as exc:
                raise CExportError(str(exc)) from exc
            ctl = SharedController(lib, int(meta["obs_dim"]), int(meta["n_actuators"]))
            obs = np.asarray(verify_obs, dtype=np.float32)
            got = np.stack([ctl.act(o) for o in obs])
            with torch.inference_mode():
                want = mlp(torch.from_numpy(obs)).numpy()
            diff, samples = float(np.max(np.abs(got - want))), len(obs)
            if not diff <= tolerance:
                raise CExportError(f"{name}: the C controller differs from torch by {diff:.2e}")
        os.replace(h, header)
        os.replace(c, source)
    return CExportResult(name, header, source, diff, samples)
