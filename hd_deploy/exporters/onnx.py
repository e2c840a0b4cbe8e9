"""Export a per-robot controller (baked MLP or teacher wrapper) to a verified ONNX file.

The graph maps ``obs`` (the robot's flat native observation, float32, ``(1, obs_dim)`` or
``(batch, obs_dim)``) to ``ctrl`` (controls in actuator order, inside each ctrlrange).
Normalisation lives inside the graph, once. The file is self-contained (weights inline,
the robot's MJCF in the metadata) and is only written when every check passes:
``onnx.checker``, a metadata round trip, and onnxruntime against the torch module on
random and on real rollout observations to within :data:`TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.errors import HdError
from hd_deploy.models.baked import BakedMLP
from hd_deploy.models.controller import TorchController, policy_kind
from hd_deploy.models.teacher import TeacherExport
from hd_deploy.morphology.errors import MorphologyError
from hd_deploy.morphology.nearness import Nearest
from hd_deploy.morphology.robot import Robot
from hd_deploy.runtime.controllers import INPUT_NAME, OUTPUT_NAME, OnnxController, read_metadata
from hd_deploy.runtime.metadata import (
    WEIGHTS_KEY,
    build_metadata,
    encode_metadata,
    weights_digest,
)

TOLERANCE = 1e-5
RANDOM_SAMPLES = 16
ROLLOUT_STEPS = 32
BATCH_DIM = "batch"
# Slack over the raw tensor bytes for graph structure and metadata (besides the MJCF).
_SIZE_SLACK = 64 * 1024


class ExportError(HdError):
    """An export failed a check; the one-line message names the robot and the check."""


@dataclass(frozen=True)
class ExportResult:
    """One exported controller.

    Attributes:
        robot: Robot name.
        kind: ``"student"`` or ``"teacher"``.
        path: The ``.onnx`` file.
        fingerprint: Robot fingerprint.
        obs_dim: Observation width.
        n_actuators: Controls out.
        n_params: Parameters of the torch module.
        file_bytes: Size of the file.
        opset: ONNX opset of the default domain.
        dynamic_batch: Whether the batch dimension is symbolic.
        max_abs_diff: Largest |onnxruntime - torch| over every verification sample (NaN
            when verification was skipped).
        samples: Observations compared (random + rollout).
        nearest: The robot's nearest among the checkpoint's training robots, by
            morphology context (None: the checkpoint records no contexts).
    """

    robot: str
    kind: str
    path: Path
    fingerprint: str
    obs_dim: int
    n_actuators: int
    n_params: int
    file_bytes: int
    opset: int
    dynamic_batch: bool
    max_abs_diff: float
    samples: int
    nearest: Nearest | None = None

    @property
    def verified(self) -> bool:
        return self.samples > 0

    def summary(self) -> str:
        """One line for a terminal."""
        check = (
            f"verified on {self.samples} obs, max |diff| {self.max_abs_diff:.1e}"
            if self.verified
            else "not verified"
        )
        return (
            f"{self.robot}: {self.kind} {self.obs_dim}->{self.n_actuators}, "
            f"{self.n_params:,} params -> {self.path} ({self.file_bytes / 1024:.1f} KiB, "
            f"opset {self.opset}{', dynamic batch' if self.dynamic_batch else ''}), {check}"
        )


def export_controller(
    module: BakedMLP | TeacherExport,
    robot: Robot,
    model_xml: str,
    out_path: str | Path,
    *,
    kind: str,
    source_hash: str,
    dynamic_batch: bool = False,
    verify: bool = True,
    config: TaskConfig = TaskConfig(),
    seed: int = 0,
    nearest: Nearest | None = None,
    tuned: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Export one robot's controller to ONNX, verify it, then move it into place.

    Args:
        module: The robot's ``BakedMLP`` (student) or ``TeacherExport`` (teacher).
        robot: The robot.
        model_xml: The robot's MJCF text, stored in the file (must describe ``robot``).
        out_path: Destination ``.onnx`` file (replaced if present).
        kind: ``"student"`` or ``"teacher"``; must match ``module``.
        source_hash: Hash of the source checkpoint (:func:`checkpoint_hash`).
        dynamic_batch: Symbolic batch dimension instead of batch 1.
        verify: Run the checks (the file is written either way when False).
        config: Task timing stored in the metadata and used for the rollout.
        seed: Seed of the random and rollout verification observations.
        nearest: The robot's nearest training robot, stored in the metadata and the result.
        tuned: The record of the MLP's fine-tuning on the robot (``hd-tune``), stored in
            the metadata.

    Raises:
        ExportError: A check failed (no file is left behind).
        TypeError: ``module`` is not an export wrapper.
    """
    if policy_kind(module) != kind:
        raise ExportError(f"{robot.name}: kind {kind!r} does not match a {type(module).__name__}")
    if module.fingerprint != robot.fingerprint:
        raise ExportError(
            f"{robot.name}: module was made for '{module.robot_name}' (fingerprint "
            f"{module.fingerprint}), not this robot ({robot.fingerprint})"
        )
    task = _task_from_text(model_xml, robot, config)
    module = module.eval()
    near = None if nearest is None else nearest.to_dict()
    meta = build_metadata(robot, kind=kind, mjcf=model_xml, source_hash=source_hash,
                          config=config, nearest=near, tuned=tuned)  # fmt: skip
    try:
        proto = _to_onnx(module, dynamic_batch=dynamic_batch)
    except Exception as exc:  # torch.export and the ONNX translator raise many types
        raise ExportError(f"{robot.name}: torch.onnx.export failed: {_first_line(exc)}") from exc
    meta[WEIGHTS_KEY] = weights_digest(proto)
    for key, value in encode_metadata(meta).items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"hd_deploy {kind} controller for {robot.name} ({robot.fingerprint})"

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n_params = sum(p.numel() for p in module.parameters())
    try:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
        diff, samples = float("nan"), 0
        if verify:
            _check_file(tmp, proto, module, meta, model_xml, robot.name)
            diff, samples = _check_parity(tmp, module, task, robot, dynamic_batch, seed)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(
        robot=robot.name,
        kind=kind,
        path=out,
        fingerprint=robot.fingerprint,
        obs_dim=int(meta["obs_dim"]),
        n_actuators=robot.n_actuators,
        n_params=n_params,
        file_bytes=out.stat().st_size,
        opset=_opset(proto),
        dynamic_batch=dynamic_batch,
        max_abs_diff=diff,
        samples=samples,
        nearest=nearest,
    )


