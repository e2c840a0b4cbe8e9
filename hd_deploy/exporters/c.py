"""Export a baked controller as plain C99: ``<robot>.h`` and ``<robot>.c``, no runtime.

For robot programs without an ML runtime (a ros2_control plugin, microcontroller
firmware). The header defines ``HD_OBS_DIM``, ``HD_CTRL_DIM``, the robot's identity and
timing, and documents the observation layout and actuator order; the source holds the
weights as ``static const float`` arrays and one function::

    void hd_act(const float *obs, float *ctrl);

which normalises the observation, runs the MLP (accumulating in double) and maps the
clipped actions onto each actuator's ctrlrange, exactly as the ONNX file does. It
includes nothing, not even ``<math.h>``. Non-finite observations are the caller's business (the
Python control loop refuses them before they reach a controller); here they propagate.

When a C compiler is present the export is verified like the ONNX one: the source is
compiled into a shared library and compared with the torch module on random and real
observations to :data:`~hd_deploy.exporters.onnx.TOLERANCE`.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hd_deploy.errors import HdError
from hd_deploy.models.baked import BakedMLP

INCLUDE_GUARD_PREFIX = "HD_CONTROLLER_"


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
    """

    robot: str
    header: Path
    source: Path
    max_abs_diff: float
    samples: int

    def summary(self) -> str:
        check = (
            f"verified on {self.samples} obs, max |diff| {self.max_abs_diff:.1e}"
            if self.samples
            else "not verified"
        )
        return f"{self.robot}: C controller -> {self.header}, {self.source}, {check}"


def c_identifier(name: str) -> str:
    """A C identifier made of a robot name (``floor-1409-0`` -> ``floor_1409_0``)."""
    ident = re.sub(r"\W", "_", name)
    return ident if ident and not ident[0].isdigit() else "_" + ident


def render_c(mlp: BakedMLP, meta: Mapping[str, Any]) -> tuple[str, str]:
    """Header and source text of a baked MLP.

    Args:
        mlp: The robot's baked controller.
        meta: The controller metadata (:func:`~hd_deploy.runtime.metadata.build_metadata`).

    Returns:
        ``(header, source)``; the source includes the header as ``"<robot>.h"``.
    """
    name = str(meta["robot_name"])
    guard = INCLUDE_GUARD_PREFIX + c_identifier(name).upper().lstrip("_") + "_H"
    layout = meta["observation_layout"]
    limbs = ", ".join(layout["limb_names"])
    features = ", ".join(layout["feature_names"])
    actuators = "\n".join(f" *   {i:2d}  {a}" for i, a in enumerate(meta["actuator_names"]))
    kind = meta["policy_kind"]
    header = f"""/* hd_deploy {kind} controller for {name} (C99, generated; do not edit).
 *
 * Call hd_act() once per control step (every HD_FRAME_SKIP physics steps of
 * HD_SIM_TIMESTEP seconds) with the robot's observation; it writes the controls.
 * Build with -O3 (it vectorises the layers' inner loops; add -march for your CPU).
 *
 * Observation: HD_OBS_DIM floats, {layout["order"]}
 *   limbs ({layout["n_limbs"]}): {limbs}
 *   features ({layout["features_per_limb"]} per limb): {features}
 * Controls: HD_CTRL_DIM floats in actuator order, inside each ctrlrange:
{actuators}
 * Source checkpoint: {meta["source_checkpoint"]}; toolkit {meta["toolkit_version"]}.
 */
#ifndef {guard}
#define {guard}

#define HD_ROBOT_NAME "{name}"
#define HD_ROBOT_FINGERPRINT "{meta["robot_fingerprint"]}"
#define HD_OBS_DIM {int(meta["obs_dim"])}
#define HD_CTRL_DIM {int(meta["n_actuators"])}
#define HD_SIM_TIMESTEP {float(meta["sim_timestep"])!r}
#define HD_FRAME_SKIP {int(meta["frame_skip"])}
#define HD_CONTROL_TIMESTEP {float(meta["control_timestep"])!r}

#ifdef __cplusplus
extern "C" {{
#endif

/* obs: HD_OBS_DIM floats in; ctrl: HD_CTRL_DIM floats out. Reentrant, no allocation. */
void hd_act(const float *obs, float *ctrl);

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in mlp.state_dict().items()}
    arrays = [
        _array("obs_mean", state["obs_mean"]),
        _array("obs_std", state["obs_std"]),
        _array("ctrl_low", state["ctrl_low"]),
        _array("ctrl_high", state["ctrl_high"]),
    ]
    n_layers = len(mlp.layers)
    for i in range(n_layers):
        # stored input-major (n_in x n_out): dense() runs over outputs in the inner loop
        arrays.append(_array(f"w{i}", state[f"layers.{i}.weight"].T))
        arrays.append(_array(f"b{i}", state[f"layers.{i}.bias"]))
    widths = mlp.widths
    hidden = max(widths[1:-1])
    calls = []
    src, dst = "x", "h0"
    for i in range(n_layers):
        last = i == n_layers - 1
        dst = "a" if last else f"h{i % 2}"
        calls.append(
            f"    dense(w{i}, b{i}, {src}, {dst}, {widths[i]}, {widths[i + 1]}, {int(not last)});"
        )
        src = dst
    body = "\n".join(calls)
    source = f"""/* hd_deploy controller for {name}: weights and hd_act(); see {name}.h. */
