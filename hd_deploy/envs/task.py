"""Flat-terrain locomotion, MetaMorph style (numpy + mujoco only).

The task definition used everywhere: training workers, evaluation, and the robot-side
runtime. A ground plane is added to the robot programmatically; the reward is the torso's
forward x-velocity; an episode ends when the torso falls below MetaMorph's threshold or
the simulation becomes unstable.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from hd_deploy.errors import ConfigError
from hd_deploy.morphology.features import Proprioception, context
from hd_deploy.morphology.nearness import pad_context
from hd_deploy.morphology.robot import (
    JOINT_SLOTS,
    MAX_LIMBS,
    Robot,
    compile_spec,
    load_spec,
    parse_robot,
    robot_name,
)

_DIVERGENCE_WARNINGS = np.array(
    [
        mujoco.mjtWarning.mjWARN_BADQPOS,
        mujoco.mjtWarning.mjWARN_BADQVEL,
        mujoco.mjtWarning.mjWARN_BADQACC,
    ],
    dtype=np.int64,
)


def finite_state(data: mujoco.MjData) -> bool:
    """Whether ``qpos`` and ``qvel`` are finite (a sum is NaN or inf when any term is)."""
    return math.isfinite(float(data.qpos.sum()) + float(data.qvel.sum()))


def divergence_warnings(data: mujoco.MjData) -> int:
    """How often MuJoCo warned of a diverging simulation (bad qpos, qvel or qacc) and reset
    it; the counters restart with ``mj_resetData``, so a reset is also seen as its time
    going back."""
    return int(data.warning.number[_DIVERGENCE_WARNINGS].sum())


_HEADLESS_TEXELS = 4
FLOOR_MATERIAL = "hd_floor_grid"  # the added floor's texture and material


@dataclass(frozen=True)
class TaskConfig:
    """Locomotion task settings (DESIGN.md)."""

    # timing
    timestep: float = 0.005
    frame_skip: int = 4
    episode_steps: int = 1000
    # reset and termination
    reset_noise: float = 5e-3
    drop_clearance: float = 0.2
    fall_fraction: float = 0.5
    # padding for universal policies
    max_limbs: int = MAX_LIMBS

    def __post_init__(self) -> None:
        if self.timestep <= 0:
            raise ConfigError(f"timestep must be > 0, got {self.timestep}")
        if self.frame_skip < 1:
            raise ConfigError(f"frame_skip must be >= 1, got {self.frame_skip}")
        if self.episode_steps < 1:
            raise ConfigError(f"episode_steps must be >= 1, got {self.episode_steps}")
        if self.reset_noise < 0:
            raise ConfigError(f"reset_noise must be >= 0, got {self.reset_noise}")

    @property
    def control_dt(self) -> float:
        return self.timestep * self.frame_skip


def build_model(
    source: str | Path,
    *,
    config: TaskConfig = TaskConfig(),
    name: str | None = None,
    headless: bool = False,
) -> tuple[mujoco.MjModel, Robot]:
    """Compile a robot with a ground plane and the task's timestep.

    Args:
        source: MJCF path or text.
        config: Task settings (timestep, maximum limbs).
        name: Display name; defaults to the file stem or model name.
        headless: Shrink procedural textures to a few texels: a model that is never
            drawn then holds about 40 KB instead of 13.6 MB (a UNIMAL robot's skybox and
            floor textures), which decides whether a worker can hold 1000 robots.

    Raises:
        MorphologyError: The robot cannot be read or is unsupported.
    """
    spec = load_spec(source)
    spec.option.timestep = config.timestep
    if not _has_floor(spec):  # a robot file that brings its own floor keeps it, alone
        _add_floor(spec)
    if headless:
        for texture in spec.textures:
            if texture.builtin != mujoco.mjtBuiltin.mjBUILTIN_NONE:
                texture.width = texture.height = _HEADLESS_TEXELS
    model = compile_spec(spec, robot_name(source))
    robot = parse_robot(model, name=name or robot_name(source, model), max_limbs=config.max_limbs)
    return model, robot


def _has_floor(spec: mujoco.MjSpec) -> bool:
    """Whether the world body holds a plane geom already (gymnasium's Ant and Hopper do)."""
    return any(g.type == mujoco.mjtGeom.mjGEOM_PLANE for g in spec.worldbody.geoms)


def _add_floor(spec: mujoco.MjSpec) -> None:
    """A plane with dm_control's grid look: 0.5 m checker squares and a light line every
    metre show in a video how far and how fast the robot moves. The texture and material
    change only how it is drawn; their names cannot clash with a robot's own assets
    (UNIMAL robots bring a ``grid``)."""
    spec.add_texture(
        name=FLOOR_MATERIAL,
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.1, 0.2, 0.3],
        rgb2=[0.2, 0.3, 0.4],
        width=300,
        height=300,
        mark=mujoco.mjtMark.mjMARK_EDGE,
        markrgb=[0.8, 0.8, 0.8],
    )
    material = spec.add_material(
        name=FLOOR_MATERIAL, texrepeat=[1.0, 1.0], texuniform=True, reflectance=0.2
    )
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = FLOOR_MATERIAL
    spec.worldbody.add_geom(
        name="hd_floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[50.0, 50.0, 0.1],
        material=FLOOR_MATERIAL,
        condim=3,
        friction=[1.0, 0.005, 0.0001],
    )


