"""Many robots stepped in parallel worker processes, returning padded arrays.

Each environment slot runs one robot at a time and samples a new robot at every reset:
uniformly from the set, or by the weights the trainer last set
(:meth:`VecLocomotionEnv.set_robot_weights`, MetaMorph's balanced replay in
:mod:`hd_deploy.train.sampling`). Observations come back padded to
``max_limbs`` with limb and action masks, ready for a universal policy.

Workers and the trainer share every per-slot array (observations, context, masks,
actions, rewards, flags) through ``multiprocessing`` shared memory: a step sends each
worker one short message and gets back only the episodes that ended, so nothing is
pickled per step but those few dicts. Each worker steps a contiguous block of slots.

The worker layer is :class:`SlotWorker`: ``start(command)`` / ``wait()`` over a block of
slots. :class:`LocalWorker` runs the block in this process, :class:`ProcessWorker` in a
spawned process; another transport (Ray actors on several machines) implements the same
two methods and :class:`VecLocomotionEnv` and the trainers stay as they are.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hd_deploy.envs.errors import WorkerError
from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.errors import ConfigError
from hd_deploy.morphology.features import CONTEXT_DIM, PROPRIO_DIM
from hd_deploy.morphology.robot import JOINT_SLOTS
from hd_deploy.stop import ignore_interrupt

WORKER_TIMEOUT_S = 600.0
__all__ = ["VecLocomotionEnv", "VecObs", "VecStep", "WorkerError", "SlotWorker"]


@dataclass
class VecObs:
    """Padded observations of every env slot.

    Attributes:
        proprio: ``(n_envs, max_limbs, 17)`` float32, zero on padding.
        context: ``(n_envs, max_limbs, 53)`` float32, zero on padding.
        limb_mask: ``(n_envs, max_limbs)`` bool, True on real limbs.
        action_mask: ``(n_envs, max_limbs, 2)`` bool, True where a slot drives an actuator.
        robot_index: ``(n_envs,)`` int, which robot each slot runs.
    """

    proprio: np.ndarray
    context: np.ndarray
    limb_mask: np.ndarray
    action_mask: np.ndarray
    robot_index: np.ndarray

    @staticmethod
    def concat(parts: Sequence[VecObs]) -> VecObs:
        return VecObs(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in VecObs.__dataclass_fields__)
        )


@dataclass
class VecStep:
    """Result of one vectorised step (finished slots are already reset).

    Attributes:
        obs: Observations after the step (of the new episode where one ended).
        reward: ``(n_envs,)`` float32.
        terminated: ``(n_envs,)`` bool: fell or became unstable.
        truncated: ``(n_envs,)`` bool: reached the episode length.
        final_proprio: ``(n_envs, max_limbs, 17)``: last observation of a truncated episode
            (for value bootstrapping), zeros elsewhere.
        episodes: One dict per finished episode: robot, return, length, unstable.
    """

    obs: VecObs
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_proprio: np.ndarray
    episodes: list[dict] = field(default_factory=list)


# --- shared arrays ------------------------------------------------------------------


def _layout(max_limbs: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Per-slot shape and dtype of every shared array."""
    L = max_limbs
    return {
        "proprio": ((L, PROPRIO_DIM), np.float32),
        "context": ((L, CONTEXT_DIM), np.float32),
        "limb_mask": ((L,), np.bool_),
        "action_mask": ((L, JOINT_SLOTS), np.bool_),
        "robot_index": ((), np.int64),
        "action": ((L, JOINT_SLOTS), np.float32),
        "reward": ((), np.float32),
        "terminated": ((), np.bool_),
        "truncated": ((), np.bool_),
        "final_proprio": ((L, PROPRIO_DIM), np.float32),
    }


@dataclass
class SlotArrays:
    """Every per-slot array of a block of slots (views into one buffer)."""

    proprio: np.ndarray
    context: np.ndarray
    limb_mask: np.ndarray
    action_mask: np.ndarray
    robot_index: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_proprio: np.ndarray

    @staticmethod
    def nbytes(n_slots: int, max_limbs: int) -> int:
        return sum(
            n_slots * int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
            for shape, dt in _layout(max_limbs).values()
        )

    @staticmethod
    def view(buffer: Any, n_slots: int, max_limbs: int) -> SlotArrays:
        """Arrays over ``buffer`` (anything with the buffer protocol, zero-filled)."""
        arrays, offset = {}, 0
        for name, (shape, dt) in _layout(max_limbs).items():
            count = n_slots * int(np.prod(shape, dtype=np.int64))
            arr = np.frombuffer(buffer, dtype=dt, count=count, offset=offset)
            arrays[name] = arr.reshape(n_slots, *shape)
            offset += count * np.dtype(dt).itemsize
            offset += -offset % 8  # keep every array 8-byte aligned
        return SlotArrays(**arrays)

    def block(self, start: int, stop: int) -> SlotArrays:
        return SlotArrays(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})


