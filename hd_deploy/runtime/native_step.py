"""The observation and the whole control step in C, called through ctypes.

- :class:`NativeObservation` computes the per-limb observation in C straight from
  ``mjData``'s arrays: one call per control step instead of a dozen numpy operations. It
  is the definition of :class:`~hd_deploy.morphology.features.Proprioception` (equal to
  float32 rounding, tested on every UNIMAL robot), not a second one to keep in step.
- :class:`FusedControl` runs a compiled controller's whole guarded step (observation,
  policy, finiteness checks, ctrlrange clipping, ``mjData.ctrl``) in one call.

Built with :mod:`hd_deploy.runtime.native` (system compiler, content-keyed cache).
``HD_DEPLOY_NATIVE=0`` turns the native observation off.
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings
from typing import Any

import numpy as np

from hd_deploy.errors import HdWarning
from hd_deploy.runtime import native
from hd_deploy.runtime.c_sources import OBSERVATION_SOURCE
from hd_deploy.runtime.native import NativeError, SharedController

_DOUBLE_P, _INT_P = ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_int)


class _ObsCtx(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("n_limbs", "torso", "nq", "nv")]
    _fields_ += [(n, _INT_P) for n in ("body", "root", "qadr", "dadr")]
    _fields_ += [(n, _DOUBLE_P) for n in ("lo", "inv_span", "xpos", "xquat", "xipos", "cvel",
                                          "subtree_com", "qpos", "qvel")]  # fmt: skip


_OBSERVE: Any = None  # the loaded hd_observe, or False when it cannot be built


def _observe_fn() -> Any:
    """``hd_observe`` from the cached library, or None (no compiler, or turned off)."""
    global _OBSERVE
    if _OBSERVE is None:
        _OBSERVE = False
        if os.environ.get("HD_DEPLOY_NATIVE", "1") != "0" and native.find_compiler() is not None:
            try:
                lib = ctypes.CDLL(str(native.cached_library({"hd_observe.c": OBSERVATION_SOURCE})))
            except (NativeError, OSError) as exc:  # the numpy observation is the same one
                warnings.warn(
                    f"native observation unavailable, using numpy: {exc}", HdWarning, stacklevel=2
                )
                return None
            fn = lib.hd_observe
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            _OBSERVE = fn
    return _OBSERVE or None


class NativeObservation:
    """:class:`~hd_deploy.morphology.features.Proprioception` computed in C.

    Args:
        robot: The parsed robot (a :class:`~hd_deploy.morphology.robot.Robot`).
        model: Its compiled ``MjModel``.

    Raises:
        NativeError: No C compiler (or ``HD_DEPLOY_NATIVE=0``); see :func:`available`.
    """

    def __init__(self, robot: Any, model: Any) -> None:
        self._fn = _observe_fn()
        if self._fn is None:
            raise NativeError("the native observation needs a C compiler (set CC)")
        self.n_limbs = n = robot.n_limbs
        limb, slot = np.nonzero(robot.slot_qpos >= 0)
        lo = np.zeros((n, 2))
        span = np.ones((n, 2))
        lo[limb, slot] = robot.slot_range[limb, slot, 0]
        hi = robot.slot_range[limb, slot, 1]
        span[limb, slot] = 1.0 / np.where(hi > lo[limb, slot], hi - lo[limb, slot], 1.0)
        qadr = np.where(robot.slot_qpos >= 0, robot.slot_qpos, -1)
        dadr = np.where(robot.slot_qpos >= 0, robot.slot_dof, -1)
        bodies = np.asarray(robot.body_ids)
        self._tables = {  # kept alive: the context points into them
            "body": np.ascontiguousarray(bodies, dtype=np.intc),
            "root": np.ascontiguousarray(model.body_rootid[bodies], dtype=np.intc),
            "qadr": np.ascontiguousarray(qadr, dtype=np.intc).reshape(-1),
            "dadr": np.ascontiguousarray(dadr, dtype=np.intc).reshape(-1),
            "lo": np.ascontiguousarray(lo).reshape(-1),
            "inv_span": np.ascontiguousarray(span).reshape(-1),
        }
        self._torso = int(robot.root_body)
        self._data: Any = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fn": None, "_data": None, "_ctx": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._fn = _observe_fn()

    def __call__(self, data: Any) -> np.ndarray:
        """Observation of every limb, shape ``(n_limbs, 17)`` float32."""
        return self.checked(data)[1]

    def checked(self, data: Any) -> tuple[bool, np.ndarray]:
        """``(finite, observation)``: whether the state (``qpos``, ``qvel``) and the
        observation are all finite, checked in the same call."""
        if data is not self._data:
            self._bind(data)
        out = np.empty((self.n_limbs, 17), dtype=np.float32)
        return bool(self._fn(self._ctx_address, out.ctypes.data)), out

    def bind(self, data: Any) -> int:
        """Point the observation at ``data``'s arrays (done by the first call on it);
        returns the address of the C context."""
        if data is not self._data:
            self._bind(data)
        return self._ctx_address

    def _bind(self, data: Any) -> None:
        ctx = _ObsCtx(self.n_limbs, self._torso, data.qpos.size, data.qvel.size)
        for name, table in self._tables.items():
            pointer = _INT_P if table.dtype == np.intc else _DOUBLE_P
            setattr(ctx, name, table.ctypes.data_as(pointer))
        for name in ("xpos", "xquat", "xipos", "cvel", "subtree_com", "qpos", "qvel"):
            array = getattr(data, name)
            if array.dtype != np.float64 or not array.flags.c_contiguous:
                raise NativeError(f"mjData.{name} is not a contiguous float64 array")
            setattr(ctx, name, array.ctypes.data_as(_DOUBLE_P))
        self._data, self._ctx = data, ctx  # data kept alive: the context points into it
        self._ctx_address = ctypes.addressof(ctx)


def available() -> bool:
    """Whether the native observation can be used here (a compiler, not turned off)."""
    return _observe_fn() is not None


#: ``hd_control``'s answers.
CONTROL_OK, CONTROL_BAD_OBS, CONTROL_BAD_CTRL, CONTROL_CLIPPED = 0, 1, 2, 3


class _ControlArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_void_p) for n in ("obs_ctx", "obs", "ctrl", "mj_ctrl", "lo", "hi",
                                               "ns")]  # fmt: skip
    _fields_ += [("n", ctypes.c_int)]


class FusedControl:
    """A control step of a compiled controller on the C observation in one ctypes call.

    What :meth:`~hd_deploy.runtime.ControlLoop.step` does in Python (observe, check, act,
    check, clip, write ``mjData.ctrl``), done by ``hd_control``: same values, without the
    per-stage calls and arrays.

    Args:
        controller: A library compiled with ``timing=True`` (the ``c`` backend's).
        observation: The robot's C observation.
        data: The simulation state (its arrays are bound by address, once).
        ctrl_low: Lower control limits, ``(n_actuators,)``.
        ctrl_high: Upper control limits.

    Raises:
        NativeError: The library has no ``hd_control``, or ``mjData.ctrl`` does not hold
            exactly the controller's actuators.
    """

    def __init__(
        self,
        controller: SharedController,
        observation: NativeObservation,
        data: Any,
        ctrl_low: np.ndarray,
        ctrl_high: np.ndarray,
    ) -> None:
        fn = controller.harness("hd_control")
        n = controller.n_ctrl
        if data.ctrl.size != n or data.ctrl.dtype != np.float64 or not data.ctrl.flags.c_contiguous:
            raise NativeError(f"mjData.ctrl must hold exactly the {n} controlled actuators")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p]
        ctx = observation.bind(data)
        self.obs = np.zeros(controller.obs_dim, dtype=np.float32)
        self.ctrl = np.zeros(n, dtype=np.float32)
        self.ns = np.zeros(2, dtype=np.int64)  # observation, policy
        self._limits = (np.ascontiguousarray(ctrl_low, dtype=np.float32),
                        np.ascontiguousarray(ctrl_high, dtype=np.float32))  # fmt: skip
        self._keep = (observation, data)  # the bound addresses point into these
        self._args = {  # kept alive: the calls pass their addresses
            write: _ControlArgs(
                ctx,
                self.obs.ctypes.data,
                self.ctrl.ctypes.data,
                data.ctrl.ctypes.data if write else None,
                self._limits[0].ctypes.data,
                self._limits[1].ctypes.data,
                self.ns.ctypes.data,
                n,
            )  # fmt: skip
            for write in (True, False)
        }
        self._call = {
            write: functools.partial(fn, ctypes.addressof(args))
            for write, args in self._args.items()
        }

    def __call__(self, *, write: bool) -> int:
        """One step: the status (``CONTROL_*``); ``write`` also sets ``mjData.ctrl``.
        :attr:`obs`, :attr:`ctrl` and :attr:`ns` hold the step's values after the call."""
        return self._call[write]()
