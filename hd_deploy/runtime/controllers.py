"""Controllers: one ``reset()`` / ``act(obs) -> ctrl`` interface for every backend.

``OnnxController`` runs an exported file with onnxruntime, tuned for batch-1 latency;
``NumpyController`` runs a baked-MLP file with numpy alone; ``CController`` runs its weights
as C (the source ``hd-export --format c`` writes), compiled on first use. Each checks the
file's metadata first, so a corrupted or foreign file fails with one line
(:class:`ControllerError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hd_deploy.errors import ConfigError
from hd_deploy.runtime.metadata import ControllerError, check_weights, decode_metadata

BACKENDS = ("onnx", "numpy", "c")
INPUT_NAME = "obs"
OUTPUT_NAME = "ctrl"


@runtime_checkable
class Controller(Protocol):
    """What a control loop needs from a policy, whatever runs it.

    Attributes:
        metadata: Decoded controller metadata (see :mod:`hd_deploy.runtime.metadata`);
            at least ``robot_name``, ``robot_fingerprint``, ``obs_dim``, ``n_actuators``,
            ``frame_skip`` and ``sim_timestep``.
    """

    metadata: dict[str, Any]

    def reset(self) -> None:
        """Forget any state between episodes (the shipped policies are stateless)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Controls for one observation.

        Args:
            obs: Flat observation, shape ``(obs_dim,)`` float32.

        Returns:
            Controls in actuator order inside each ctrlrange, shape ``(n_actuators,)``.
        """


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Decoded metadata of a controller file (the weights are not loaded into a runtime).

    Raises:
        ControllerError: Missing, corrupted or foreign file.
    """
    return _checked_metadata(_load_proto(path), source=str(path))


def load_controller(path: str | Path, backend: str = "onnx", *, threads: int = 1) -> Controller:
    """Open a controller file with the chosen backend.

    Args:
        path: An exported ``.onnx`` controller.
        backend: ``"onnx"`` (onnxruntime, student or teacher), ``"numpy"`` or ``"c"``
            (students only; ``c`` compiles the weights as C with the system compiler).
        threads: onnxruntime intra-op threads (ignored by numpy).

    Raises:
        ControllerError: Unknown backend, or the file cannot be used with it.
    """
    if backend == "onnx":
        return OnnxController(path, threads=threads)
    if backend == "numpy":
        return NumpyController(path)
    if backend == "c":
        return CController(path)
    raise ControllerError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")


class _Checked:
    """Shared shape checks of the array backends."""

    metadata: dict[str, Any]
    _obs: np.ndarray

    def _set_sizes(self) -> None:
        self.obs_dim = int(self.metadata["obs_dim"])
        self.n_actuators = int(self.metadata["n_actuators"])
        self._obs = np.zeros((1, self.obs_dim), dtype=np.float32)

    def _load_obs(self, obs: np.ndarray) -> None:
        x = obs if isinstance(obs, np.ndarray) else np.asarray(obs)
        if x.shape != (self.obs_dim,):
            raise ValueError(
                f"{self.metadata['robot_name']}: observation must have shape "
                f"({self.obs_dim},), got {x.shape}"
            )
        if x.dtype.kind not in "fiu":
            raise ValueError(
                f"{self.metadata['robot_name']}: observation must hold real numbers, "
                f"got dtype {x.dtype}"
            )
        if x.dtype.kind != "f" or x.dtype.itemsize <= 4:  # nothing can overflow float32
            self._obs[0] = x
            return
        with np.errstate(over="ignore"):  # an overflow is reported just below (errstate
            self._obs[0] = x  # costs more than a policy call: only for wide floats)
        if (np.isinf(self._obs[0]) & np.isfinite(x)).any():
            raise ValueError(
                f"{self.metadata['robot_name']}: observation values overflow float32 "
                "(an observation is float32; scale or check the input)"
            )

    def reset(self) -> None:
        """Stateless policies: nothing to forget."""


class OnnxController(_Checked):
    """onnxruntime session for one robot, tuned for batch-1 latency on a CPU.

    One intra-op and one inter-op thread, sequential execution, every graph optimisation,
    and I/O bound once to preallocated buffers so a call copies the observation in and the
    controls out and nothing else.

    Args:
        path: Exported controller file (student or teacher).
        threads: Intra-op threads (1 is fastest for the tiny MLPs).

    Raises:
        ConfigError: ``threads`` < 1.
        ControllerError: Missing, corrupted or foreign file, or unexpected inputs/outputs.
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.path = Path(path)
        source = str(self.path)
        if not self.path.is_file():
            raise ControllerError(f"{source}: no such controller file")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        proto = _load_proto(self.path)  # read once: checked here, then handed to the session
        self.metadata = _checked_metadata(proto, source=source)
        try:
            sess = ort.InferenceSession(
                proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise ControllerError(f"{source}: not a valid ONNX file: {_first_line(exc)}") from exc
        self._set_sizes()
        _check_io(
            [(i.name, i.shape) for i in sess.get_inputs()],
            [(o.name, o.shape) for o in sess.get_outputs()],
            self.obs_dim,
            self.n_actuators,
            source,
        )
        self.session = sess
        self._ctrl = np.zeros((1, self.n_actuators), dtype=np.float32)
        self._binding = sess.io_binding()
        # Bound by address: act() writes into self._obs, the session reads it in place.
        self._binding.bind_input(
            INPUT_NAME, "cpu", 0, np.float32, self._obs.shape, self._obs.ctypes.data
        )
        self._binding.bind_output(
            OUTPUT_NAME, "cpu", 0, np.float32, self._ctrl.shape, self._ctrl.ctypes.data
        )

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Controls for one observation ``(obs_dim,)`` -> ``(n_actuators,)`` float32."""
        self._load_obs(obs)
        self.session.run_with_iobinding(self._binding)
        return self._ctrl[0].copy()


