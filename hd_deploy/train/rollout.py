"""Per-robot rollouts in worker processes: distillation data and policy evaluation.

A worker loads the policy from its checkpoint (or ONNX file), turns it into a per-robot
controller (teacher transformer on the robot's limbs, a baked student MLP, or an exported
file) and runs the locomotion task with deterministic actions.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hd_deploy.stop import ignore_interrupt
from hd_deploy.train.config import DistillConfig
from hd_deploy.train.runlog import progress_bar

_CACHE: dict = {}
_OPENINGS_SEED = 1_000_003  # seeds of the episode-opening segment, apart from the full episodes


@dataclass
class DistillData:
    """Teacher-labelled samples of many robots (padded to ``L`` limbs).

    Attributes:
        proprio: ``(N, L, 17)`` raw proprioception.
        action: ``(N, L, 2)`` teacher action means.
        robot: ``(N,)`` robot index of each sample.
        context: ``(R, L, 53)`` per robot.
        limb_mask: ``(R, L)`` per robot.
        action_mask: ``(R, L, 2)`` per robot.
    """

    proprio: np.ndarray
    action: np.ndarray
    robot: np.ndarray
    context: np.ndarray
    limb_mask: np.ndarray
    action_mask: np.ndarray

    def __post_init__(self) -> None:
        self._by_robot = [np.nonzero(self.robot == r)[0] for r in range(len(self.context))]

    @property
    def n_samples(self) -> int:
        return len(self.robot)

    @property
    def n_robots(self) -> int:
        return len(self.context)

    @property
    def action_rms(self) -> float:
        m = self.action_mask[self.robot]
        return float(np.sqrt((self.action**2 * m).sum() / max(1, m.sum())))

    @property
    def saturated(self) -> float:
        """The share of labelled actuator commands beyond [-1, 1] (run at +-1)."""
        m = self.action_mask[self.robot]
        return float(((np.abs(self.action) > 1.0) * m).sum() / max(1, m.sum()))

    def robot_indices(self, robot: int) -> np.ndarray:
        """Indices of ``robot``'s samples."""
        return self._by_robot[robot]

    def sample_indices(self, robot: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self._by_robot[robot], size=n, replace=True)

    def select(
        self,
        robots: Sequence[int],
        per_robot: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> DistillData:
        """The samples of ``robots`` only (renumbered in that order), at most ``per_robot`` each.

        With ``per_robot`` a robot with more samples keeps a random subset drawn by ``rng``.
        """
        rng = rng or np.random.default_rng(0)
        keep = []
        for r in robots:
            idx = self._by_robot[r]
            if per_robot is not None and len(idx) > per_robot:
                idx = np.sort(rng.choice(idx, size=per_robot, replace=False))
            keep.append(idx)
        robots = list(robots)
        return DistillData(
            self.proprio[np.concatenate(keep)],
            self.action[np.concatenate(keep)],
            np.concatenate([np.full(len(k), i) for i, k in enumerate(keep)]),
            self.context[robots], self.limb_mask[robots], self.action_mask[robots],
        )  # fmt: skip

    def merge(self, other: DistillData) -> DistillData:
        return DistillData(
            np.concatenate([self.proprio, other.proprio]),
            np.concatenate([self.action, other.action]),
            np.concatenate([self.robot, other.robot]),
            self.context, self.limb_mask, self.action_mask,
        )  # fmt: skip

    def concat(self, other: DistillData) -> DistillData:
        """Both robot sets in one: ``other``'s robots follow this one's (renumbered)."""
        return DistillData(
            np.concatenate([self.proprio, other.proprio]),
            np.concatenate([self.action, other.action]),
            np.concatenate([self.robot, other.robot + self.n_robots]),
            np.concatenate([self.context, other.context]),
            np.concatenate([self.limb_mask, other.limb_mask]),
            np.concatenate([self.action_mask, other.action_mask]),
        )

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: getattr(self, k) for k in self.__dataclass_fields__})
        tmp.replace(path)

    @classmethod
    def from_parts(cls, parts: list[dict]) -> DistillData:
        """Join per-robot rollouts (dicts of proprio, action, context, masks) in robot order."""
        return cls(
            proprio=np.concatenate([p["proprio"] for p in parts]),
            action=np.concatenate([p["action"] for p in parts]),
            robot=np.concatenate([np.full(len(p["proprio"]), i) for i, p in enumerate(parts)]),
            context=np.stack([p["context"] for p in parts]),
            limb_mask=np.stack([p["limb_mask"] for p in parts]),
            action_mask=np.stack([p["action_mask"] for p in parts]),
        )

    @classmethod
    def load(cls, path: Path) -> DistillData:
        with np.load(path) as f:
            return cls(**{k: f[k] for k in cls.__dataclass_fields__})