# --- export -------------------------------------------------------------------------


BAKED_OPSET = 18


def baked_graph(mlp: BakedMLP, *, dynamic_batch: bool = False) -> onnx.ModelProto:
    """The ONNX graph of a baked MLP, written directly (no tracing: about a millisecond).

    ``ctrl = ctrl_low + (clip(mlp(clip((obs - obs_mean) / obs_std)), -1, 1) + 1) x
    ctrl_half_range``, with a ReLU after every layer but the last; the same function as
    :meth:`BakedMLP.forward`, checked against it at every export.
    """
    from onnx import TensorProto, helper, numpy_helper

    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in mlp.state_dict().items()}
    inits = [
        numpy_helper.from_array(state["obs_mean"], "obs_mean"),
        numpy_helper.from_array(state["obs_std"], "obs_std"),
        numpy_helper.from_array(_scalar(-mlp.obs_clip), "obs_clip_low"),
        numpy_helper.from_array(_scalar(mlp.obs_clip), "obs_clip_high"),
        numpy_helper.from_array(_scalar(-1.0), "minus_one"),
        numpy_helper.from_array(_scalar(1.0), "one"),
        numpy_helper.from_array(state["ctrl_low"], "ctrl_low"),
        numpy_helper.from_array(
            (0.5 * (state["ctrl_high"] - state["ctrl_low"])).astype(np.float32), "ctrl_half_range"
        ),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "obs_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "obs_std"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "obs_clip_low", "obs_clip_high"], ["x0"]),
    ]
    last = len(mlp.layers) - 1
    x = "x0"
    for i in range(len(mlp.layers)):
        w, b = f"layers.{i}.weight", f"layers.{i}.bias"
        inits += [numpy_helper.from_array(state[w], w), numpy_helper.from_array(state[b], b)]
        y = f"gemm{i}"
        nodes.append(helper.make_node("Gemm", [x, w, b], [y], transB=1))
        if i < last:
            nodes.append(helper.make_node("Relu", [y], [f"x{i + 1}"]))
            x = f"x{i + 1}"
    nodes += [
        helper.make_node("Clip", [f"gemm{last}", "minus_one", "one"], ["action"]),
        helper.make_node("Add", ["action", "one"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "ctrl_half_range"], ["offset"]),
        helper.make_node("Add", ["ctrl_low", "offset"], [OUTPUT_NAME]),
    ]
    batch: str | int = BATCH_DIM if dynamic_batch else 1
    graph = helper.make_graph(
        nodes,
        "baked_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, mlp.n_obs])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, mlp.n_actuators])],
        inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", BAKED_OPSET)], producer_name="hd_deploy"
    )
    proto.ir_version = 8  # readable by every onnxruntime of the last years
    return proto


def _scalar(value: float) -> np.ndarray:
    return np.array(value, dtype=np.float32)


def _to_onnx(module: BakedMLP | TeacherExport, *, dynamic_batch: bool) -> onnx.ModelProto:
    """A baked MLP is written directly; the teacher goes through ``torch.export``."""
    if isinstance(module, BakedMLP):
        return baked_graph(module, dynamic_batch=dynamic_batch)
    return _torch_export(module, dynamic_batch=dynamic_batch)