class NumpyController(_Checked):
    """Pure-numpy baked MLP read from a controller file; no onnxruntime involved.

    Args:
        path: Exported student (baked MLP) controller file.

    Raises:
        ControllerError: Missing, corrupted or foreign file, or a teacher file.
    """

    def __init__(self, path: str | Path) -> None:
        from hd_deploy.runtime.numpy_graph import NumpyGraph

        self.path = Path(path)
        source = str(self.path)
        proto, self.metadata = _student_file(self.path, "numpy")
        self._set_sizes()
        self.graph = NumpyGraph(proto, source=source)
        self._run = self.graph.bind(self._obs)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Controls for one observation ``(obs_dim,)`` -> ``(n_actuators,)`` float32."""
        self._load_obs(obs)
        return self._run()[0].astype(np.float32, copy=True)


class CController(_Checked):
    """A baked-MLP file's weights as C (the ``hd-export --format c`` source), compiled with
    the system compiler on first use (cached by content) and called through ctypes.

    Args:
        path: Exported student (baked MLP) controller file.

    Raises:
        ControllerError: Missing, corrupted or foreign file, a teacher file, or no C
            compiler.
    """

    def __init__(self, path: str | Path) -> None:
        from hd_deploy.runtime.native import NativeError, c_controller

        self.path = Path(path)
        proto, self.metadata = _student_file(self.path, "c")
        self._set_sizes()
        try:
            self.library = c_controller(proto, self.metadata, source=str(self.path))
        except NativeError as exc:
            raise ControllerError(f"{self.path}: {exc}") from exc
        self._ctrl = np.zeros(self.n_actuators, dtype=np.float32)
        self._call = self.library.bind(self._obs, self._ctrl)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Controls for one observation ``(obs_dim,)`` -> ``(n_actuators,)`` float32."""
        self._load_obs(obs)
        self._call()
        return self._ctrl.copy()


# --- file reading -------------------------------------------------------------------


def _student_file(path: Path, backend: str) -> tuple[Any, dict[str, Any]]:
    """The proto and checked metadata of a student file, for a backend that runs students
    only.

    Raises:
        ControllerError: Missing, corrupted or foreign file, a teacher, or odd inputs.
    """
    source = str(path)
    proto = _load_proto(path)
    metadata = _checked_metadata(proto, source=source)
    if metadata["policy_kind"] != "student":
        raise ControllerError(
            f"{source}: the {backend} backend runs student (baked MLP) controllers only; this "
            f"file holds a {metadata['policy_kind']}; use --backend onnx"
        )
    graph = proto.graph
    init = {t.name for t in graph.initializer}
    _check_io(
        [(i.name, _proto_shape(i)) for i in graph.input if i.name not in init],
        [(o.name, _proto_shape(o)) for o in graph.output],
        int(metadata["obs_dim"]),
        int(metadata["n_actuators"]),
        source,
    )
    return proto, metadata


def _load_proto(path: str | Path) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    if not p.is_file():
        raise ControllerError(f"{p}: no such controller file")
    try:
        return onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        raise ControllerError(f"{p}: not a valid ONNX file: {_first_line(exc)}") from exc


def _checked_metadata(proto: Any, *, source: str) -> dict[str, Any]:
    """Decoded metadata of a loaded file whose weights match their digest."""
    meta = decode_metadata(_metadata_props(proto, source), source=source)
    check_weights(proto, meta, source=source)
    return meta


def _metadata_props(proto: Any, source: str = "controller") -> dict[str, str]:
    # protobuf hands back bytes (or raises) where a string field is not valid UTF-8
    try:
        props = {p.key: p.value for p in proto.metadata_props}
    except UnicodeDecodeError as exc:
        raise ControllerError(f"{source}: corrupted metadata (not UTF-8 text)") from exc
    bad = sorted(
        str(k) for k, v in props.items() if not (isinstance(k, str) and isinstance(v, str))
    )
    if bad:
        raise ControllerError(f"{source}: corrupted metadata (not UTF-8 text) in {bad}")
    return props


def _proto_shape(value_info: Any) -> list[int | str | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def _check_io(
    inputs: list[tuple[str, list]],
    outputs: list[tuple[str, list]],
    obs_dim: int,
    n_act: int,
    source: str,
) -> None:
    """One input ``obs (B, obs_dim)``, one output ``ctrl (B, n_actuators)``, B = 1 or symbolic."""

    def ok(io: list[tuple[str, list]], name: str, width: int) -> bool:
        if len(io) != 1 or io[0][0] != name or len(io[0][1]) != 2:
            return False
        batch, w = io[0][1]
        return w == width and (batch == 1 or not isinstance(batch, int))

    if not ok(inputs, INPUT_NAME, obs_dim) or not ok(outputs, OUTPUT_NAME, n_act):
        raise ControllerError(
            f"{source}: graph must map '{INPUT_NAME}' (B, {obs_dim}) to '{OUTPUT_NAME}' "
            f"(B, {n_act}); found inputs {inputs} and outputs {outputs}"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