# --- worker side ----------------------------------------------------------------------


def _policy(kind: str, path: str):
    # Keyed by modification time too, so a checkpoint rewritten in place is reloaded.
    key = (kind, path, (Path(path) / "model.safetensors").stat().st_mtime_ns)
    if key not in _CACHE:
        import torch

        torch.set_num_threads(1)
        from hd_deploy.models import load_student, load_teacher

        _CACHE[key] = load_teacher(path) if kind == "teacher" else load_student(path)
    return _CACHE[key]


def _controller(kind: str, path: str, task):
    """obs (n_limbs*17,) -> ctrl (n_actuators,) for one robot."""
    if kind == "onnx":
        from hd_deploy.runtime import load_controller

        ctl = load_controller(path, backend="onnx")
        return ctl.act
    import torch

    policy = _policy(kind, path)
    if kind == "teacher":
        module = policy.for_robot(task.robot, task.context)
    else:
        module = policy.bake([task.robot], [task.context])[0]
    module.eval()

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(obs[None])).numpy()[0]

    return act


def _collect_job(args) -> dict:
    """One robot's samples: one rollout per ``(steps, seed, horizon)`` segment, joined."""
    teacher_path, student_path, source, segments, max_limbs, n_envs = args
    parts = [_label(teacher_path, student_path, source, steps, seed, max_limbs, n_envs, horizon)
             for steps, seed, horizon in segments]  # fmt: skip
    joined = {k: np.concatenate([p[k] for p in parts]) for k in ("proprio", "action")}
    return {**parts[0], **joined}


