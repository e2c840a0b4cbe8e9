"""Models: transformer teacher, HyperDistill hypernetwork, baked per-robot MLP."""

from __future__ import annotations

from hd_deploy.models.baked import BakedMLP
from hd_deploy.models.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    checkpoint_hash,
    load_checkpoint,
    load_student,
    load_teacher,
    read_checkpoint_info,
    save_checkpoint,
)
from hd_deploy.models.config import HyperNetConfig, TeacherConfig
from hd_deploy.models.counting import (
    baked_macs,
    baked_params,
    count_params,
    fvcore_macs,
    hypernet_params,
    teacher_actor_macs,
    teacher_actor_params,
)
from hd_deploy.models.hypernet import GeneratedWeights, HyperNetPolicy
from hd_deploy.models.normalizer import ObsNormalizer
from hd_deploy.models.teacher import TeacherExport, TeacherPolicy

__all__ = [
    "BakedMLP",
    "CheckpointError",
    "CheckpointInfo",
    "GeneratedWeights",
    "HyperNetConfig",
    "HyperNetPolicy",
    "ObsNormalizer",
    "TeacherConfig",
    "TeacherExport",
    "TeacherPolicy",
    "baked_macs",
    "baked_params",
    "checkpoint_hash",
    "count_params",
    "fvcore_macs",
    "hypernet_params",
    "load_checkpoint",
    "load_student",
    "load_teacher",
    "read_checkpoint_info",
    "save_checkpoint",
    "teacher_actor_macs",
    "teacher_actor_params",
]
