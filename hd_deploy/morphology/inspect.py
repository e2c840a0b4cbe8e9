"""What the toolkit sees in a robot, as a plain dict (``hd-inspect``)."""

from __future__ import annotations

import math
from pathlib import Path

from hd_deploy.envs.task import TaskConfig, build_model, check_at_rest
from hd_deploy.morphology.features import CONTEXT_DIM, PROPRIO_DIM


def describe_robot(source: str | Path, *, max_limbs: int = 12) -> dict:
    """Describe a robot: limbs, joint slots, actuators, sizes and fingerprint.

    Raises:
        MorphologyError: The robot cannot be read or is unsupported.
    """
    import mujoco

    model, robot = build_model(source, config=TaskConfig(max_limbs=max_limbs))
    check_at_rest(model, robot)
    acts: dict[tuple[int, int], dict] = {}
    for a in range(robot.n_actuators):
        key = (int(robot.actuator_limb[a]), int(robot.actuator_slot[a]))
        acts[key] = {"name": robot.actuator_names[a], "gear": float(robot.gear[a])}
    limbs = []
    for li, limb in enumerate(robot.limbs):
        slots = []
        for si, j in enumerate(limb.joint_ids):
            limited = bool(model.jnt_limited[j])
            lo, hi = (float(x) for x in model.jnt_range[j])
            slots.append(
                {
                    "joint": mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j),
                    "range_deg": [round(math.degrees(lo), 2), round(math.degrees(hi), 2)]
                    if limited
                    else None,
                    "axis": [round(float(x), 4) for x in model.jnt_axis[j]],
                    "actuator": acts.get((li, si)),
                }
            )  # fmt: skip
        limbs.append(
            {
                "index": li,
                "name": limb.name,
                "parent": None if limb.parent < 0 else robot.limbs[limb.parent].name,
                "welded_bodies": [
                    mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in limb.body_ids[1:]
                ],
                "joint_slots": slots,
            }
        )
    return {
        "name": robot.name,
        "n_limbs": robot.n_limbs,
        "n_actuators": robot.n_actuators,
        "obs_dim": robot.n_limbs * PROPRIO_DIM,
        "proprio_per_limb": PROPRIO_DIM,
        "context_dim": robot.n_limbs * CONTEXT_DIM,
        "context_per_limb": CONTEXT_DIM,
        "fingerprint": robot.fingerprint,
        "torso_height": robot.root_height,
        "actuators": list(robot.actuator_names),
        "limbs": limbs,
    }
