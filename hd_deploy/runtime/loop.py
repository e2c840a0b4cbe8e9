"""The control loop a robot program embeds: observe, act, actuate, step.

A few lines on top of a user's own ``MjModel`` / ``MjData``::

    from hd_deploy.runtime import ControlLoop, load_controller

    loop = ControlLoop(load_controller("gen-1.onnx"), model, data)
    while running:
        loop.step()  # obs -> controller.act -> data.ctrl -> mj_step x frame_skip
    print(loop.latency_us())

The loop refuses a controller exported for another robot (by fingerprint), never lets a
non-finite observation or control reach the actuators (it applies zero control and counts
the event), and never looks at which backend runs the controller.
"""

from __future__ import annotations

import time
from typing import Any

import mujoco
import numpy as np

from hd_deploy.envs.task import divergence_warnings, finite_state
from hd_deploy.morphology.features import PROPRIO_DIM, Proprioception
from hd_deploy.morphology.robot import Robot, parse_robot
from hd_deploy.runtime import native as c_native
from hd_deploy.runtime import native_step
from hd_deploy.runtime.controllers import Controller
from hd_deploy.runtime.metadata import ControllerError

LATENCY_WINDOW = 100_000


class ObservationBuilder:
    """Flat observation of a robot in a compiled model, as the controllers expect it.

    Computed in C (:class:`~hd_deploy.runtime.native_step.NativeObservation`, one call) when a C
    compiler is present, else with numpy (:class:`~hd_deploy.morphology.features.
    Proprioception`); both give the same values to float32 rounding.

    Args:
        robot: The robot, parsed from ``model``.
        model: The compiled model.
        data: Its simulation state.
        native: Use the C observation (None: when available).
    """

    def __init__(
        self,
        robot: Robot,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        *,
        native: bool | None = None,
    ) -> None:
        self.robot, self.model, self.data = robot, model, data
        self.obs_dim = robot.n_limbs * PROPRIO_DIM
        self.native = native_step.available() if native is None else native
        self._observe = (
            native_step.NativeObservation(robot, model)
            if self.native
            else Proprioception(robot, model)
        )

    @property
    def native_observation(self) -> native_step.NativeObservation | None:
        """The C observation in use, or None (numpy)."""
        return self._observe if isinstance(self._observe, native_step.NativeObservation) else None

    def __call__(self) -> np.ndarray:
        """Current observation, shape ``(n_limbs * 17,)`` float32, limb-major."""
        return self._observe(self.data).reshape(self.obs_dim)

    def checked(self) -> tuple[bool, np.ndarray]:
        """``(finite, observation)``: whether the state itself (``qpos``, ``qvel``) and the
        observation are finite. The observation comes from quantities derived before the
        state was last written, so a non-finite state can hide behind a finite one."""
        if isinstance(self._observe, native_step.NativeObservation):
            ok, obs = self._observe.checked(self.data)
            return ok, obs.reshape(self.obs_dim)
        state_ok = finite_state(self.data)
        obs = self()
        return state_ok and bool(np.isfinite(obs).all()), obs


