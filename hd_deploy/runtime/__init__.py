"""The torch-free runtime a robot program embeds: controllers and the control loop.

Imports only numpy, onnxruntime, mujoco (and ``onnx`` for the numpy backend) plus the
toolkit's numpy-only robot and task modules; a test proves that torch stays out.
"""

from __future__ import annotations

from hd_deploy.runtime.controllers import (
    BACKENDS,
    CController,
    Controller,
    NumpyController,
    OnnxController,
    load_controller,
    read_metadata,
)
from hd_deploy.runtime.episodes import RunReport, run_episodes, scene, task_for
from hd_deploy.runtime.loop import ControlLoop, ObservationBuilder
from hd_deploy.runtime.metadata import (
    FORMAT_KEY,
    FORMAT_VERSION,
    ControllerError,
    build_metadata,
    decode_metadata,
    encode_metadata,
)

__all__ = [
    "BACKENDS",
    "CController",
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "ControlLoop",
    "Controller",
    "ControllerError",
    "NumpyController",
    "ObservationBuilder",
    "OnnxController",
    "RunReport",
    "build_metadata",
    "scene",
    "decode_metadata",
    "encode_metadata",
    "load_controller",
    "read_metadata",
    "run_episodes",
    "task_for",
]
