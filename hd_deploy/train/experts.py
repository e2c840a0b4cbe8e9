"""Per-robot PPO experts: the fast way to a teacher that walks on a CPU budget.

One robot is easy (a small MLP reaches a return of ~1000 within a few hundred thousand
steps, about a minute and a half on one core); one universal transformer over a hundred
robots is not. The expert route (Furuta et al. 2023, "behaviour distillation") trains one
small MLP per robot with plain PPO, in parallel processes, and then clones all of them into
the universal teacher (``hd_deploy.train.teacher_bc``), which PPO can fine-tune further.

An expert sees the robot's own flat proprioception ``(n_limbs * 17,)``, the same vector a
baked MLP sees, and emits actions in [-1, 1] in actuator order. Each expert is saved as
``<robot>.safetensors`` (weights and observation statistics) plus ``<robot>.json`` (its
record: steps, wall time, deterministic return), so an interrupted run skips finished robots.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hd_deploy.files import atomic_write_text
from hd_deploy.stop import ignore_interrupt
from hd_deploy.train.config import ExpertConfig
from hd_deploy.train.runlog import progress_bar

FORMAT_VERSION = 1


@dataclass
class Expert:
    """A trained per-robot MLP policy, numpy only (used to label states)."""

    name: str
    fingerprint: str
    weights: list[tuple[np.ndarray, np.ndarray]]
    obs_mean: np.ndarray
    obs_var: np.ndarray
    record: dict

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action in [-1, 1], actuator order.

        Args:
            obs: Flat proprioception, shape ``(n_limbs * 17,)`` or ``(batch, n_limbs * 17)``.
        """
        x = np.clip((obs - self.obs_mean) / np.sqrt(self.obs_var + 1e-8), -10.0, 10.0)
        for i, (w, b) in enumerate(self.weights):
            x = x @ w.T + b
            if i + 1 < len(self.weights):
                x = np.tanh(x)
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    @classmethod
    def load(cls, folder: str | Path, name: str) -> Expert:
        """Read ``<folder>/<name>.json`` and ``<folder>/<name>.safetensors``.

        Raises:
            FileNotFoundError: A file is missing.
            CheckpointError: The record is not valid JSON or of another format version.
        """
        from safetensors.numpy import load_file

        from hd_deploy.models.checkpoint import CheckpointError

        folder = Path(folder)
        path = folder / f"{name}.json"
        try:
            record = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: unsupported expert format")
        t = load_file(str(folder / f"{name}.safetensors"))
        n_layers = sum(1 for k in t if k.endswith(".weight"))
        weights = [(t[f"pi.{i}.weight"], t[f"pi.{i}.bias"]) for i in range(n_layers)]
        return cls(name, record["fingerprint"], weights, t["obs_mean"], t["obs_var"], record)


