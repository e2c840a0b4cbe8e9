"""What a controller file says about itself: the ``metadata_props`` of an exported graph.

Every value is stored as a string (ONNX metadata is string to string); :func:`decode_metadata`
turns them back into ints, floats, lists and dicts and checks them, so a controller file
alone is enough to rebuild and simulate its robot.

Keys (decoded types):

- ``hd_deploy_format_version`` (int): the marker that the file is ours;
- ``policy_kind`` (``"student"`` | ``"teacher"``), ``toolkit_version``, ``source_checkpoint``;
- ``robot_name``, ``robot_fingerprint``, ``robot_mjcf`` (the robot's MJCF text);
- ``observation_layout`` (dict: ``n_limbs``, ``features_per_limb``, ``feature_names``,
  ``limb_names``, ``order``), ``obs_dim``, ``n_limbs``;
- ``actuator_names`` (list), ``n_actuators``;
- ``sim_timestep``, ``frame_skip``, ``control_timestep``;
- ``weights_sha256`` (optional; written by every export since it was added): digest of the
  graph's weights and structure (:func:`weights_digest`), checked whenever a file is read;
- ``nearest_training`` (optional dict; written where the checkpoint records its training
  robots' contexts): the robot's nearest training robot by morphology context, as
  :meth:`hd_deploy.morphology.nearness.Nearest.to_dict` gives it (``robot``, ``distance``,
  ``spacing``, ``training_robots``, ``far``);
- ``tuned`` (optional dict; written by ``hd-tune``): how the baked MLP was fine-tuned on
  its robot (``steps``, ``return_before``, ``return_after``, ``kept``: ``"tuned"`` or
  ``"bake"``, ...; :meth:`hd_deploy.train.tune.TuneResult.record`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from hd_deploy import __version__
from hd_deploy.envs.task import TaskConfig
from hd_deploy.errors import HdError
from hd_deploy.morphology.features import PROPRIO_DIM, PROPRIO_NAMES
from hd_deploy.morphology.robot import Robot

FORMAT_VERSION = 1
FORMAT_KEY = "hd_deploy_format_version"
POLICY_KINDS = ("student", "teacher")

_INT_KEYS = ("n_limbs", "n_actuators", "obs_dim", "frame_skip")
_FLOAT_KEYS = ("sim_timestep", "control_timestep")
_JSON_KEYS = ("observation_layout", "actuator_names")
_STR_KEYS = (
    "policy_kind",
    "toolkit_version",
    "source_checkpoint",
    "robot_name",
    "robot_fingerprint",
    "robot_mjcf",
)
REQUIRED_KEYS = (FORMAT_KEY, *_STR_KEYS, *_JSON_KEYS, *_INT_KEYS, *_FLOAT_KEYS)
WEIGHTS_KEY = "weights_sha256"
NEAREST_KEY = "nearest_training"
TUNED_KEY = "tuned"


class ControllerError(HdError):
    """A controller file cannot be used: missing, corrupted, foreign, or the wrong robot.

    The message is one line naming the file (or robot) and the problem, so a CLI can print it.
    """


def build_metadata(
    robot: Robot,
    *,
    kind: str,
    mjcf: str,
    source_hash: str,
    config: TaskConfig = TaskConfig(),
    nearest: Mapping[str, Any] | None = None,
    tuned: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Decoded metadata for a controller of ``robot``.

    Args:
        robot: The robot the controller drives.
        kind: ``"student"`` (baked MLP) or ``"teacher"`` (transformer).
        mjcf: The robot's MJCF text ("" when unknown, e.g. for an in-memory controller).
        source_hash: Hash of the checkpoint the controller came from.
        config: Task settings the policy was trained under (timestep, frame skip).
        nearest: The robot's nearest training robot (``Nearest.to_dict()``), or None.
        tuned: The record of its fine-tuning (``hd-tune``), or None.

    Raises:
        ValueError: ``kind`` is not a known policy kind.
    """
    if kind not in POLICY_KINDS:
        raise ValueError(f"policy kind must be one of {list(POLICY_KINDS)}, got {kind!r}")
    optional = {} if nearest is None else {NEAREST_KEY: dict(nearest)}
    if tuned is not None:
        optional[TUNED_KEY] = dict(tuned)
    return {
        FORMAT_KEY: FORMAT_VERSION,
        "policy_kind": kind,
        "toolkit_version": __version__,
        "source_checkpoint": source_hash,
        "robot_name": robot.name,
        "robot_fingerprint": robot.fingerprint,
        "robot_mjcf": mjcf,
        "observation_layout": {
            "n_limbs": robot.n_limbs,
            "features_per_limb": PROPRIO_DIM,
            "feature_names": list(PROPRIO_NAMES),
            "limb_names": [limb.name for limb in robot.limbs],
            "order": "limb-major: obs[17 * limb + feature]",
        },
        "actuator_names": list(robot.actuator_names),
        "n_limbs": robot.n_limbs,
        "n_actuators": robot.n_actuators,
        "obs_dim": robot.n_limbs * PROPRIO_DIM,
        "sim_timestep": float(config.timestep),
        "frame_skip": int(config.frame_skip),
        "control_timestep": float(config.control_dt),
        **optional,
    }