def _label(teacher_path, student_path, source, steps, seed, max_limbs, n_envs, horizon) -> dict:
    """``steps`` teacher-labelled states of one robot; episodes cut at ``horizon`` (0: none)."""
    import torch

    from hd_deploy.envs.task import LocomotionTask, TaskConfig

    config = TaskConfig(max_limbs=max_limbs)
    horizon = min(horizon or config.episode_steps, config.episode_steps)
    # Envs in lockstep share one batched teacher forward; each still runs at least one
    # full episode (or opening of ``horizon`` steps) so that late states are labelled too.
    n_envs = max(1, min(n_envs, steps // horizon))
    tasks = [LocomotionTask(source, config=config, headless=True) for _ in range(n_envs)]
    robot = tasks[0].robot
    teacher = _policy("teacher", teacher_path)
    actor = _controller("student", student_path, tasks[0]) if student_path else None
    n, L = robot.n_limbs, max_limbs
    ctx_np, mask_np = tasks[0].padded_context()
    ctx = torch.as_tensor(np.repeat(ctx_np[None], n_envs, axis=0))
    mask = torch.as_tensor(np.repeat(mask_np[None], n_envs, axis=0))
    per_env = -(-steps // n_envs)
    proprio = np.zeros((per_env * n_envs, L, 17), np.float32)
    action = np.zeros((per_env * n_envs, L, 2), np.float32)
    rng = np.random.default_rng(seed)
    obs = [task.reset(rng) for task in tasks]
    for t in range(per_env):
        rows = slice(t * n_envs, (t + 1) * n_envs)
        proprio[rows, :n] = np.stack(obs)
        with torch.no_grad():
            mean = teacher.action_mean(torch.as_tensor(proprio[rows]), ctx, mask).numpy()
        action[rows] = mean
        for e, task in enumerate(tasks):
            ctrl = actor(obs[e].reshape(-1)) if actor else robot.actions_to_ctrl(mean[e])
            res = task.step(ctrl)
            done = res.terminated or res.truncated or task.steps >= horizon
            obs[e] = task.reset(rng) if done else task.observe()
    return {
        "proprio": proprio[:steps],
        "action": action[:steps],
        "context": ctx_np,
        "limb_mask": mask_np,
        "action_mask": robot.action_mask(L),
    }


def _eval_job(args) -> dict:
    kind, path, source, episodes, seed, max_limbs = args
    from hd_deploy.envs.task import LocomotionTask, TaskConfig

    task = LocomotionTask(source, config=TaskConfig(max_limbs=max_limbs), headless=True)
    returns, lengths = run_episodes(task, _controller(kind, path, task), episodes, seed)
    return {"name": task.robot.name, "n_limbs": task.robot.n_limbs, "returns": returns,
            "lengths": lengths, "fingerprint": task.robot.fingerprint}  # fmt: skip


def run_episodes(
    task, act, episodes: int, seed: int, *, salt: tuple[int, ...] = ()
) -> tuple[list[float], list[int]]:
    """Returns and lengths of ``episodes`` episodes of ``act`` (flat obs -> ctrl) on ``task``,
    reset at ``hd-eval``'s seeds ``(seed, episode)``, or ``(seed, *salt, episode)`` for a
    set of episodes of another use (``hd-tune``'s)."""
    returns, lengths = [], []
    for e in range(episodes):
        obs = task.reset(np.random.default_rng((seed, *salt, e)))
        total = 0.0
        while True:
            res = task.step(act(obs.reshape(-1)))
            total += res.reward
            if res.terminated or res.truncated:
                break
            obs = task.observe()
        returns.append(total)
        lengths.append(task.steps)
    return returns, lengths


def _map(fn, jobs: list, *, workers: int, label: str, show_progress: bool) -> list:
    results: list = [None] * len(jobs)
    with progress_bar(disable=not show_progress) as bar:
        task = bar.add_task(label, total=len(jobs), status="")
        if workers <= 1:
            for i, job in enumerate(jobs):
                results[i] = fn(job)
                bar.advance(task)
            return results
        with mp.get_context("spawn").Pool(workers, initializer=ignore_interrupt) as pool:
            for i, res in enumerate(pool.imap(fn, jobs)):
                results[i] = res
                bar.advance(task)
    return results


# --- public -----------------------------------------------------------------------------


def collect(
    teacher_checkpoint: str | Path,
    robots: Sequence[str | Path],
    *,
    config: DistillConfig,
    student_checkpoint: str | Path | None = None,
    seed_offset: int = 0,
    show_progress: bool = True,
    max_limbs: int = 12,
) -> DistillData:
    """Label states of every robot with the teacher's action mean.

    The teacher acts (deterministically) unless ``student_checkpoint`` is given (DAgger).
    Each robot gets ``config.samples_per_robot`` states from full episodes, then
    ``config.start_samples_per_robot`` more from episode openings of ``config.start_steps``
    steps (a gait's take-off is a few dozen of a 1000-step episode's states, but a policy
    that misses it can settle into a standstill the teacher often keeps too).
    """
    seed0 = config.seed * 100_003 + 7919 * seed_offset
    segments = [(config.samples_per_robot, seed0, 0)]
    if config.start_samples_per_robot > 0:
        segments.append(
            (config.start_samples_per_robot, seed0 + _OPENINGS_SEED, config.start_steps)
        )
    jobs = [
        (str(teacher_checkpoint), str(student_checkpoint) if student_checkpoint else None,
         str(src), [(steps, seed + i, horizon) for steps, seed, horizon in segments],
         max_limbs, config.n_envs)
        for i, src in enumerate(robots)
    ]  # fmt: skip
    label = "DAgger data" if student_checkpoint else "teacher data"
    parts = _map(_collect_job, jobs, workers=config.n_workers, label=label,
                 show_progress=show_progress)  # fmt: skip
    return DistillData.from_parts(parts)


def evaluate(
    kind: str,
    path: str | Path,
    robots: Sequence[str | Path],
    *,
    episodes: int = 3,
    seed: int = 0,
    workers: int = 2,
    show_progress: bool = True,
    max_limbs: int = 12,
) -> dict:
    """Mean and standard deviation of the return per robot and overall.

    Args:
        kind: ``teacher``, ``student`` (checkpoint folders) or ``onnx`` (exported file).
        path: The checkpoint folder or ONNX file.
        robots: MJCF files.
        episodes: Episodes per robot; episode ``e`` starts from seed ``(seed, e)``.
        seed: Base seed.
        workers: Worker processes.
        show_progress: Show a progress bar.
        max_limbs: Maximum limbs (must match the policy).

    Returns:
        ``{"policy", "episodes", "seed", "return_mean", "return_std", "robots": [...]}``;
        each robot has its ``fingerprint`` and ``seen_in_training`` (whether the checkpoint
        trained on that body, by fingerprint; None for an ONNX file or a checkpoint that
        records no fingerprints).
    """
    jobs = [(kind, str(path), str(r), episodes, seed, max_limbs) for r in robots]
    parts = _map(_eval_job, jobs, workers=min(workers, len(jobs)), label=f"eval {kind}",
                 show_progress=show_progress)  # fmt: skip
    from hd_deploy.models.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(path) if kind in ("teacher", "student") else None
    rows = [
        {
            "name": p["name"],
            "fingerprint": p["fingerprint"],
            "seen_in_training": None if info is None else info.trained_on(p["fingerprint"]),
            "n_limbs": p["n_limbs"],
            "return_mean": float(np.mean(p["returns"])),
            "return_std": float(np.std(p["returns"])),
            "episode_length_mean": float(np.mean(p["lengths"])),
            "returns": [float(x) for x in p["returns"]],
        }
        for p in parts
    ]
    means = [r["return_mean"] for r in rows]
    return {
        "policy": str(path),
        "kind": kind,
        "episodes": episodes,
        "seed": seed,
        "return_mean": float(np.mean(means)),
        "return_std": float(np.std(means)),
        "robots": rows,
    }