class ControlLoop:
    """Run a controller on a robot simulated in the caller's ``MjModel`` / ``MjData``.

    Args:
        controller: Any :class:`~hd_deploy.runtime.Controller` (onnx, numpy, torch).
        model: The compiled model holding the robot (and whatever else the caller adds).
        data: Its simulation state; :meth:`step` advances it.
        allow_mismatch: Run a controller whose robot fingerprint or timestep differs from
            this model's; observation and control sizes must still agree.
        name: Robot name for messages (default: the model name).
        native: Compute the observation in C (None: when a compiler is present).
        fuse: With the ``c`` backend and the C observation, run each step's observation,
            policy and guards in one C call (:class:`~hd_deploy.runtime.native_step.
            FusedControl`; the same values, timings and counters).

    Raises:
        ControllerError: The controller was exported for another robot (fingerprints
            differ) or another timestep and ``allow_mismatch`` is False, or sizes differ.
        MorphologyError: The model holds no supported robot.
    """

    def __init__(
        self,
        controller: Controller,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        *,
        allow_mismatch: bool = False,
        name: str | None = None,
        native: bool | None = None,
        fuse: bool = True,
    ) -> None:
        self.controller, self.model, self.data = controller, model, data
        self.robot = parse_robot(model, name=name, max_limbs=None)
        meta = controller.metadata
        _check_match(self.robot, model, meta, allow_mismatch=allow_mismatch)
        self.frame_skip = int(meta["frame_skip"])
        self.observe = ObservationBuilder(self.robot, model, data, native=native)
        self._zero = np.zeros(self.robot.n_actuators, dtype=np.float32)
        self._ctrl_low = self.robot.ctrl_range[:, 0].astype(np.float32)
        self._ctrl_high = self.robot.ctrl_range[:, 1].astype(np.float32)
        self._latency_ns = np.zeros(LATENCY_WINDOW, dtype=np.int64)
        self._obs_ns = np.zeros(LATENCY_WINDOW, dtype=np.int64)
        self._physics_ns = np.zeros(LATENCY_WINDOW, dtype=np.int64)
        self._fused = self._fuse() if fuse else None
        self.reset_stats()
        mujoco.mj_forward(model, data)

    def _fuse(self) -> native_step.FusedControl | None:
        """The whole step in one C call, when both the controller (``c`` backend) and the
        observation are native; the same guards, values and timings as the Python path."""
        library = getattr(self.controller, "library", None)
        observation = self.observe.native_observation
        if not isinstance(library, c_native.SharedController) or observation is None:
            return None
        try:
            return native_step.FusedControl(
                library, observation, self.data, self._ctrl_low, self._ctrl_high
            )
        except c_native.NativeError:  # e.g. a model with more actuators than the robot's
            return None

    @property
    def fused(self) -> bool:
        """Whether a step is one C call (observation, policy and guards together)."""
        return self._fused is not None

    def reset(self) -> None:
        """Start a new episode: reset the controller and recompute derived state.

        Call after changing ``data`` (e.g. ``mj_resetData``); statistics are kept.
        """
        self.controller.reset()
        mujoco.mj_forward(self.model, self.data)

    def reset_stats(self) -> None:
        """Clear latency samples and event counters."""
        self.policy_calls = 0
        self.observations = 0
        self.physics_steps = 0
        self.steps = 0
        self.nonfinite_obs_events = 0
        self.nonfinite_ctrl_events = 0
        self.clipped_ctrl_events = 0
        self.diverged_events = 0
        self.last_step_flagged = False
        self._warnings = divergence_warnings(self.data)

    @property
    def nonfinite_events(self) -> int:
        """Steps whose observation or controller output was not finite (zero control sent)."""
        return self.nonfinite_obs_events + self.nonfinite_ctrl_events

    def control(self) -> np.ndarray:
        """Guarded controls for the current state, shape ``(n_actuators,)``; does not step.

        A non-finite state (``qpos``, ``qvel``) or observation is not given to the
        controller and a non-finite output is not returned: both give zero control and set
        :attr:`last_step_flagged`. Outputs outside an actuator's ctrlrange are clipped to
        it and counted in :attr:`clipped_ctrl_events`.
        """
        if self._fused is not None:
            return self._fused_control(write=False)
        t0 = time.perf_counter_ns()
        ok, obs = self.observe.checked()
        self._obs_ns[self.observations % LATENCY_WINDOW] = time.perf_counter_ns() - t0
        self.observations += 1
        if not ok:
            self.nonfinite_obs_events += 1
            self.last_step_flagged = True
            return self._zero.copy()
        t0 = time.perf_counter_ns()
        ctrl = self.controller.act(obs)
        dt = time.perf_counter_ns() - t0
        self._latency_ns[self.policy_calls % LATENCY_WINDOW] = dt
        self.policy_calls += 1
        if not np.isfinite(ctrl).all():
            self.nonfinite_ctrl_events += 1
            self.last_step_flagged = True
            return self._zero.copy()
        if np.any(ctrl < self._ctrl_low) or np.any(ctrl > self._ctrl_high):
            self.clipped_ctrl_events += 1
            ctrl = np.clip(ctrl, self._ctrl_low, self._ctrl_high)
        self.last_step_flagged = False
        return ctrl

    def step(self) -> np.ndarray:
        """One control step: controls into ``data.ctrl``, then ``frame_skip`` physics steps.

        A simulation that MuJoCo found diverging (and reset by itself, with a warning) is
        counted in :attr:`diverged_events` and flags the step.

        Returns:
            The controls applied, shape ``(n_actuators,)``.
        """
        if self._fused is not None:
            ctrl = self._fused_control(write=True)
        else:
            ctrl = self.control()
            self.data.ctrl[:] = ctrl
        sim_time = self.data.time
        t0 = time.perf_counter_ns()
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self.record_physics(time.perf_counter_ns() - t0, reset=self.data.time < sim_time)
        self.steps += 1
        return ctrl

    def _fused_control(self, *, write: bool) -> np.ndarray:
        fused = self._fused
        assert fused is not None
        t0 = time.perf_counter_ns()
        status = fused(write=write)
        total = time.perf_counter_ns() - t0
        # the call's own cost (ctypes, Python) is charged to the policy: the two stages add
        # up to the step's whole time, as on the Python path
        obs_ns = total if status == native_step.CONTROL_BAD_OBS else min(int(fused.ns[0]), total)
        self._obs_ns[self.observations % LATENCY_WINDOW] = obs_ns
        self.observations += 1
        bad = (native_step.CONTROL_BAD_OBS, native_step.CONTROL_BAD_CTRL)
        self.last_step_flagged = status in bad
        if status == native_step.CONTROL_BAD_OBS:
            self.nonfinite_obs_events += 1
            return self._zero.copy()
        self._latency_ns[self.policy_calls % LATENCY_WINDOW] = total - obs_ns
        self.policy_calls += 1
        if status == native_step.CONTROL_BAD_CTRL:
            self.nonfinite_ctrl_events += 1
            return self._zero.copy()
        if status == native_step.CONTROL_CLIPPED:
            self.clipped_ctrl_events += 1
        return fused.ctrl.copy()

    def record_physics(self, ns: int, *, reset: bool = False) -> None:
        """Count one control step's physics (``ns`` nanoseconds) stepped outside :meth:`step`
        and check MuJoCo's divergence warnings (``reset``: its time went back to 0)."""
        self._physics_ns[self.physics_steps % LATENCY_WINDOW] = ns
        self.physics_steps += 1
        warnings = divergence_warnings(self.data)
        if reset or warnings > self._warnings:
            self.diverged_events += 1
            self.last_step_flagged = True
        self._warnings = warnings

    def stage_us(self) -> dict[str, dict[str, float]]:
        """p50 and p99 per control step, microseconds: observation, policy, physics."""
        return {
            "obs": _percentiles(self._obs_ns, self.observations),
            "policy": _percentiles(self._latency_ns, self.policy_calls),
            "physics": _percentiles(self._physics_ns, self.physics_steps),
        }

    def latency_us(self) -> dict[str, Any]:
        """Policy-call latency over the last calls (up to 100k): p50, p99, mean (us), calls."""
        n = min(self.policy_calls, LATENCY_WINDOW)
        if n == 0:
            return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan"), "calls": 0}
        us = self._latency_ns[:n] / 1e3
        p50, p99 = np.percentile(us, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "mean": float(us.mean()), "calls": n}