def encode_metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """Decoded metadata -> string key/value pairs for ``metadata_props``."""
    out: dict[str, str] = {}
    for key, value in meta.items():
        if key in _JSON_KEYS or key in (NEAREST_KEY, TUNED_KEY):
            out[key] = json.dumps(value, separators=(",", ":"))
        elif key in _FLOAT_KEYS:
            out[key] = repr(float(value))
        else:
            out[key] = str(value)
    return out


def decode_metadata(props: Mapping[str, str], *, source: str) -> dict[str, Any]:
    """Check and decode the ``metadata_props`` of a controller file.

    Args:
        props: Key/value strings as stored in the file.
        source: What to name in error messages (usually the file path).

    Raises:
        ControllerError: The file is not ours, is from a newer format, or its metadata is
            incomplete or inconsistent.
    """
    if FORMAT_KEY not in props:
        raise ControllerError(
            f"{source}: not an hd_deploy controller (no '{FORMAT_KEY}' metadata); "
            "export one with hd-export"
        )
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise ControllerError(f"{source}: controller metadata is missing {missing}")
    meta: dict[str, Any] = {k: props[k] for k in _STR_KEYS}
    try:
        meta[FORMAT_KEY] = int(props[FORMAT_KEY])
        for key in _INT_KEYS:
            meta[key] = int(props[key])
        for key in _FLOAT_KEYS:
            meta[key] = float(props[key])
        for key in _JSON_KEYS:
            meta[key] = json.loads(props[key])
    except (ValueError, json.JSONDecodeError) as exc:
        raise ControllerError(f"{source}: malformed controller metadata: {exc}") from exc
    if meta[FORMAT_KEY] != FORMAT_VERSION:
        raise ControllerError(
            f"{source}: controller format version {meta[FORMAT_KEY]} is not supported "
            f"(this toolkit reads version {FORMAT_VERSION})"
        )
    if WEIGHTS_KEY in props:
        digest = props[WEIGHTS_KEY]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ControllerError(f"{source}: malformed {WEIGHTS_KEY} in the metadata")
        meta[WEIGHTS_KEY] = digest
    if NEAREST_KEY in props:
        meta[NEAREST_KEY] = _decode_nearest(props[NEAREST_KEY], source)
    if TUNED_KEY in props:
        meta[TUNED_KEY] = _decode_tuned(props[TUNED_KEY], source)
    if meta["policy_kind"] not in POLICY_KINDS:
        raise ControllerError(f"{source}: unknown policy kind {meta['policy_kind']!r}")
    layout = meta["observation_layout"]
    if (
        not isinstance(layout, dict)
        or layout.get("n_limbs") != meta["n_limbs"]
        or layout.get("features_per_limb") != PROPRIO_DIM
        or meta["obs_dim"] != meta["n_limbs"] * PROPRIO_DIM
        or not isinstance(meta["actuator_names"], list)
        or len(meta["actuator_names"]) != meta["n_actuators"]
    ):
        raise ControllerError(f"{source}: inconsistent controller metadata (sizes)")
    _check_ranges(meta, source)
    if _EXTERNAL_FILE.search(meta["robot_mjcf"]):
        raise ControllerError(
            f"{source}: the embedded robot MJCF refers to other files (include, mesh, texture); "
            "a controller's robot must be self-contained"
        )
    return meta