REST_CHECK_STEPS = 100


def check_at_rest(
    model: mujoco.MjModel, robot: Robot, *, steps: int = REST_CHECK_STEPS, frame_skip: int = 4
) -> None:
    """Refuse a robot whose simulation diverges at rest or under its own motors.

    ``steps`` control steps: the first half with zero controls, the rest with random
    controls inside each ctrlrange. Finite but absurd numbers (a gear of 1e30, a
    near-zero mass with a large inertia) pass every per-field check and only show when
    simulated; a user-facing command runs this once per robot (about 20 ms), the trainers
    do not.

    Raises:
        MorphologyError: The state became non-finite or MuJoCo had to reset it; the message
            names the joint that moved fastest just before.
    """
    from hd_deploy.morphology.errors import MorphologyError

    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    rng = np.random.default_rng(0)
    low, high = robot.ctrl_range[:, 0], robot.ctrl_range[:, 1]

    def joint_of(values: np.ndarray) -> str | None:
        magnitude = np.abs(np.nan_to_num(values, nan=np.inf))
        if not magnitude.size or not magnitude.any():
            return None
        dof = int(np.argmax(magnitude))
        return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, int(model.dof_jntid[dof]))

    for step in range(steps):
        before = data.qvel.copy()
        # Half the steps at rest, then under random controls of its own motors.
        ctrl = np.zeros(model.nu) if step < steps // 2 else rng.uniform(low, high)
        data.ctrl[:] = ctrl
        t0 = data.time
        mujoco.mj_step(model, data, nstep=frame_skip)
        if not finite_state(data) or data.time < t0 or divergence_warnings(data):
            effort = np.abs(model.actuator_gear[:, 0] * ctrl)  # MuJoCo's reset zeroed data.ctrl
            pushed = None
            if effort.size and effort.max() > 0:
                joint = int(model.actuator_trnid[int(np.argmax(effort)), 0])
                pushed = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
            fastest = joint_of(before)
            parts = [f"largest motor force on '{pushed}'"] if pushed else []
            parts += [f"fastest joint '{fastest}'"] if fastest else []
            where = f" ({', '.join(parts)})" if parts else ""
            how = "at rest" if step < steps // 2 else "under random controls"
            raise MorphologyError(
                f"{robot.name}: the simulation diverges {how} after {step + 1} control "
                f"steps{where}; check its gear, mass, inertia, damping and timestep"
            )


@dataclass(frozen=True)
class StepResult:
    """What one control step produced."""

    reward: float
    terminated: bool
    truncated: bool
    unstable: bool