#include "{name}.h"

#define HD_OBS_CLIP {float(mlp.obs_clip)!r}f
#define HD_HIDDEN {hidden}
#define HD_WIDEST {max(widths[1:])}

{chr(10).join(arrays)}

/* y = W x + b, W stored input-major (n_in x n_out), accumulated in double; ReLU when
 * relu != 0. The inner loop runs over independent outputs (it vectorises, no reduction),
 * and each output still sums b, then the inputs in order: the order of the row-major dot. */
static void dense(const float *w, const float *b, const float *x, float *y, int n_in,
                  int n_out, int relu) {{
    double acc[HD_WIDEST];
    for (int o = 0; o < n_out; ++o) {{
        acc[o] = b[o];
    }}
    for (int i = 0; i < n_in; ++i) {{
        const double xi = x[i];
        const float *col = w + (long)i * n_out;
        for (int o = 0; o < n_out; ++o) {{
            acc[o] += (double)col[o] * xi;
        }}
    }}
    for (int o = 0; o < n_out; ++o) {{
        float v = (float)acc[o];
        y[o] = (relu && !(v > 0.0f)) ? 0.0f : v;
    }}
}}

static float clampf(float v, float lo, float hi) {{
    return v < lo ? lo : (v > hi ? hi : v);
}}

