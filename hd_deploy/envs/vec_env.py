"""Many robots stepped in parallel worker processes, returning padded arrays.

Each environment slot runs one robot at a time and samples a new robot (uniformly from
the set) at every reset, as MetaMorph does. Observations come back padded to
``max_limbs`` with limb and action masks, ready for a universal policy.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hd_deploy.envs.task import LocomotionTask, TaskConfig
from hd_deploy.morphology.features import CONTEXT_DIM, PROPRIO_DIM
from hd_deploy.morphology.robot import JOINT_SLOTS


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


class _Slots:
    """A group of env slots; lives in a worker process (or in-process)."""

    def __init__(self, sources: list[str], config: TaskConfig, n_slots: int, seed: int):
        self.config = config
        self.tasks = [LocomotionTask(s, config=config) for s in sources]
        self.rng = np.random.default_rng(seed)
        self.current = np.zeros(n_slots, dtype=np.int64)
        self.running: list[LocomotionTask] = [self.tasks[0]] * n_slots
        self.returns = np.zeros(n_slots)
        self.lengths = np.zeros(n_slots, dtype=np.int64)
        self.proprio = np.zeros((n_slots, config.max_limbs, PROPRIO_DIM), dtype=np.float32)

    def _start(self, slot: int) -> None:
        k = int(self.rng.integers(len(self.tasks)))
        self.current[slot] = k
        self.returns[slot] = 0.0
        self.lengths[slot] = 0
        task = self.running[slot] = self.tasks[k].fork()
        self.proprio[slot] = 0.0
        self.proprio[slot, : task.robot.n_limbs] = task.reset(self.rng)

    def reset(self) -> VecObs:
        for slot in range(len(self.current)):
            self._start(slot)
        return self._obs()

    def step(self, actions: np.ndarray) -> VecStep:
        n = len(self.current)
        reward = np.zeros(n, dtype=np.float32)
        term = np.zeros(n, dtype=bool)
        trunc = np.zeros(n, dtype=bool)
        final = np.zeros_like(self.proprio)
        episodes = []
        for slot in range(n):
            task = self.running[slot]
            res = task.step(task.robot.actions_to_ctrl(actions[slot]))
            reward[slot] = res.reward
            self.returns[slot] += res.reward
            self.lengths[slot] += 1
            obs = task.observe() if not res.unstable else None
            if res.terminated or res.truncated:
                term[slot], trunc[slot] = res.terminated, res.truncated
                if res.truncated and obs is not None:
                    final[slot, : task.robot.n_limbs] = obs
                episodes.append(
                    {
                        "robot": task.robot.name,
                        "robot_index": int(self.current[slot]),
                        "return": float(self.returns[slot]),
                        "length": int(self.lengths[slot]),
                        "unstable": res.unstable,
                    }
                )
                self._start(slot)
            else:
                self.proprio[slot, : task.robot.n_limbs] = obs
        return VecStep(self._obs(), reward, term, trunc, final, episodes)

    def _obs(self) -> VecObs:
        n, L = len(self.current), self.config.max_limbs
        ctx = np.zeros((n, L, CONTEXT_DIM), dtype=np.float32)
        lmask = np.zeros((n, L), dtype=bool)
        amask = np.zeros((n, L, JOINT_SLOTS), dtype=bool)
        for slot, k in enumerate(self.current):
            task = self.tasks[k]
            nl = task.robot.n_limbs
            ctx[slot, :nl] = task.context
            lmask[slot, :nl] = True
            amask[slot] = task.robot.action_mask(L)
        return VecObs(self.proprio.copy(), ctx, lmask, amask, self.current.copy())


def _worker(conn, sources, config, n_slots, seed) -> None:  # pragma: no cover - subprocess
    slots = _Slots(sources, config, n_slots, seed)
    while True:
        cmd, arg = conn.recv()
        if cmd == "reset":
            conn.send(slots.reset())
        elif cmd == "step":
            conn.send(slots.step(arg))
        elif cmd == "close":
            conn.close()
            return


class VecLocomotionEnv:
    """Vectorised locomotion over a set of robots.

    Args:
        robots: MJCF paths (or texts); every slot samples among them at each reset.
        n_envs: Number of env slots.
        n_workers: Worker processes (0 steps everything in this process).
        config: Task settings.
        seed: Base seed; worker ``i`` uses ``seed + i``.
    """

    def __init__(
        self,
        robots: Sequence[str | Path],
        *,
        n_envs: int = 32,
        n_workers: int = 2,
        config: TaskConfig = TaskConfig(),
        seed: int = 0,
    ) -> None:
        if not robots:
            raise ValueError("no robots given")
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.sources = [str(r) for r in robots]
        self.n_envs = n_envs
        self.config = config
        # Parse once here so bad robots fail in the caller, not in a worker.
        probe = [LocomotionTask(s, config=config) for s in self.sources]
        self.robot_names = [t.robot.name for t in probe]
        del probe
        n_workers = min(n_workers, n_envs)
        self._local: _Slots | None = None
        self._conns = []
        self._procs = []
        if n_workers == 0:
            self._local = _Slots(self.sources, config, n_envs, seed)
            self._splits = [n_envs]
            return
        sizes = [n_envs // n_workers + (i < n_envs % n_workers) for i in range(n_workers)]
        self._splits = sizes
        ctx = mp.get_context("spawn")
        for i, size in enumerate(sizes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker, args=(child, self.sources, config, size, seed + i), daemon=True
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def reset(self) -> VecObs:
        if self._local is not None:
            return self._local.reset()
        for c in self._conns:
            c.send(("reset", None))
        return VecObs.concat([c.recv() for c in self._conns])

    def step(self, actions: np.ndarray) -> VecStep:
        """Step every slot with padded per-slot actions ``(n_envs, max_limbs, 2)``."""
        expected = (self.n_envs, self.config.max_limbs, JOINT_SLOTS)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        if self._local is not None:
            return self._local.step(actions)
        start = 0
        for c, size in zip(self._conns, self._splits, strict=True):
            c.send(("step", actions[start : start + size]))
            start += size
        parts = [c.recv() for c in self._conns]
        return VecStep(
            obs=VecObs.concat([p.obs for p in parts]),
            reward=np.concatenate([p.reward for p in parts]),
            terminated=np.concatenate([p.terminated for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            final_proprio=np.concatenate([p.final_proprio for p in parts]),
            episodes=[e for p in parts for e in p.episodes],
        )

    def close(self) -> None:
        for c in self._conns:
            try:
                c.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._conns, self._procs = [], []

    def __enter__(self) -> VecLocomotionEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