def _decode_tuned(text: str, source: str) -> dict[str, Any]:
    try:
        tuned = json.loads(text)
    except json.JSONDecodeError:
        tuned = None
    if not isinstance(tuned, dict):
        raise ControllerError(f"{source}: malformed '{TUNED_KEY}' in the metadata")
    return tuned


def _decode_nearest(text: str, source: str) -> dict[str, Any]:
    try:
        near = json.loads(text)
    except json.JSONDecodeError:
        near = None
    if (
        not isinstance(near, dict)
        or not isinstance(near.get("robot"), str)
        or not isinstance(near.get("distance"), (int, float))
        or not isinstance(near.get("far"), bool)
    ):
        raise ControllerError(f"{source}: malformed {NEAREST_KEY} in the metadata")
    return near


# Anything in MJCF that makes the parser open another file.
_EXTERNAL_FILE = re.compile(r"<\s*include\b|\bfile\s*=|\b(mesh|texture|asset)dir\s*=")
# Plausible bounds: a value outside them is a corrupted or hand-edited file.
_RANGES = {
    "n_limbs": (1, 64),
    "n_actuators": (1, 128),
    "frame_skip": (1, 1000),
    "sim_timestep": (1e-6, 1.0),
}


def _check_ranges(meta: Mapping[str, Any], source: str) -> None:
    for key, (lo, hi) in _RANGES.items():
        value = meta[key]
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ControllerError(f"{source}: metadata {key} = {value!r} is outside [{lo}, {hi}]")
    want = meta["sim_timestep"] * meta["frame_skip"]
    if not math.isclose(meta["control_timestep"], want, rel_tol=1e-6):
        raise ControllerError(
            f"{source}: metadata control_timestep = {meta['control_timestep']!r} is not "
            f"sim_timestep x frame_skip = {want!r}"
        )


def weights_digest(proto: Any) -> str:
    """SHA-256 of an ONNX graph's weights and structure (not of its metadata).

    Covers every initializer and ``Constant`` node tensor (name, type, shape, values) and
    every node's operator, inputs and outputs, so a flipped byte in a weight or an edited
    graph changes it.

    Raises:
        ControllerError: A tensor keeps its data outside the file.
    """
    import hashlib

    from onnx import TensorProto, numpy_helper

    h = hashlib.sha256()

    def tensor(t: Any) -> None:
        if t.data_location == TensorProto.EXTERNAL:
            raise ControllerError(f"tensor '{t.name}' keeps its data outside the file")
        h.update(f"{t.name}|{t.data_type}|{list(t.dims)}|".encode())
        h.update(numpy_helper.to_array(t).tobytes())

    for t in sorted(proto.graph.initializer, key=lambda t: t.name):
        tensor(t)
    for node in proto.graph.node:
        h.update(f"{node.op_type}|{list(node.input)}|{list(node.output)}|".encode())
        for attr in node.attribute:
            if attr.HasField("t"):
                tensor(attr.t)
    return h.hexdigest()


def check_weights(proto: Any, meta: Mapping[str, Any], *, source: str) -> None:
    """Refuse a file whose weights or graph no longer match the digest written at export.

    Raises:
        ControllerError: Weights stored outside the file, or a digest mismatch.
    """
    try:
        digest = weights_digest(proto)
    except ControllerError as exc:
        raise ControllerError(f"{source}: {exc}; export it again without external data") from exc
    except Exception as exc:  # a tensor whose bytes do not decode
        raise ControllerError(f"{source}: damaged weights ({type(exc).__name__})") from exc
    if WEIGHTS_KEY in meta and meta[WEIGHTS_KEY] != digest:
        raise ControllerError(
            f"{source}: the weights do not match the digest written at export (the file "
            "was changed or damaged); export it again"
        )
