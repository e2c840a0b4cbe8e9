"""Per-limb proprioceptive observations and morphology context (numpy + mujoco only).

Proprioception (17 per limb, MetaMorph order):
    xpos (3; x relative to the torso, y and z world), linear velocity (3, world),
    angular velocity (3, world), orientation quaternion (4, world), then for each of the
    two joint slots: qpos mapped to [0, 1] over the joint range, and qvel.

Context (53 per limb, HyperDistill "v2"):
    limb position relative to the torso (3), inertial position relative to the torso (3),
    body_iquat (4), mass (1), geom radius and length (2); then for each of the two joint
    slots: joint range one-hot over 13 classes, joint axis (3), gear one-hot over
    {150, 200, 250, 300} (4). Continuous values are scaled affinely to [-1, 1] from
    ``CONTEXT_SCALE`` and clipped; joint ranges and gears outside the UNIMAL classes map
    to the nearest class.
"""

from __future__ import annotations

import mujoco
import numpy as np

from hd_deploy.morphology.robot import JOINT_SLOTS, Robot

PROPRIO_DIM = 17
CONTEXT_DIM = 53
PROPRIO_NAMES = (
    "pos_x_rel", "pos_y", "pos_z",
    "linvel_x", "linvel_y", "linvel_z",
    "angvel_x", "angvel_y", "angvel_z",
    "quat_w", "quat_x", "quat_y", "quat_z",
    "slot0_qpos01", "slot0_qvel", "slot1_qpos01", "slot1_qvel",
)  # fmt: skip

# UNIMAL joint-range classes in degrees (lo, hi); every UNIMAL hinge uses one of them.
JOINT_RANGE_CLASSES = (
    (-30, 30), (-30, 0), (0, 60), (-60, 30), (0, 90), (-60, 0), (-30, 60),
    (0, 30), (0, 45), (-45, 45), (-45, 0), (-90, 0), (-60, 60),
)  # fmt: skip
GEAR_CLASSES = (150, 200, 250, 300)
# Fixed ranges (lo, hi) mapped to [-1, 1] for the continuous context features.
CONTEXT_SCALE = {
    "pos": (-2.0, 2.0),
    "ipos": (-2.0, 2.0),
    "mass": (0.0, 10.0),
    "radius": (0.0, 0.2),
    "length": (0.0, 1.0),
}
_SLOT_DIM = len(JOINT_RANGE_CLASSES) + 3 + len(GEAR_CLASSES)
_LIMB_DIM = 13
assert _LIMB_DIM + JOINT_SLOTS * _SLOT_DIM == CONTEXT_DIM


def proprio(robot: Robot, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """Proprioceptive observation of every limb.

    Args:
        robot: The parsed robot.
        model: Its compiled model.
        data: Current simulation state (``mj_forward`` or ``mj_step`` already run).

    Returns:
        Array of shape ``(n_limbs, 17)``, float32.
    """
    b = robot.body_ids
    out = np.zeros((robot.n_limbs, PROPRIO_DIM), dtype=np.float64)
    pos = data.xpos[b]
    out[:, 0] = pos[:, 0] - data.xpos[robot.root_body, 0]
    out[:, 1:3] = pos[:, 1:3]
    # Body-origin velocity in world frame (what mujoco-py called body_xvelp / xvelr).
    vel = np.empty(6)
    for i, body in enumerate(b):
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, int(body), vel, 0)
        out[i, 3:6] = vel[3:]
        out[i, 6:9] = vel[:3]
    out[:, 9:13] = data.xquat[b]
    has = robot.slot_qpos >= 0
    qpos = np.where(has, data.qpos[np.maximum(robot.slot_qpos, 0)], 0.0)
    qvel = np.where(has, data.qvel[np.maximum(robot.slot_dof, 0)], 0.0)
    lo, hi = robot.slot_range[..., 0], robot.slot_range[..., 1]
    span = np.where(hi > lo, hi - lo, 1.0)
    q01 = np.where(has, (qpos - lo) / span, 0.0)
    out[:, 13] = q01[:, 0]
    out[:, 14] = qvel[:, 0]
    out[:, 15] = q01[:, 1]
    out[:, 16] = qvel[:, 1]
    return out.astype(np.float32)