def train_expert(source: str | Path, out_dir: str | Path, config: ExpertConfig) -> dict:
    """Train one expert with PPO and save it; returns its record.

    Args:
        source: The robot's MJCF file.
        out_dir: Folder for ``<robot>.safetensors`` and ``<robot>.json``.
        config: Expert PPO settings.
    """
    import torch
    from torch import nn

    from hd_deploy.envs.task import LocomotionTask
    from hd_deploy.morphology.features import PROPRIO_DIM
    from hd_deploy.train.mlp_ppo import MlpPPO, RunningStats

    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    base = LocomotionTask(source)
    envs = [base] + [base.fork() for _ in range(config.n_envs - 1)]
    nu, dim = base.model.nu, base.robot.n_limbs * PROPRIO_DIM

    def mlp(out: int) -> nn.Sequential:
        h = config.hidden
        return nn.Sequential(nn.Linear(dim, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(),
                             nn.Linear(h, out))  # fmt: skip

    pi, vf = mlp(nu), mlp(1)
    stats = RunningStats(np.zeros(dim), np.ones(dim))
    ppo = MlpPPO(
        envs, rng, config, policy=pi, value=lambda o: vf(o)[:, 0],
        log_std=nn.Parameter(torch.full((nu,), config.init_log_std)),
        policy_params=list(pi.parameters()), value_params=list(vf.parameters()),
        lr=config.lr, preprocess=stats.normalize,
    )  # fmt: skip
    finished: list[float] = []
    t0, steps = time.time(), 0
    while steps < config.total_steps:
        stats.update(ppo.obs)
        batch = ppo.collect()
        finished += batch.finished
        ppo.update(batch)
        steps += batch.size

    layers = [m for m in pi if isinstance(m, nn.Linear)]
    expert = Expert(
        name=base.robot.name,
        fingerprint=base.robot.fingerprint,
        weights=[(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in layers],
        obs_mean=stats.mean.astype(np.float32),
        obs_var=stats.var.astype(np.float32),
        record={},
    )
    record = {
        "format_version": FORMAT_VERSION,
        "name": base.robot.name,
        "source": str(source),
        "fingerprint": base.robot.fingerprint,
        "env_steps": steps,
        "wall_s": round(time.time() - t0, 1),
        "return_train_recent": float(np.mean(finished[-20:])) if finished else 0.0,
        "return_deterministic": evaluate_expert(expert, base, seed=config.seed),
        "config": config.to_dict(),
    }
    _save(Path(out_dir), expert, record)
    return record


def evaluate_expert(expert: Expert, task, *, seed: int, episodes: int = 1) -> float:
    """Mean deterministic return of an expert on its task."""
    totals = []
    for e in range(episodes):
        obs = task.reset(np.random.default_rng((seed, 999, e)))
        total = 0.0
        while True:
            res = task.step(task.robot.scale_ctrl(expert.act(obs.reshape(-1))))
            total += res.reward
            if res.terminated or res.truncated:
                break
            obs = task.observe()
        totals.append(total)
    return float(np.mean(totals))


def _save(out: Path, expert: Expert, record: dict) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {"obs_mean": expert.obs_mean, "obs_var": expert.obs_var}
    for i, (w, b) in enumerate(expert.weights):
        tensors[f"pi.{i}.weight"] = np.ascontiguousarray(w, dtype=np.float32)
        tensors[f"pi.{i}.bias"] = np.ascontiguousarray(b, dtype=np.float32)
    weights = out / f"{expert.name}.safetensors"
    save_file(tensors, str(weights.with_name(weights.name + ".tmp")))
    os.replace(weights.with_name(weights.name + ".tmp"), weights)
    # The JSON is written last: its presence marks a finished expert.
    atomic_write_text(out / f"{expert.name}.json", json.dumps(record, indent=2))


def _job(args) -> dict:
    source, out, config = args
    return train_expert(source, out, config)


def train_experts(
    robots: Sequence[str | Path],
    out_dir: str | Path,
    *,
    config: ExpertConfig = ExpertConfig(),
    workers: int = 2,
    show_progress: bool = True,
) -> list[dict]:
    """Train one expert per robot in parallel; robots with a finished expert are skipped.

    Returns:
        The records of all experts in ``out_dir`` for these robots, in robot order.
    """
    from hd_deploy.morphology.robot import robot_name

    out = Path(out_dir)
    names = [robot_name(r) for r in robots]
    todo = [(str(r), str(out), config) for r, n in zip(robots, names, strict=True)
            if not (out / f"{n}.json").exists()]  # fmt: skip
    with progress_bar(disable=not show_progress) as bar:
        task = bar.add_task("experts", total=len(robots), completed=len(robots) - len(todo),
                            status="")  # fmt: skip
        done: list[float] = []

        def advance(rec: dict) -> None:
            done.append(rec["return_deterministic"])
            bar.update(task, advance=1, status=f"mean det. return {np.mean(done):.0f}")

        if workers <= 1:
            for job in todo:
                advance(_job(job))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, maxtasksperchild=4, initializer=ignore_interrupt) as pool:
                for rec in pool.imap_unordered(_job, todo):
                    advance(rec)
    return [json.loads((out / f"{n}.json").read_text()) for n in names]