def _percentiles(ns: np.ndarray, count: int) -> dict[str, float]:
    n = min(count, LATENCY_WINDOW)
    if n == 0:
        return {"p50": float("nan"), "p99": float("nan")}
    p50, p99 = np.percentile(ns[:n] / 1e3, [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


def _check_match(
    robot: Robot, model: mujoco.MjModel, meta: dict[str, Any], *, allow_mismatch: bool
) -> None:
    ours = f"robot '{robot.name}' (fingerprint {robot.fingerprint})"
    theirs = (
        f"the controller's robot '{meta['robot_name']}' (fingerprint {meta['robot_fingerprint']})"
    )
    if robot.fingerprint != meta["robot_fingerprint"] and not allow_mismatch:
        raise ControllerError(
            f"{ours} does not match {theirs}; to run it anyway, pass allow_mismatch=True "
            "(hd-run: --allow-mismatch)"
        )
    timestep = float(model.opt.timestep)
    if not np.isclose(timestep, meta["sim_timestep"], rtol=1e-9, atol=0.0) and not allow_mismatch:
        raise ControllerError(
            f"{robot.name}: model timestep {timestep:g} s differs from the controller's "
            f"{meta['sim_timestep']:g} s (set model.opt.timestep, or pass allow_mismatch=True; "
            "hd-run: --allow-mismatch)"
        )
    obs_dim = robot.n_limbs * PROPRIO_DIM
    if obs_dim != meta["obs_dim"] or robot.n_actuators != meta["n_actuators"]:
        raise ControllerError(
            f"{ours} has {obs_dim} observations and {robot.n_actuators} actuators; "
            f"{theirs} needs {meta['obs_dim']} and {meta['n_actuators']}"
        )