def context(robot: Robot, model: mujoco.MjModel) -> np.ndarray:
    """Morphology context of every limb, fixed for a robot.

    Args:
        robot: The parsed robot.
        model: Its compiled model.

    Returns:
        Array of shape ``(n_limbs, 53)``, float32, every entry in [-1, 1].
    """
    out = np.zeros((robot.n_limbs, CONTEXT_DIM), dtype=np.float64)
    rel = _positions_relative_to_torso(robot, model)
    act_gear = {
        (int(li), int(si)): float(g)
        for li, si, g in zip(robot.actuator_limb, robot.actuator_slot, robot.gear, strict=True)
    }
    for li, limb in enumerate(robot.limbs):
        b = limb.body_id
        out[li, 0:3] = _scale(rel[li], "pos")
        out[li, 3:6] = _scale(rel[li] + model.body_ipos[b], "ipos")
        out[li, 6:10] = model.body_iquat[b]
        out[li, 10] = _scale(sum(model.body_mass[x] for x in limb.body_ids), "mass")
        radius, length = _geom_shape(model, b)
        out[li, 11] = _scale(radius, "radius")
        out[li, 12] = _scale(length, "length")
        for si, j in enumerate(limb.joint_ids):
            base = _LIMB_DIM + si * _SLOT_DIM
            out[li, base + joint_range_class(model.jnt_range[j])] = 1.0
            out[li, base + 13 : base + 16] = model.jnt_axis[j]
            if (li, si) in act_gear:
                out[li, base + 16 + gear_class(act_gear[(li, si)])] = 1.0
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def joint_range_class(range_rad: np.ndarray) -> int:
    """Index of the nearest UNIMAL joint-range class for a range in radians."""
    deg = np.degrees(np.asarray(range_rad, dtype=np.float64))
    classes = np.asarray(JOINT_RANGE_CLASSES, dtype=np.float64)
    return int(np.argmin(np.abs(classes - deg).sum(axis=1)))


def gear_class(gear: float) -> int:
    """Index of the nearest gear class."""
    return int(np.argmin(np.abs(np.asarray(GEAR_CLASSES, dtype=np.float64) - gear)))


def _positions_relative_to_torso(robot: Robot, model: mujoco.MjModel) -> np.ndarray:
    # body_pos is relative to the parent body: sum it down the tree from the torso.
    rel = {robot.root_body: np.zeros(3)}
    for limb in robot.limbs:
        for b in limb.body_ids:
            if b != robot.root_body:
                rel[b] = rel[int(model.body_parentid[b])] + model.body_pos[b]
    return np.stack([rel[limb.body_id] for limb in robot.limbs])


def _geom_shape(model: mujoco.MjModel, body: int) -> tuple[float, float]:
    """Radius and length of a body's first geom (0, 0 for a body without geoms)."""
    if model.body_geomnum[body] == 0:
        return 0.0, 0.0
    g = model.body_geomadr[body]
    size = model.geom_size[g]
    kind = int(model.geom_type[g])
    if kind == int(mujoco.mjtGeom.mjGEOM_SPHERE):
        return float(size[0]), 0.0
    if kind in (int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_CYLINDER)):
        return float(size[0]), float(2.0 * size[1])
    # Boxes, ellipsoids, meshes: smallest half-extent as radius, largest extent as length.
    positive = size[size > 0]
    return float(positive.min()) if positive.size else 0.0, float(2.0 * np.max(size))


def _scale(value: np.ndarray | float, key: str) -> np.ndarray | float:
    lo, hi = CONTEXT_SCALE[key]
    return 2.0 * (np.asarray(value) - lo) / (hi - lo) - 1.0
