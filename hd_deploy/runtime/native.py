"""Native (C) code for the deployment path: the baked MLP as C99, compiled and called.

Torch-free, like the rest of :mod:`hd_deploy.runtime`. Uses:

- :func:`render_c` writes a baked MLP as ``<robot>.h`` / ``<robot>.c`` (``hd-export --format
  c``; :mod:`hd_deploy.exporters.c` verifies it against torch);
- the ``c`` backend (``load_controller(path, "c")``, ``hd-run --backend c``) builds the same
  source from an exported ONNX file's weights and calls it through ctypes;
- :mod:`hd_deploy.runtime.native_step` builds the observation and the whole control step
  in C with the same machinery.

Libraries are compiled with the system C compiler on first use and cached by content hash
in ``$HD_DEPLOY_CACHE`` (default ``~/.cache/hd_deploy``, the :data:`CACHE_LIMIT` most
recently used kept); without a compiler the control loop keeps the numpy observation and
the ``c`` backend says so in one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hd_deploy.errors import HdError
from hd_deploy.runtime.c_sources import HARNESS_SOURCE

INCLUDE_GUARD_PREFIX = "HD_CONTROLLER_"


class NativeError(HdError):
    """Native code could not be built or used (no compiler, a compiler error); one line."""


@dataclass(frozen=True)
class CWeights:
    """A baked MLP as float32 arrays: ``ctrl = ctrl_low + (clip(mlp(clip((obs - obs_mean) /
    obs_std, +-obs_clip)), -1, 1) + 1) * ctrl_half_range``, ReLU between layers.

    Attributes:
        obs_mean: Observation mean, ``(n_obs,)``.
        obs_std: Observation standard deviation, ``(n_obs,)``.
        obs_clip: Clip of the normalised observation.
        layers: ``(weight (n_out, n_in), bias (n_out,))`` per layer.
        ctrl_low: Lower end of each ctrlrange.
        ctrl_half_range: Half of each ctrlrange's width.
    """

    obs_mean: np.ndarray
    obs_std: np.ndarray
    obs_clip: float
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    ctrl_low: np.ndarray
    ctrl_half_range: np.ndarray

    @property
    def widths(self) -> list[int]:
        return [int(self.layers[0][0].shape[1])] + [int(w.shape[0]) for w, _ in self.layers]


def weights_from_onnx(proto: Any, *, source: str) -> CWeights:
    """The arrays of a baked-MLP graph written by this toolkit (``baked_graph``).

    Raises:
        NativeError: The graph is not such a graph (a teacher, or an older export).
    """
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in proto.graph.initializer}
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    while f"layers.{len(layers)}.weight" in inits:
        i = len(layers)
        layers.append((inits[f"layers.{i}.weight"], inits[f"layers.{i}.bias"]))
    needed = ("obs_mean", "obs_std", "obs_clip_high", "ctrl_low", "ctrl_half_range")
    if not layers or any(name not in inits for name in needed):
        raise NativeError(
            f"{source}: not a baked-MLP graph of this toolkit (a teacher, or exported by an "
            "older version: export it again); the c backend runs students only"
        )
    return CWeights(
        inits["obs_mean"], inits["obs_std"], float(inits["obs_clip_high"]), tuple(layers),
        inits["ctrl_low"], inits["ctrl_half_range"],
    )  # fmt: skip


# --- the baked MLP as C ---------------------------------------------------------------


def c_identifier(name: str) -> str:
    """A C identifier made of a robot name (``floor-1409-0`` -> ``floor_1409_0``)."""
    ident = re.sub(r"\W", "_", name)
    return ident if ident and not ident[0].isdigit() else "_" + ident


def _nearest_comment(meta: Mapping[str, Any]) -> str:
    """The header comment's line on the robot's nearest training robot (if recorded)."""
    near = meta.get("nearest_training")
    if near is None:
        return ""
    verdict = "unlike all of them" if near["far"] else "within their spread"
    return (
        f"\n * Nearest training robot: {near['robot']} at {near['distance']:.2f} "
        f"(morphology context; {verdict})."
    )


def render_c(weights: CWeights, meta: Mapping[str, Any]) -> tuple[str, str]:
    """Header and source text of a baked MLP.

    Args:
        weights: The robot's baked controller, as arrays.
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
    nearest = _nearest_comment(meta)
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
 * Source checkpoint: {meta["source_checkpoint"]}; toolkit {meta["toolkit_version"]}.{nearest}
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
    w = weights
    arrays = [
        _array("obs_mean", w.obs_mean),
        _array("obs_std", w.obs_std),
        _array("ctrl_low", w.ctrl_low),
        _array("ctrl_half_range", w.ctrl_half_range),
    ]
    n_layers = len(w.layers)
    for i, (weight, bias) in enumerate(w.layers):
        # stored input-major (n_in x n_out): dense() runs over outputs in the inner loop
        arrays.append(_array(f"w{i}", weight.T))
        arrays.append(_array(f"b{i}", bias))
    widths = w.widths
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