void hd_act(const float *obs, float *ctrl) {{
    float x[HD_OBS_DIM], h0[HD_HIDDEN], h1[HD_HIDDEN], a[HD_CTRL_DIM];
    (void)h1;
    for (int i = 0; i < HD_OBS_DIM; ++i) {{
        x[i] = clampf((obs[i] - obs_mean[i]) / obs_std[i], -HD_OBS_CLIP, HD_OBS_CLIP);
    }}
{body}
    for (int o = 0; o < HD_CTRL_DIM; ++o) {{
        float u = clampf(a[o], -1.0f, 1.0f);
        ctrl[o] = ctrl_low[o] + (u + 1.0f) * 0.5f * (ctrl_high[o] - ctrl_low[o]);
    }}
}}
"""
    return header, source


def _array(name: str, values: np.ndarray) -> str:
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    items = [_float(v) for v in flat]
    lines = [", ".join(items[i : i + 6]) for i in range(0, len(items), 6)]
    body = ",\n    ".join(lines)
    shape = "x".join(str(s) for s in values.shape)
    return f"/* {shape} */\nstatic const float {name}[{flat.size}] = {{\n    {body}\n}};"


def _float(v: np.float32) -> str:
    """Shortest decimal that a C compiler reads back as the same float32 (``1.5e-01f``)."""
    if not np.isfinite(v):
        raise CExportError(f"non-finite weight {v!r}")
    return np.format_float_scientific(v, unique=True, trim="-") + "f"


# --- compile and verify --------------------------------------------------------------


def find_compiler() -> str | None:
    """The system C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``), or None."""
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


#: Flags for the toolkit's own builds (verification, timing). -O3 vectorises dense()'s
#: inner loop (-O2 in GCC 12 does not); -march is left to the user, who knows the target.
CFLAGS = ("-std=c99", "-O3", "-Wall", "-Werror", "-pedantic")

#: Linked beside the controller when timing it inside C: ``hd_bench_ns(obs, ctrl, n)``,
#: the mean wall time of ``n`` back-to-back ``hd_act`` calls, nanoseconds.
TIMING_SOURCE = """#define _POSIX_C_SOURCE 199309L
#include <time.h>
void hd_act(const float *obs, float *ctrl);
double hd_bench_ns(const float *obs, float *ctrl, long n) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long k = 0; k < n; ++k) hd_act(obs, ctrl);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
}
"""


def compile_shared(
    header: Path, source: Path, out: Path, *, compiler: str | None = None, timing: bool = False
) -> Path:
    """Compile the controller into a shared library (for tests, verification, timing).

    Args:
        header: The controller's header.
        source: Its source.
        out: The library to write.
        compiler: C compiler (default: :func:`find_compiler`).
        timing: Link :data:`TIMING_SOURCE` in, for :meth:`SharedController.inside_us`.

    Raises:
        CExportError: No compiler, or it failed (its first error line is in the message).
    """
    cc = compiler or find_compiler()
    if cc is None:
        raise CExportError("no C compiler found (set CC or install gcc/clang)")
    sources = [str(source)]
    if timing:
        harness = out.with_name(out.stem + "_timing.c")
        harness.write_text(TIMING_SOURCE, encoding="utf-8")
        sources.append(str(harness))
    cmd = [cc, *CFLAGS, "-shared", "-fPIC", "-I", str(header.parent), *sources, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        first = next((ln for ln in lines if "error" in ln), lines[0] if lines else "")
        raise CExportError(f"{source.name}: the C compiler failed: {first}")
    return out


class SharedController:
    """``act(obs) -> ctrl`` through a compiled controller library (ctypes).

    A :class:`~hd_deploy.runtime.Controller` when given the controller's metadata, so the
    control loop and the benchmark run it like the other backends.

    Args:
        library: The shared library built by :func:`compile_shared`.
        obs_dim: Observation width.
        n_ctrl: Controls out.
        metadata: The controller's metadata (the ONNX file's), if it is to run in a loop.
    """

    def __init__(
        self,
        library: Path,
        obs_dim: int,
        n_ctrl: int,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._lib = ctypes.CDLL(str(library))
        self._fn = self._lib.hd_act
        self._fn.restype = None
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.obs_dim, self.n_ctrl = obs_dim, n_ctrl
        self.metadata = dict(metadata or {})
        self._out = np.zeros(n_ctrl, dtype=np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Controls for one observation ``(obs_dim,)`` float32 (a new array each call)."""
        x = np.ascontiguousarray(obs, dtype=np.float32)
        if x.shape != (self.obs_dim,):
            raise ValueError(f"obs must have shape ({self.obs_dim},), got {x.shape}")
        self._fn(x.ctypes.data, self._out.ctypes.data)
        return self._out.copy()

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def inside_us(self, obs: np.ndarray, *, calls: int = 100) -> float:
        """Mean time of one ``hd_act`` call timed inside C over ``calls`` back-to-back calls
        (no Python, no ctypes): the arithmetic floor of the controller, microseconds.

        Raises:
            CExportError: The library was compiled without ``timing=True``.
        """
        try:
            bench = self._lib.hd_bench_ns
        except AttributeError:
            raise CExportError("the library was compiled without timing=True") from None
        bench.restype = ctypes.c_double
        bench.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        x = np.ascontiguousarray(obs, dtype=np.float32)
        return float(bench(x.ctypes.data, self._out.ctypes.data, calls)) / 1e3


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
    header_text, source_text = render_c(mlp, meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header, source = out / f"{name}.h", out / f"{name}.c"
    diff, samples = float("nan"), 0
    with tempfile.TemporaryDirectory(prefix="hd_c_") as tmp:
        h, c = Path(tmp) / header.name, Path(tmp) / source.name
        h.write_text(header_text, encoding="utf-8")
        c.write_text(source_text, encoding="utf-8")
        if verify_obs is not None:
            lib = compile_shared(h, c, Path(tmp) / "libcontroller.so")
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