def _torch_export(module: TeacherExport, *, dynamic_batch: bool) -> onnx.ModelProto:
    """Current-opset export through ``torch.export`` (``dynamo=True``)."""
    batch = 2 if dynamic_batch else 1  # a dummy batch of 1 would specialise the dimension
    dummy = module.dummy_input(batch)
    shapes = {INPUT_NAME: {0: torch.export.Dim(BATCH_DIM)}} if dynamic_batch else None
    with _quiet():
        program = torch.onnx.export(
            module,
            (dummy,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=shapes,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    if program is None:  # only None when writing to a path, which this never does
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    # Per-node stack traces and FX names carry build-machine paths and most of the bytes of
    # a small graph; intermediate shapes are re-inferred by every runtime.
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.graph.value_info[:]
    if dynamic_batch:
        for value in (*proto.graph.input, *proto.graph.output):
            dim = value.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = BATCH_DIM
    return proto


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress lines and optional-dependency warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# --- verification -------------------------------------------------------------------


def _task_from_text(model_xml: str, robot: Robot, config: TaskConfig) -> LocomotionTask:
    """The task rebuilt from the MJCF text alone, which must describe the same robot."""
    try:
        task = LocomotionTask(model_xml, config=config, name=robot.name)
    except MorphologyError as exc:
        raise ExportError(
            f"{robot.name}: its MJCF text cannot be embedded (it must compile on its own, "
            f"without include or mesh files): {exc}"
        ) from exc
    if task.robot.fingerprint != robot.fingerprint:
        raise ExportError(
            f"{robot.name}: the MJCF text describes a robot with fingerprint "
            f"{task.robot.fingerprint}, not {robot.fingerprint}"
        )
    return task


def _check_file(
    path: Path,
    proto: onnx.ModelProto,
    module: torch.nn.Module,
    meta: dict,
    model_xml: str,
    name: str,
) -> None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{name}: onnx.checker rejected the graph: {exc}") from exc
    external = [
        t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise ExportError(f"{name}: weights stored outside the file: {external[:3]}")
    tensor_bytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    limit = tensor_bytes + len(model_xml.encode()) + _SIZE_SLACK
    size = path.stat().st_size
    if size > limit:
        raise ExportError(f"{name}: file is {size} bytes, more than the expected {limit}")
    if read_metadata(path) != meta:
        raise ExportError(f"{name}: metadata does not round-trip")


def _check_parity(
    path: Path,
    module: torch.nn.Module,
    task: LocomotionTask,
    robot: Robot,
    dynamic_batch: bool,
    seed: int,
) -> tuple[float, int]:
    """onnxruntime vs torch on random and on rollout observations; returns (max diff, n)."""
    obs = verification_obs(module, task, seed=seed)
    with torch.inference_mode():
        want = module(torch.from_numpy(obs)).numpy()
    runtime = OnnxController(path)
    got = np.stack([runtime.act(o) for o in obs])
    if dynamic_batch:
        got_batch = runtime.session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]
        got = np.concatenate([got, got_batch])
        want = np.concatenate([want, want])
    if got.shape != want.shape or not np.isfinite(got).all():
        raise ExportError(
            f"{robot.name}: onnxruntime gave shape {got.shape} (finite: "
            f"{bool(np.isfinite(got).all())}), torch {want.shape}"
        )
    diff = float(np.max(np.abs(got - want)))
    if not diff <= TOLERANCE:
        raise ExportError(
            f"{robot.name}: onnxruntime differs from torch by {diff:.2e} > {TOLERANCE:g}"
        )
    return diff, len(obs)


def verification_obs(module: torch.nn.Module, task: LocomotionTask, *, seed: int) -> np.ndarray:
    """Observations an export is checked on: random ones (a quarter far outside the
    normaliser's range, so clipping is exercised) and a short rollout's, ``(n, obs_dim)``."""
    rng = np.random.default_rng(seed)
    obs_dim = task.robot.n_limbs * 17
    random = rng.normal(scale=2.0, size=(RANDOM_SAMPLES, obs_dim)).astype(np.float32)
    random[: RANDOM_SAMPLES // 4] *= 50.0
    return np.concatenate([random, _rollout(module, task, rng)])


def _rollout(module: torch.nn.Module, task: LocomotionTask, rng: np.random.Generator) -> np.ndarray:
    """Observations of a short rollout driven by the torch module itself."""
    policy = TorchController(module, task.robot)  # type: ignore[arg-type]
    obs = task.reset(rng).reshape(-1)
    seen = []
    for _ in range(ROLLOUT_STEPS):
        seen.append(obs)
        result = task.step(policy.act(obs))
        obs = task.reset(rng) if result.terminated or result.truncated else task.observe()
        obs = obs.reshape(-1)
    return np.stack(seen).astype(np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