#define HD_OBS_CLIP {float(w.obs_clip)!r}f
#define HD_HIDDEN {hidden}
#define HD_WIDEST {max(widths[1:])}

{chr(10).join(arrays)}

/* y = W x + b, W stored input-major (n_in x n_out), in float; ReLU when relu != 0.
 * The inner loop runs over independent outputs (it vectorises, no reduction), and each
 * output sums b, then the inputs in order: the order of the row-major dot. */
static void dense(const float *w, const float *b, const float *x, float *y, int n_in,
                  int n_out, int relu) {{
    float acc[HD_WIDEST];
    for (int o = 0; o < n_out; ++o) {{
        acc[o] = b[o];
    }}
    for (int i = 0; i < n_in; ++i) {{
        const float xi = x[i];
        const float *col = w + (long)i * n_out;
        for (int o = 0; o < n_out; ++o) {{
            acc[o] += col[o] * xi;
        }}
    }}
    for (int o = 0; o < n_out; ++o) {{
        float v = acc[o];
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
        ctrl[o] = ctrl_low[o] + (u + 1.0f) * ctrl_half_range[o];
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
        raise NativeError(f"non-finite weight {v!r}")
    return np.format_float_scientific(v, unique=True, trim="-") + "f"


# --- compile and call ----------------------------------------------------------------


def find_compiler() -> str | None:
    """The system C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``), or None."""
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


#: Flags for the toolkit's own builds (verification, timing). -O3 vectorises dense()'s
#: inner loop (-O2 in GCC 12 does not); -march is left to the user, who knows the target.
CFLAGS = ("-std=c99", "-O3", "-Wall", "-Werror", "-pedantic")


def compile_shared(
    header: Path,
    source: Path,
    out: Path,
    *,
    compiler: str | None = None,
    timing: bool = False,
    flags: Sequence[str] = (),
) -> Path:
    """Compile the controller into a shared library (for tests, verification, timing).

    Args:
        header: The controller's header.
        source: Its source.
        out: The library to write.
        compiler: C compiler (default: :func:`find_compiler`).
        timing: Link :data:`HARNESS_SOURCE` in, for :meth:`SharedController.inside_us`
            and :class:`~hd_deploy.runtime.native_step.FusedControl`.
        flags: More compiler flags, after :data:`CFLAGS`.

    Raises:
        NativeError: No compiler, or it failed (its first error line is in the message).
    """
    cc = compiler or find_compiler()
    if cc is None:
        raise NativeError("no C compiler found (set CC or install gcc/clang)")
    sources = [str(source)]
    if timing:
        harness = out.with_name(out.stem + "_timing.c")
        harness.write_text(HARNESS_SOURCE, encoding="utf-8")
        sources.append(str(harness))
    cmd = [cc, *CFLAGS, *flags, "-shared", "-fPIC", "-I", str(header.parent), *sources]
    cmd += ["-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        first = next((ln for ln in lines if "error" in ln), lines[0] if lines else "")
        raise NativeError(f"{source.name}: the C compiler failed: {first}")
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

    def bind(self, obs: np.ndarray, ctrl: np.ndarray) -> Callable[[], None]:
        """A call of ``hd_act`` from ``obs`` into ``ctrl`` (float32, C-contiguous, kept by
        address: the caller refills ``obs`` and reads ``ctrl``), with nothing else to do."""
        for name, array, size in (("obs", obs, self.obs_dim), ("ctrl", ctrl, self.n_ctrl)):
            if array.dtype != np.float32 or not array.flags.c_contiguous or array.size != size:
                raise ValueError(f"{name} must be {size} contiguous float32 values")
        fn, obs_at, ctrl_at = self._fn, obs.ctypes.data, ctrl.ctypes.data
        return lambda: fn(obs_at, ctrl_at)

    def harness(self, name: str) -> Any:
        """A function of the harness linked in with ``timing=True`` (:data:`HARNESS_SOURCE`).

        Raises:
            NativeError: The library was compiled without ``timing=True``.
        """
        try:
            return getattr(self._lib, name)
        except AttributeError:
            raise NativeError("the library was compiled without timing=True") from None

    def inside_us(self, obs: np.ndarray, *, calls: int = 100) -> float:
        """Mean time of one ``hd_act`` call timed inside C over ``calls`` back-to-back calls
        (no Python, no ctypes): the arithmetic floor of the controller, microseconds.

        Raises:
            NativeError: The library was compiled without ``timing=True``.
        """
        bench = self.harness("hd_bench_ns")
        bench.restype = ctypes.c_double
        bench.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        x = np.ascontiguousarray(obs, dtype=np.float32)
        return float(bench(x.ctypes.data, self._out.ctypes.data, calls)) / 1e3


# --- the build cache ------------------------------------------------------------------


def cache_dir() -> Path:
    """Where compiled libraries are kept (``$HD_DEPLOY_CACHE``, else ``~/.cache/hd_deploy``)."""
    env = os.environ.get("HD_DEPLOY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hd_deploy"


#: The libraries built for this machine only (the cache) also target its CPU.
HOST_FLAGS = ("-march=native",)


def _host() -> str:
    """What a library built with :data:`HOST_FLAGS` is tied to: the CPU's model and flags
    (a cache shared by machines of another kind builds its own)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
        cpu = "\n".join(sorted(set(lines)))
    except OSError:
        cpu = ""
    return f"{platform.machine()} {platform.processor()} {cpu}"


def cached_library(files: Mapping[str, str], *, timing: bool = False) -> Path:
    """A shared library of ``files`` (name -> text; the ``.c`` file is the one compiled)
    for this machine (:data:`HOST_FLAGS`, dropped when the compiler refuses them), built
    once per content, flags and CPU, atomically (concurrent builds are safe).

    Raises:
        NativeError: No compiler, or it failed.
    """
    harness = HARNESS_SOURCE if timing else ""
    key_text = repr((sorted(files.items()), CFLAGS, HOST_FLAGS, harness, _host()))
    out = cache_dir() / f"lib-{hashlib.sha256(key_text.encode()).hexdigest()[:24]}.so"
    if out.exists():
        with contextlib.suppress(OSError):
            os.utime(out)  # recently used: kept by the pruning below
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hd_build_", dir=out.parent) as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        (source,) = [Path(tmp) / n for n in files if n.endswith(".c")]
        build = Path(tmp) / out.name
        try:
            lib = compile_shared(source, source, build, timing=timing, flags=HOST_FLAGS)
        except NativeError:  # a compiler without -march=native: portable code is fine
            lib = compile_shared(source, source, build, timing=timing)
        os.replace(lib, out)
    prune_cache(out.parent)
    return out


#: Libraries kept in the build cache (a fleet's worth); the least recently used go first.
CACHE_LIMIT = 512


def prune_cache(folder: Path, *, keep: int = CACHE_LIMIT) -> int:
    """Delete all but the ``keep`` most recently used libraries in ``folder``; returns how
    many went. A library in use stays loaded (the file is only unlinked)."""
    libs = []
    for path in folder.glob("lib-*.so"):
        with contextlib.suppress(OSError):  # another process may be pruning too
            libs.append((path.stat().st_mtime, path))
    libs.sort(reverse=True)
    removed = 0
    for _, path in libs[keep:]:
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def c_controller(proto: Any, metadata: Mapping[str, Any], *, source: str) -> SharedController:
    """The ``c`` backend: an exported student's weights as C, compiled (cached), via ctypes.

    Raises:
        NativeError: Not a baked-MLP graph, no compiler, or the build failed.
    """
    header, text = render_c(weights_from_onnx(proto, source=source), metadata)
    name = str(metadata["robot_name"])
    lib = cached_library({f"{name}.h": header, f"{name}.c": text}, timing=True)
    obs_dim, n_ctrl = int(metadata["obs_dim"]), int(metadata["n_actuators"])
    return SharedController(lib, obs_dim, n_ctrl, metadata=metadata)
