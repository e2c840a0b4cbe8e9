"""Robot morphology: MJCF -> limbs, joint slots, observations, context (numpy + mujoco)."""

from __future__ import annotations

from hd_deploy.morphology.errors import MorphologyError
from hd_deploy.morphology.features import CONTEXT_DIM, PROPRIO_DIM, context, proprio
from hd_deploy.morphology.robot import (
    JOINT_SLOTS,
    MAX_LIMBS,
    Limb,
    Robot,
    load_model,
    load_spec,
    parse_robot,
    robot_fingerprint,
)

__all__ = [
    "CONTEXT_DIM",
    "JOINT_SLOTS",
    "MAX_LIMBS",
    "PROPRIO_DIM",
    "Limb",
    "MorphologyError",
    "Robot",
    "context",
    "load_model",
    "load_spec",
    "parse_robot",
    "proprio",
    "robot_fingerprint",
]