class LocomotionTask:
    """One robot on flat ground; steps with controls in actuator order.

    Args:
        source: MJCF path or text.
        config: Task settings.
        name: Display name.
        headless: The model is never rendered (see :func:`build_model`).
    """

    def __init__(
        self,
        source: str | Path,
        *,
        config: TaskConfig = TaskConfig(),
        name: str | None = None,
        headless: bool = False,
    ) -> None:
        self.config = config
        self.model, self.robot = build_model(source, config=config, name=name, headless=headless)
        self.data = mujoco.MjData(self.model)
        self.context = context(self.robot, self.model)
        self._observe = Proprioception(self.robot, self.model)
        r = self.robot
        self._act_at = r.actuator_limb * JOINT_SLOTS + r.actuator_slot  # into (limbs * 2)
        self._ctrl_low = r.ctrl_range[:, 0].copy()
        self._ctrl_half = 0.5 * (r.ctrl_range[:, 1] - r.ctrl_range[:, 0])
        self._root = int(r.root_body)
        self.fall_height = config.fall_fraction * (self.robot.root_height - config.drop_clearance)
        self.steps = 0
        self.physics_ns = 0
        mujoco.mj_forward(self.model, self.data)

    def fork(self) -> LocomotionTask:
        """A task on the same compiled robot with its own simulation state."""
        twin = copy.copy(self)  # shares the model and everything derived from it
        twin.steps = 0
        twin.data = mujoco.MjData(self.model)
        mujoco.mj_forward(twin.model, twin.data)
        return twin

    def padded_context(self) -> tuple[np.ndarray, np.ndarray]:
        """The context padded to ``config.max_limbs`` rows, and the mask of real limbs.

        Returns:
            ``(max_limbs, context_dim)`` float32 (zero rows past the robot's limbs) and
            ``(max_limbs,)`` bool.
        """
        rows = self.config.max_limbs
        return pad_context(self.context, rows), self.robot.limb_mask(rows)

    @property
    def torso_x(self) -> float:
        return float(self.data.xpos[self.robot.root_body, 0])

    @property
    def torso_height(self) -> float:
        return float(self.data.xpos[self.robot.root_body, 2])

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        """Reset with uniform noise on qpos and qvel; returns proprio ``(n_limbs, 17)``."""
        m, d, c = self.model, self.data, self.config.reset_noise
        mujoco.mj_resetData(m, d)
        d.qpos[:] = m.qpos0 + rng.uniform(-c, c, size=m.nq)
        d.qvel[:] = rng.uniform(-c, c, size=m.nv)
        mujoco.mj_forward(m, d)
        self.steps = 0
        return self.observe()

    def observe(self) -> np.ndarray:
        """Proprioceptive observation, shape ``(n_limbs, 17)``."""
        return self._observe(self.data)

    def actions_to_ctrl(self, actions: np.ndarray) -> np.ndarray:
        """Per-slot actions ``(>= n_limbs, 2)`` in [-1, 1] to controls in actuator order.

        The same map as :meth:`Robot.actions_to_ctrl`, with its indices computed once.
        """
        a = actions.reshape(-1)[self._act_at]
        return self._ctrl_low + (np.minimum(np.maximum(a, -1.0), 1.0) + 1.0) * self._ctrl_half

    def step(self, ctrl: np.ndarray) -> StepResult:
        """Apply controls (actuator order, already in ctrlrange) for one control step."""
        m, d = self.model, self.data
        x_before, sim_time = d.xpos[self._root, 0], d.time
        if not np.isfinite(ctrl).all():
            ctrl = np.zeros(m.nu)
        d.ctrl[:] = ctrl
        t0 = time.perf_counter_ns()
        mujoco.mj_step(m, d, nstep=self.config.frame_skip)
        self.physics_ns = time.perf_counter_ns() - t0  # this step's mj_step calls alone
        self.steps += 1
        # MuJoCo resets a diverged simulation by itself (its time goes back) and warns.
        if not finite_state(d) or d.time < sim_time or divergence_warnings(d):
            return StepResult(0.0, True, False, True)
        xpos = d.xpos[self._root]
        reward = (xpos[0] - x_before) / self.config.control_dt
        fallen = xpos[2] < self.fall_height
        truncated = self.steps >= self.config.episode_steps
        return StepResult(float(reward), bool(fallen), bool(truncated and not fallen), False)


def stands_unpowered(source: str | Path, steps: int, *, config: TaskConfig = TaskConfig()) -> bool:
    """Whether the robot, dropped on the floor with every motor off, is still up (no fall
    termination, no divergence) after ``steps`` control steps (reset noise of seed 0).

    Most UNIMAL robots pass (they were evolved to walk); many random ones of the same
    grammar fold under their own weight within a second, where no controller can do much.
    """
    task = LocomotionTask(source, config=config, headless=True)
    task.reset(np.random.default_rng(0))
    zero = np.zeros(task.model.nu)
    for _ in range(steps):
        result = task.step(zero)
        if result.terminated or result.unstable:
            return False
    return True
