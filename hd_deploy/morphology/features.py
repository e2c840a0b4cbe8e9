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

import ctypes

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
SLOT_DIM = len(JOINT_RANGE_CLASSES) + 3 + len(GEAR_CLASSES)
LIMB_DIM = 13  # position 3, inertial position 3, orientation 4, mass 1, shape 2
assert LIMB_DIM + JOINT_SLOTS * SLOT_DIM == CONTEXT_DIM


class Proprioception:
    """The proprioceptive observation of one robot, with its index work done once.

    The velocities are what ``mj_objectVelocity(model, data, mjOBJ_BODY, body, vel, 0)``
    returns (mujoco-py's ``body_xvelp`` / ``body_xvelr``): the spatial velocity of the body's
    inertial frame, world orientation. They are read from ``cvel`` (stored at the subtree
    centre of mass of the body's root) and shifted to ``xipos``, for all limbs at once;
    ``tests/morphology/test_features.py`` holds the per-body definition and checks that
    both agree on every UNIMAL robot.

    Every number the observation reads lives in ``mjData.buffer`` (MuJoCo's one allocation
    that all of ``mjData``'s fixed-size arrays point into), so a call is one gather from it
    with a precomputed index, then a few in-place operations on preallocated arrays: about
    a tenth of the physics of a control step, where a gather per field costs a quarter.

    Args:
        robot: The parsed robot.
        model: Its compiled model.
    """

    def __init__(self, robot: Robot, model: mujoco.MjModel) -> None:
        n = robot.n_limbs
        self.n_limbs = n
        self._bodies = np.asarray(robot.body_ids, dtype=np.int64)
        self._roots = model.body_rootid[self._bodies]
        self._torso = int(robot.root_body)
        limb, slot = np.nonzero(robot.slot_qpos >= 0)
        lo, hi = robot.slot_range[limb, slot, 0], robot.slot_range[limb, slot, 1]
        inv_span = 1.0 / np.where(hi > lo, hi - lo, 1.0)
        self._slots = (limb, slot, robot.slot_qpos[limb, slot], robot.slot_dof[limb, slot])
        # out = gathered * scale - shift (+ the lever-arm term, - the torso's x)
        self._scale = np.zeros((n, PROPRIO_DIM))
        self._scale[:, :13] = 1.0
        self._scale[limb, 13 + 2 * slot] = inv_span
        self._scale[limb, 14 + 2 * slot] = 1.0
        self._shift = np.zeros((n, PROPRIO_DIM))
        self._shift[limb, 13 + 2 * slot] = lo * inv_span
        self._data: mujoco.MjData | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_data": None}  # views into one process's memory stay there

    def __call__(self, data: mujoco.MjData) -> np.ndarray:
        """Observation of every limb, shape ``(n_limbs, 17)`` float32.

        Args:
            data: Current simulation state (``mj_forward`` or ``mj_step`` already run).
        """
        if data is not self._data:
            self._bind(data)
        np.take(self._buffer, self._index, out=self._gathered, mode="clip")
        out, lever = self._out, self._lever
        np.subtract(self._ipos, self._com, out=lever)  # r = xipos - subtree_com, permuted
        np.multiply(lever, self._ang, out=lever)  # [ang_yzx * r_zxy, -ang_zxy * r_yzx]
        np.multiply(self._fields, self._scale, out=out)
        np.subtract(out, self._shift, out=out)
        np.subtract(self._out_x, self._torso_x, out=self._out_x)
        np.add(self._out_lin, self._lever_a, out=self._out_lin)
        np.add(self._out_lin, self._lever_b, out=self._out_lin)
        return out.astype(np.float32)

    def _bind(self, data: mujoco.MjData) -> None:
        """Precompute the gather from ``data``'s buffer and the views the call writes."""
        fields = ("qpos", "qvel", "xpos", "xquat", "xipos", "cvel", "subtree_com")
        arrays = {f: getattr(data, f) for f in fields}
        address = {f: a.__array_interface__["data"][0] for f, a in arrays.items()}
        base = min(address.values())
        end = max(address[f] + a.nbytes for f, a in arrays.items())
        if end - base > data.nbuffer or any((address[f] - base) % 8 for f in fields):
            raise RuntimeError("mjData's arrays do not share one buffer (MuJoCo changed?)")
        buffer = np.ctypeslib.as_array((ctypes.c_double * ((end - base) // 8)).from_address(base))

        def at(field: str, rows: np.ndarray, cols) -> np.ndarray:
            a = arrays[field]
            start = (address[field] - base) // 8
            return start + np.asarray(rows)[:, None] * a.shape[1] + np.asarray(cols)[None, :]

        b, roots, n = self._bodies, self._roots, self.n_limbs
        zero = (address["xpos"] - base) // 8  # the world body's x: always 0
        slots = np.full((n, 4), zero, dtype=np.int64)
        limb, slot, qpos, dof = self._slots
        slots[limb, 2 * slot] = (address["qpos"] - base) // 8 + qpos
        slots[limb, 2 * slot + 1] = (address["qvel"] - base) // 8 + dof
        index = np.concatenate(
            [
                at("xpos", b, [0, 1, 2]),
                at("cvel", b, [3, 4, 5, 0, 1, 2]),  # linear, then angular
                at("xquat", b, [0, 1, 2, 3]),
                slots,
                at("cvel", b, [1, 2, 0, 2, 0, 1]),  # ang_yzx, ang_zxy
                at("xipos", b, [2, 0, 1]),  # minus [com_zxy, xipos_yzx]: [r_zxy, -r_yzx]
                at("subtree_com", roots, [1, 2, 0]),
                at("subtree_com", roots, [2, 0, 1]),
                at("xipos", b, [1, 2, 0]),
                at("xpos", np.full(n, self._torso), [0]),
            ],
            axis=1,
        )
        g = np.empty(index.shape)
        self._data, self._buffer, self._index, self._gathered = data, buffer, index, g
        self._fields, self._ang = g[:, :17], g[:, 17:23]
        self._ipos, self._com, self._torso_x = g[:, 23:29], g[:, 29:35], g[:, 35]
        self._out = np.empty((n, PROPRIO_DIM))
        self._lever = np.empty((n, 6))
        self._out_x, self._out_lin = self._out[:, 0], self._out[:, 3:6]
        self._lever_a, self._lever_b = self._lever[:, :3], self._lever[:, 3:]


def proprio(robot: Robot, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """Proprioceptive observation of every limb (see :class:`Proprioception`).

    Loops that observe the same robot many times keep a :class:`Proprioception`.

    Args:
        robot: The parsed robot.
        model: Its compiled model.
        data: Current simulation state (``mj_forward`` or ``mj_step`` already run).

    Returns:
        Array of shape ``(n_limbs, 17)``, float32.
    """
    return Proprioception(robot, model)(data)


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
            base = LIMB_DIM + si * SLOT_DIM
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