def _buffer_size(n_slots: int, max_limbs: int) -> int:
    return SlotArrays.nbytes(n_slots, max_limbs) + 8 * len(_layout(max_limbs))


# --- the slots of one worker ---------------------------------------------------------


class _Slots:
    """A block of env slots writing into its :class:`SlotArrays`."""

    def __init__(
        self,
        sources: Sequence[str],
        config: TaskConfig,
        arrays: SlotArrays,
        seed: int,
        weights: np.ndarray,
        context_noise: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.context_noise = context_noise  # per-feature std of each episode's draw, or None
        self.arrays = arrays
        self.weights = weights  # shared with the trainer; all zero: uniform
        self.tasks = [LocomotionTask(s, config=config, headless=True) for s in sources]
        for task in self.tasks:
            task.data = None  # type: ignore[assignment]  # templates: each slot forks its own
        self.action_masks = [t.robot.action_mask(config.max_limbs) for t in self.tasks]
        self.rng = np.random.default_rng(seed)
        n = len(arrays.reward)
        self.running: list[LocomotionTask] = [self.tasks[0]] * n
        self.returns = np.zeros(n)
        self.lengths = np.zeros(n, dtype=np.int64)

    def _start(self, slot: int) -> None:
        a = self.arrays
        k = self._draw()
        task = self.running[slot] = self.tasks[k].fork()
        n = task.robot.n_limbs
        self.returns[slot], self.lengths[slot] = 0.0, 0
        a.robot_index[slot] = k
        a.proprio[slot] = 0.0
        a.proprio[slot, :n] = task.reset(self.rng)
        a.context[slot] = 0.0
        a.context[slot, :n] = task.context
        if self.context_noise is not None:  # one draw an episode: a body near this one
            a.context[slot, :n] += self.rng.standard_normal(task.context.shape) * self.context_noise
        a.limb_mask[slot] = False
        a.limb_mask[slot, :n] = True
        a.action_mask[slot] = self.action_masks[k]

    def _draw(self) -> int:
        cumulative = np.cumsum(self.weights)  # a copy: the trainer may write the weights anew
        if cumulative[-1] <= 0:
            return int(self.rng.integers(len(self.tasks)))
        k = np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right")
        return int(min(k, len(self.tasks) - 1))

    def reset(self) -> list[dict]:
        for slot in range(len(self.running)):
            self._start(slot)
        return []

    def step(self) -> list[dict]:
        """Step every slot with the actions in the shared array; returns ended episodes."""
        a = self.arrays
        episodes = []
        a.final_proprio[:] = 0.0
        for slot, task in enumerate(self.running):
            res = task.step(task.actions_to_ctrl(a.action[slot]))
            a.reward[slot] = res.reward
            a.terminated[slot], a.truncated[slot] = res.terminated, res.truncated
            self.returns[slot] += res.reward
            self.lengths[slot] += 1
            n = task.robot.n_limbs
            obs = task.observe() if not res.unstable else None
            if res.terminated or res.truncated:
                if res.truncated and obs is not None:
                    a.final_proprio[slot, :n] = obs
                episodes.append(
                    {
                        "robot": task.robot.name,
                        "robot_index": int(a.robot_index[slot]),
                        "return": float(self.returns[slot]),
                        "length": int(self.lengths[slot]),
                        "unstable": res.unstable,
                    }
                )
                self._start(slot)
            else:
                a.proprio[slot, :n] = obs
        return episodes

    def run(self, command: str) -> list[dict]:
        if command == "step":
            return self.step()
        if command == "reset":
            return self.reset()
        raise ValueError(f"unknown worker command {command!r}")


# --- workers -------------------------------------------------------------------------


class SlotWorker(Protocol):
    """Runs commands (``"reset"``, ``"step"``) on a block of slots.

    ``start`` returns at once; ``wait`` returns the episodes that ended, after the block's
    slice of the shared arrays holds the new observations.
    """

    def start(self, command: str) -> None: ...

    def wait(self) -> list[dict]: ...

    def close(self) -> None: ...


class LocalWorker:
    """A block of slots stepped in this process (no parallelism; for tests and debugging)."""

    def __init__(self, slots: _Slots) -> None:
        self._slots = slots
        self._pending: list[dict] = []

    def start(self, command: str) -> None:
        self._pending = self._slots.run(command)

    def wait(self) -> list[dict]:
        return self._pending

    def close(self) -> None:
        pass


def _worker_main(
    conn, sources, config, buffer, weights, n_total, start, stop, seed, context_noise
) -> None:
    # pragma: no cover - runs in a subprocess
    ignore_interrupt()
    try:
        arrays = SlotArrays.view(buffer, n_total, config.max_limbs).block(start, stop)
        slots = _Slots(sources, config, arrays, seed, np.frombuffer(weights, np.float64),
                       context_noise)  # fmt: skip
        conn.send(("ok", []))
        while True:
            command = conn.recv()
            if command == "close":
                return
            conn.send(("ok", slots.run(command)))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return
    except Exception as exc:  # report, in one line, whatever stopped the worker
        lines = str(exc).strip().splitlines()
        conn.send(("error", f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")))


class ProcessWorker:
    """A block of slots stepped in a spawned process over the shared arrays.

    Args:
        index: Worker number (for messages).
        sources: Robot sources.
        config: Task settings.
        buffer: The shared buffer of all slots.
        weights: The shared robot sampling weights (float64, one per robot).
        n_total: Number of slots in the buffer.
        start: First slot of this worker's block.
        stop: One past its last slot.
        seed: Seed of its robot sampling and reset noise.
        context_noise: Per-feature std of the noise on each episode's context, or None.
        timeout_s: Longest wait for one answer before the worker counts as hung.
    """

    def __init__(
        self,
        index: int,
        sources: Sequence[str],
        config: TaskConfig,
        buffer: Any,
        weights: Any,
        n_total: int,
        start: int,
        stop: int,
        seed: int,
        context_noise: np.ndarray | None = None,
        *,
        timeout_s: float = WORKER_TIMEOUT_S,
    ) -> None:
        self.index, self.timeout_s = index, timeout_s
        self.slots = (start, stop)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        args = (child, list(sources), config, buffer, weights, n_total, start, stop, seed)
        self._proc = ctx.Process(target=_worker_main, args=(*args, context_noise), daemon=True)
        self._proc.start()
        child.close()
        self._busy = True  # until the worker has built its robots

    @property
    def _where(self) -> str:
        return f"environment worker {self.index} (slots {self.slots[0]}-{self.slots[1] - 1})"

    def _died(self) -> WorkerError:
        self._proc.join(timeout=5)
        return WorkerError(f"{self._where} died (exit code {self._proc.exitcode})")

    def start(self, command: str) -> None:
        try:  # a worker dead before the command is sent breaks the pipe here, not in wait
            self._conn.send(command)
        except (ConnectionResetError, BrokenPipeError):
            raise self._died() from None
        self._busy = True

    def wait(self) -> list[dict]:
        where = self._where
        try:
            if not self._conn.poll(self.timeout_s):
                raise WorkerError(f"{where} did not answer within {self.timeout_s:.0f} s")
            kind, payload = self._conn.recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            raise self._died() from None
        self._busy = False
        if kind == "error":
            raise WorkerError(f"{where} failed: {payload}")
        return payload

    def close(self) -> None:
        try:
            if self._busy and self._proc.is_alive():
                self._conn.poll(5)
            self._conn.send("close")
        except (BrokenPipeError, OSError):
            pass
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
        self._conn.close()


# --- the vectorised environment ------------------------------------------------------


class VecLocomotionEnv:
    """Vectorised locomotion over a set of robots.

    Args:
        robots: MJCF paths (or texts); every slot samples among them at each reset.
        n_envs: Number of env slots.
        n_workers: Worker processes (0 steps everything in this process).
        config: Task settings.
        seed: Base seed; worker ``i`` uses ``seed + i``.
        context_noise: Each episode's context (the policy's input, not the body) gets
            Gaussian noise of this many standard deviations of each feature over the
            robots' limbs, drawn once at the episode's start: the policy trains on bodies
            described near, not only at, the training robots (0: the exact context).
            Features every robot shares stay exact.

    Raises:
        ConfigError: No robots, ``n_envs`` < 1 or ``context_noise`` < 0.
        MorphologyError: A robot cannot be read (raised here, not in a worker).
        WorkerError: A worker crashed or raised (on the step that found out).
    """

    def __init__(
        self,
        robots: Sequence[str | Path],
        *,
        n_envs: int = 32,
        n_workers: int = 2,
        config: TaskConfig = TaskConfig(),
        seed: int = 0,
        context_noise: float = 0.0,
    ) -> None:
        if not robots:
            raise ConfigError("no robots given")
        if n_envs < 1:
            raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
        if not context_noise >= 0:
            raise ConfigError(f"context_noise must be >= 0, got {context_noise}")
        self.sources = [str(r) for r in robots]
        self.n_envs = n_envs
        self.config = config
        # Parse once here so bad robots fail in the caller, not in a worker.
        tasks = [LocomotionTask(s, config=config, headless=True) for s in self.sources]
        self.robot_names = [t.robot.name for t in tasks]
        noise = None
        if context_noise > 0:
            spread = np.concatenate([t.context for t in tasks]).std(axis=0)
            noise = (context_noise * spread).astype(np.float32)
        n_workers = min(n_workers, n_envs)
        size = _buffer_size(n_envs, config.max_limbs)
        shared = mp.get_context("spawn").RawArray
        self._buffer: Any = shared("b", size) if n_workers else bytearray(size)
        self._arrays = SlotArrays.view(self._buffer, n_envs, config.max_limbs)
        n_robots = len(self.sources)
        self._weights_buffer: Any = shared("d", n_robots) if n_workers else bytearray(8 * n_robots)
        self._weights = np.frombuffer(self._weights_buffer, np.float64)
        self._workers: list[SlotWorker] = []
        try:
            if n_workers == 0:
                slots = _Slots(self.sources, config, self._arrays, seed, self._weights, noise)
                self._workers.append(LocalWorker(slots))
                return
            bounds = np.linspace(0, n_envs, n_workers + 1).round().astype(int)
            for i in range(n_workers):
                self._workers.append(
                    ProcessWorker(
                        i,
                        self.sources,
                        config,
                        self._buffer,
                        self._weights_buffer,
                        n_envs,
                        int(bounds[i]),
                        int(bounds[i + 1]),
                        seed + i,
                        noise,
                    )  # fmt: skip
                )
            for w in self._workers:
                w.wait()  # built its robots
        except BaseException:
            self.close()
            raise

    def _run(self, command: str) -> list[dict]:
        for w in self._workers:
            w.start(command)
        return [e for w in self._workers for e in w.wait()]

    def _obs(self) -> VecObs:
        a = self._arrays
        return VecObs(
            a.proprio.copy(), a.context.copy(), a.limb_mask.copy(), a.action_mask.copy(),
            a.robot_index.copy(),
        )  # fmt: skip

    def set_robot_weights(self, weights: np.ndarray | None) -> None:
        """How every slot picks its next robot from here on: in proportion to ``weights``
        (one per robot, >= 0, not all zero), or uniformly (None). Set it between steps."""
        if weights is None:
            self._weights[:] = 0.0
            return
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != self._weights.shape or not np.all(np.isfinite(weights)):
            raise ValueError(f"need {len(self._weights)} finite robot weights, got {weights}")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("robot weights must be >= 0 and not all zero")
        self._weights[:] = weights

    def reset(self) -> VecObs:
        self._run("reset")
        return self._obs()

    def step(self, actions: np.ndarray) -> VecStep:
        """Step every slot with padded per-slot actions ``(n_envs, max_limbs, 2)``."""
        expected = (self.n_envs, self.config.max_limbs, JOINT_SLOTS)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        a = self._arrays
        a.action[:] = actions
        episodes = self._run("step")
        return VecStep(
            self._obs(), a.reward.copy(), a.terminated.copy(), a.truncated.copy(),
            a.final_proprio.copy(), episodes,
        )  # fmt: skip

    def close(self) -> None:
        for w in self._workers:
            w.close()
        self._workers = []

    def __enter__(self) -> VecLocomotionEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
