"""Read a tree-structured MuJoCo robot into limbs, joint slots and actuators.

One definition serves training, export and the robot-side runtime, so this module
imports numpy and mujoco only.

Conventions (MetaMorph / HyperDistill):
- The *root* is the one top-level body that carries joints; its joints (free, slide,
  hinge) are the *base* and never actuated limbs.
- Limbs are the root and every descendant body that has at least one joint, in
  MuJoCo's depth-first body order, torso first. A body without joints is welded to its
  parent and belongs to its parent's limb (gymnasium's Ant has such bodies).
- Each limb has up to two hinge *joint slots*, in the order the joints appear.
- Each actuator drives one hinge joint and so one (limb, slot).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from hd_deploy.morphology.errors import MorphologyError, one_line

MAX_LIMBS = 12
JOINT_SLOTS = 2


@dataclass(frozen=True, eq=False)
class Limb:
    """One limb: a jointed body plus any bodies welded to it.

    Attributes:
        name: Name of the limb's main body.
        body_id: MuJoCo id of the main body (whose state is observed).
        parent: Index of the parent limb, -1 for the torso.
        body_ids: Every body welded into this limb, main body first.
        joint_ids: Hinge joints in slot order (at most two; empty for the torso).
    """

    name: str
    body_id: int
    parent: int
    body_ids: tuple[int, ...]
    joint_ids: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Robot:
    """What the toolkit sees in a robot. Index arrays refer to the compiled model.

    Attributes:
        name: Model name (or file stem).
        limbs: Limbs in depth-first order, torso first.
        root_body: MuJoCo id of the root (torso) body.
        root_height: Torso z in the file (body_pos of the root), metres.
        actuator_ids: Actuators in model order, shape ``(n_actuators,)``.
        actuator_limb: Limb of each actuator, shape ``(n_actuators,)``.
        actuator_slot: Joint slot of each actuator, shape ``(n_actuators,)``.
        ctrl_range: Control range per actuator, shape ``(n_actuators, 2)``.
        gear: First gear component per actuator, shape ``(n_actuators,)``.
        actuator_names: Actuator names in model order.
        slot_qpos: qpos address per (limb, slot), -1 where empty, ``(n_limbs, 2)``.
        slot_dof: qvel address per (limb, slot), -1 where empty, ``(n_limbs, 2)``.
        slot_range: Joint range in radians per (limb, slot), ``(n_limbs, 2, 2)``.
        fingerprint: Stable hash of the robot's structure (16 hex digits).
    """

    name: str
    limbs: tuple[Limb, ...]
    root_body: int
    root_height: float
    actuator_ids: np.ndarray
    actuator_limb: np.ndarray
    actuator_slot: np.ndarray
    ctrl_range: np.ndarray
    gear: np.ndarray
    actuator_names: tuple[str, ...]
    slot_qpos: np.ndarray
    slot_dof: np.ndarray
    slot_range: np.ndarray
    fingerprint: str
    body_ids: np.ndarray = field(repr=False)

    @property
    def n_limbs(self) -> int:
        return len(self.limbs)

    @property
    def n_actuators(self) -> int:
        return len(self.actuator_ids)

    def action_mask(self, max_limbs: int | None = None) -> np.ndarray:
        """Which (limb, slot) pairs drive an actuator, shape ``(max_limbs, 2)`` bool."""
        rows = self.n_limbs if max_limbs is None else max_limbs
        mask = np.zeros((rows, JOINT_SLOTS), dtype=bool)
        mask[self.actuator_limb, self.actuator_slot] = True
        return mask

    def limb_mask(self, max_limbs: int) -> np.ndarray:
        """Which rows of a padded limb array are real limbs, shape ``(max_limbs,)`` bool."""
        mask = np.zeros(max_limbs, dtype=bool)
        mask[: self.n_limbs] = True
        return mask

    def actions_to_ctrl(self, actions: np.ndarray) -> np.ndarray:
        """Map per-slot actions in [-1, 1] to controls in actuator order.

        Args:
            actions: Per-slot actions, shape ``(>= n_limbs, 2)`` (padding ignored).

        Returns:
            Controls, shape ``(n_actuators,)``, inside each actuator's ctrlrange.
        """
        a = np.clip(actions[self.actuator_limb, self.actuator_slot], -1.0, 1.0)
        return self.scale_ctrl(a)

    def scale_ctrl(self, a: np.ndarray) -> np.ndarray:
        """Affinely map actions in [-1, 1] (actuator order) onto each ctrlrange."""
        lo, hi = self.ctrl_range[:, 0], self.ctrl_range[:, 1]
        return lo + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)


def load_model(source: str | Path) -> mujoco.MjModel:
    """Compile an MJCF file (path) or MJCF text into a model.

    Raises:
        MorphologyError: The file is missing or MuJoCo cannot compile it.
    """
    return compile_spec(load_spec(source), _label(source))


def compile_spec(spec: mujoco.MjSpec, label: str) -> mujoco.MjModel:
    """Compile a spec; ``label`` names the robot in the error.

    A ``<compiler settotalmass>`` (gymnasium's HalfCheetah has one), deprecated in MuJoCo
    4, is applied the way MuJoCo advises instead: ``mj_setTotalmass`` and ``mj_setConst``
    on the compiled model, which gives the same model, without the warning.

    Raises:
        MorphologyError: MuJoCo cannot compile it.
    """
    total = getattr(spec.compiler, "settotalmass", -1.0)
    if total > 0:
        spec.compiler.settotalmass = -1.0
    try:
        model = spec.compile()
    except Exception as exc:  # MuJoCo raises ValueError with its own message
        raise MorphologyError(f"{label}: cannot compile: {one_line(exc)}") from exc
    if total > 0:
        mujoco.mj_setTotalmass(model, total)
        mujoco.mj_setConst(model, mujoco.MjData(model))
    return model


def load_spec(source: str | Path) -> mujoco.MjSpec:
    """Parse an MJCF file (path) or MJCF text into an editable ``MjSpec``."""
    text = _is_xml_text(source)
    try:
        if text:
            return mujoco.MjSpec.from_string(str(source))
        path = Path(source)
        if path.is_dir():
            raise MorphologyError(f"{path}: a folder; name one robot file in it")
        if not path.is_file():
            raise MorphologyError(f"{path}: no such robot file")
        return mujoco.MjSpec.from_file(str(path))
    except MorphologyError:
        raise
    except Exception as exc:
        raise MorphologyError(f"{_label(source)}: malformed MJCF: {one_line(exc)}") from exc


def robot_name(source: str | Path, model: mujoco.MjModel | None = None) -> str:
    """A display name: the file stem for a path, else the model name."""
    if not _is_xml_text(source):
        return Path(source).stem
    if model is not None:
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MODEL, 0)
        if name:
            return name
    return "robot"


def parse_robot(
    model: mujoco.MjModel, *, name: str | None = None, max_limbs: int | None = MAX_LIMBS
) -> Robot:
    """Read the robot in a compiled model.

    Args:
        model: Compiled model; it may hold other things too (floor, lights, static geoms).
        name: Display name; defaults to the model name.
        max_limbs: Refuse robots with more limbs than this (None: no limit).

    Raises:
        MorphologyError: The model is not a supported tree-structured robot.
    """
    name = name or mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MODEL, 0) or "robot"
    _check_finite(model, name)
    root = _find_root(model, name)
    limbs = _build_limbs(model, root, name)
    if max_limbs is not None and len(limbs) > max_limbs:
        raise MorphologyError(f"{name}: {len(limbs)} limbs, more than the maximum of {max_limbs}")
    n = len(limbs)
    slot_qpos = -np.ones((n, JOINT_SLOTS), dtype=np.int64)
    slot_dof = -np.ones((n, JOINT_SLOTS), dtype=np.int64)
    slot_range = np.zeros((n, JOINT_SLOTS, 2), dtype=np.float64)
    joint_to_slot: dict[int, tuple[int, int]] = {}
    for li, limb in enumerate(limbs):
        for si, j in enumerate(limb.joint_ids):
            slot_qpos[li, si] = model.jnt_qposadr[j]
            slot_dof[li, si] = model.jnt_dofadr[j]
            slot_range[li, si] = model.jnt_range[j] if model.jnt_limited[j] else (-np.pi, np.pi)
            joint_to_slot[j] = (li, si)
    act_limb, act_slot = _map_actuators(model, joint_to_slot, name)
    ctrl_range = np.array(
        [
            model.actuator_ctrlrange[a] if model.actuator_ctrllimited[a] else (-1.0, 1.0)
            for a in range(model.nu)
        ],
        dtype=np.float64,
    ).reshape(model.nu, 2)
    robot_fields = dict(
        name=name,
        limbs=tuple(limbs),
        root_body=root,
        root_height=float(model.body_pos[root, 2]),
        actuator_ids=np.arange(model.nu),
        actuator_limb=np.array(act_limb, dtype=np.int64),
        actuator_slot=np.array(act_slot, dtype=np.int64),
        ctrl_range=ctrl_range,
        gear=model.actuator_gear[:, 0].astype(np.float64).copy(),
        actuator_names=tuple(
            mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a) or f"actuator{a}"
            for a in range(model.nu)
        ),
        slot_qpos=slot_qpos,
        slot_dof=slot_dof,
        slot_range=slot_range,
        body_ids=np.array([limb.body_id for limb in limbs], dtype=np.int64),
    )
    return Robot(fingerprint=_fingerprint(model, limbs, robot_fields), **robot_fields)


def robot_fingerprint(source: str | Path) -> str:
    """The fingerprint of an MJCF file or text (:attr:`Robot.fingerprint`; about 15 ms).

    Raises:
        MorphologyError: The robot cannot be read or is unsupported.
    """
    model = load_model(source)
    return parse_robot(model, name=robot_name(source, model), max_limbs=None).fingerprint


# --- numbers -----------------------------------------------------------------------

# (element, attribute as written in MJCF, model array, object type naming the row)
_FINITE_FIELDS = (
    ("body", "pos", "body_pos", mujoco.mjtObj.mjOBJ_BODY),
    ("body", "quat", "body_quat", mujoco.mjtObj.mjOBJ_BODY),
    ("body", "mass", "body_mass", mujoco.mjtObj.mjOBJ_BODY),
    ("body", "diaginertia", "body_inertia", mujoco.mjtObj.mjOBJ_BODY),
    ("body", "ipos", "body_ipos", mujoco.mjtObj.mjOBJ_BODY),
    ("body", "iquat", "body_iquat", mujoco.mjtObj.mjOBJ_BODY),
    ("geom", "size", "geom_size", mujoco.mjtObj.mjOBJ_GEOM),
    ("geom", "pos", "geom_pos", mujoco.mjtObj.mjOBJ_GEOM),
    ("geom", "quat", "geom_quat", mujoco.mjtObj.mjOBJ_GEOM),
    ("geom", "friction", "geom_friction", mujoco.mjtObj.mjOBJ_GEOM),
    ("joint", "axis", "jnt_axis", mujoco.mjtObj.mjOBJ_JOINT),
    ("joint", "range", "jnt_range", mujoco.mjtObj.mjOBJ_JOINT),
    ("joint", "pos", "jnt_pos", mujoco.mjtObj.mjOBJ_JOINT),
    ("joint", "stiffness", "jnt_stiffness", mujoco.mjtObj.mjOBJ_JOINT),
    ("joint", "damping", "dof_damping", None),
    ("joint", "armature", "dof_armature", None),
    ("joint", "frictionloss", "dof_frictionloss", None),
    ("motor", "gear", "actuator_gear", mujoco.mjtObj.mjOBJ_ACTUATOR),
    ("motor", "ctrlrange", "actuator_ctrlrange", mujoco.mjtObj.mjOBJ_ACTUATOR),
    ("motor", "forcerange", "actuator_forcerange", mujoco.mjtObj.mjOBJ_ACTUATOR),
)


def _check_finite(model: mujoco.MjModel, name: str) -> None:
    """Refuse a model with a NaN or infinite number in anything the toolkit or the task
    reads, naming the element and attribute (MuJoCo compiles such files without a word)."""
    if not np.isfinite(model.opt.timestep) or model.opt.timestep <= 0:
        raise MorphologyError(f"{name}: option timestep must be a positive number")
    for element, attr, array_name, obj in _FINITE_FIELDS:
        values = np.asarray(getattr(model, array_name))
        if values.size == 0:
            continue
        bad = np.nonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))[0]
        if len(bad) == 0:
            continue
        row = int(bad[0])
        if obj is None:  # per degree of freedom: name the joint
            row, obj = int(model.dof_jntid[row]), mujoco.mjtObj.mjOBJ_JOINT
        label = mujoco.mj_id2name(model, obj, row) or f"#{row}"
        shown = " ".join(f"{v:g}" for v in np.ravel(values[bad[0]]))
        raise MorphologyError(
            f"{name}: {element} '{label}' has a non-finite {attr} ({shown}); "
            "every number must be finite"
        )


# --- tree walking -----------------------------------------------------------------


def _find_root(model: mujoco.MjModel, name: str) -> int:
    top = [b for b in range(1, model.nbody) if model.body_parentid[b] == 0]
    jointed = [b for b in top if _subtree_has_joint(model, b)]
    if not jointed:
        raise MorphologyError(f"{name}: no movable body (no joints under the world body)")
    if len(jointed) > 1:
        names = ", ".join(_body_name(model, b) for b in jointed)
        raise MorphologyError(f"{name}: several movable top-level bodies ({names}); one robot only")
    return jointed[0]


def _subtree_has_joint(model: mujoco.MjModel, body: int) -> bool:
    in_tree = model.body_rootid == model.body_rootid[body]
    return bool(np.any(model.body_jntnum[in_tree] > 0))


def _build_limbs(model: mujoco.MjModel, root: int, name: str) -> list[Limb]:
    body_limb: dict[int, int] = {root: 0}
    bodies: list[list[int]] = [[root]]
    mains = [root]
    parents = [-1]
    joints: list[tuple[int, ...]] = [()]
    # MuJoCo numbers bodies depth-first, so a parent always precedes its children.
    for b in range(root + 1, model.nbody):
        if model.body_rootid[b] != root:
            continue
        parent_limb = body_limb[int(model.body_parentid[b])]
        hinges = _limb_hinges(model, b, name)
        if not hinges:
            body_limb[b] = parent_limb
            bodies[parent_limb].append(b)
            continue
        body_limb[b] = len(mains)
        mains.append(b)
        bodies.append([b])
        parents.append(parent_limb)
        joints.append(hinges)
    return [
        Limb(
            name=_body_name(model, mains[i]),
            body_id=mains[i],
            parent=parents[i],
            body_ids=tuple(bodies[i]),
            joint_ids=joints[i],
        )
        for i in range(len(mains))
    ]


def _limb_hinges(model: mujoco.MjModel, body: int, name: str) -> tuple[int, ...]:
    start, count = model.body_jntadr[body], model.body_jntnum[body]
    hinges = []
    for j in range(start, start + count):
        kind = model.jnt_type[j]
        if int(kind) != int(mujoco.mjtJoint.mjJNT_HINGE):
            kind_name = mujoco.mjtJoint(kind).name.removeprefix("mjJNT_").lower()
            raise MorphologyError(
                f"{name}: joint '{_joint_name(model, j)}' on body '{_body_name(model, body)}' "
                f"is a {kind_name} joint; limbs support hinge joints only"
            )
        hinges.append(j)
    if len(hinges) > JOINT_SLOTS:
        raise MorphologyError(
            f"{name}: body '{_body_name(model, body)}' has {len(hinges)} hinge joints; "
            f"at most {JOINT_SLOTS} per body are supported"
        )
    return tuple(hinges)


def _map_actuators(
    model: mujoco.MjModel, joint_to_slot: dict[int, tuple[int, int]], name: str
) -> tuple[list[int], list[int]]:
    if model.nu == 0:
        raise MorphologyError(f"{name}: no actuators")
    limbs: list[int] = []
    slots: list[int] = []
    seen: dict[int, str] = {}
    for a in range(model.nu):
        act = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a) or f"#{a}"
        if int(model.actuator_trntype[a]) != int(mujoco.mjtTrn.mjTRN_JOINT):
            trn = mujoco.mjtTrn(model.actuator_trntype[a]).name.removeprefix("mjTRN_").lower()
            raise MorphologyError(
                f"{name}: actuator '{act}' uses a {trn} transmission; only joint actuators "
                "are supported"
            )
        j = int(model.actuator_trnid[a, 0])
        if j not in joint_to_slot:
            raise MorphologyError(
                f"{name}: actuator '{act}' drives '{_joint_name(model, j)}', which is not a "
                "limb hinge (root joints are the unactuated base)"
            )
        if j in seen:
            raise MorphologyError(
                f"{name}: actuators '{seen[j]}' and '{act}' drive the same joint "
                f"'{_joint_name(model, j)}'"
            )
        seen[j] = act
        li, si = joint_to_slot[j]
        limbs.append(li)
        slots.append(si)
    return limbs, slots


def _fingerprint(model: mujoco.MjModel, limbs: list[Limb], fields: dict) -> str:
    """Hash of the robot's structure: tree, geometry, inertia, joints, actuators."""
    h = hashlib.sha256()

    def put(*values: object) -> None:
        for v in values:
            if isinstance(v, np.ndarray | list | tuple):
                h.update(",".join(f"{float(x):.5g}" for x in np.ravel(v)).encode())
            else:
                h.update(str(v).encode())
            h.update(b";")

    for limb in limbs:
        put("limb", limb.name, limb.parent)
        for b in limb.body_ids:
            put(model.body_pos[b], model.body_quat[b], model.body_mass[b])
            for g in range(model.body_geomadr[b], model.body_geomadr[b] + model.body_geomnum[b]):
                put(model.geom_type[g], model.geom_size[g], model.geom_pos[g])
        for j in limb.joint_ids:
            put("joint", model.jnt_axis[j], model.jnt_range[j], model.jnt_pos[j])
    put("act", fields["actuator_limb"], fields["actuator_slot"], fields["gear"])
    put(fields["ctrl_range"])
    return h.hexdigest()[:16]


def _body_name(model: mujoco.MjModel, b: int) -> str:
    return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or f"body{b}"


def _joint_name(model: mujoco.MjModel, j: int) -> str:
    return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"


def _is_xml_text(source: str | Path) -> bool:
    return isinstance(source, str) and source.lstrip().startswith("<")


def _label(source: str | Path) -> str:
    return "<MJCF text>" if _is_xml_text(source) else str(source)
