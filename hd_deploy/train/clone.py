"""Clone per-robot experts into the universal transformer teacher (behaviour distillation).

1. Each expert drives its own robot (deterministic action plus Gaussian exploration noise of
   ``action_noise``) and labels the states it visits with its deterministic action.
2. The teacher learns by behaviour cloning, 0.5 x squared error over real actuators,
   averaged per robot; its observation normaliser is fitted once on the first data and frozen.
3. DAgger rounds: the *teacher* drives, the experts label, the data grows. This corrects
   the compounding error of pure cloning, which otherwise walks the teacher into states the
   experts never showed it.

The result is an ordinary teacher checkpoint: ``hd-eval``, ``hd-distill``, ``hd-export`` and
``hd-bench`` take it like one trained by ``hd-train``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hd_deploy.files import atomic_write_text
from hd_deploy.models import TeacherConfig, TeacherPolicy, load_teacher
from hd_deploy.models.checkpoint import CheckpointError
from hd_deploy.morphology.nearness import fingerprints_and_places
from hd_deploy.train.bc import (
    Batch,
    Schedule,
    bc_epoch,
    resolve_device,
    save_bc_checkpoint,
    train_epochs,
)
from hd_deploy.train.config import MACHINE, CloneConfig
from hd_deploy.train.rollout import DistillData, _map, _policy
from hd_deploy.train.rundir import apply_changes, exclusive_run, read_run, recover
from hd_deploy.train.runlog import CsvLog

LOG_COLUMNS = ("epoch", "round", "samples", "wall_s", "loss", "lr")


@dataclass
class CloneResult:
    """Where a cloning run ended."""

    run_dir: Path
    epochs: int
    loss: float
    samples: int
    stopped: bool = False  # by a signal (Ctrl-C, SIGTERM), a checkpoint written


def expert_robots(experts_dir: str | Path) -> list[tuple[str, str]]:
    """``(name, MJCF source)`` of every finished expert in a folder, sorted by name.

    Raises:
        FileNotFoundError: The folder holds no finished expert.
    """
    folder = Path(experts_dir)
    records = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not records:
        raise FileNotFoundError(f"{folder}: no experts (train them with hd-experts)")
    out = []
    for path in records:
        rec = json.loads(path.read_text())
        out.append((rec["name"], rec["source"]))
    return out


@exclusive_run
def clone_teacher(
    experts_dir: str | Path,
    run_dir: str | Path,
    *,
    teacher_config: TeacherConfig | None = None,
    config: CloneConfig = CloneConfig(),
    resume: bool = False,
    changes: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> CloneResult:
    """Clone the experts in ``experts_dir`` into a teacher; writes ``run_dir/checkpoint``.

    Args:
        experts_dir: Folder written by ``hd-experts``.
        run_dir: Output folder (``checkpoint/``, ``data.npz``, ``progress.csv``, plot).
        teacher_config: Teacher size (default ``TeacherConfig.small()``); ignored on resume.
        config: Cloning settings; on resume the saved settings are used.
        resume: Continue from ``run_dir/checkpoint`` (collected data is reused, a DAgger
            round whose data were saved before the run stopped included).
        changes: On resume, the machine settings (``config.MACHINE``: workers, threads,
            device) to change from here on; ``run.json`` records each change.
        show_progress: Show progress bars.

    Raises:
        FileExistsError: run_dir holds a run and resume is False.
        FileNotFoundError: No experts, or resume without a checkpoint.
        CheckpointError: An expert is unreadable or was trained on another robot.
        ConfigError: No such device.
    """
    resolve_device(config.device)  # fail before a run folder is written
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint"
    robots = expert_robots(experts_dir)
    state = None
    if resume:
        if not recover(ckpt) or not (ckpt / "trainer_state.pt").exists():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        meta = read_run(run_dir, ("clone", "robots"))
        robots = [tuple(r) for r in meta["robots"]]
        teacher = load_teacher(ckpt)
        state = torch.load(ckpt / "trainer_state.pt", weights_only=True, map_location="cpu")
        config = apply_changes(run_dir, meta, "clone", CloneConfig.from_dict(meta["clone"]),
                               changes, MACHINE, ("after_epoch", state["epoch"]),
                               check=lambda new: resolve_device(new.device))  # fmt: skip
    else:
        if (run_dir / "run.json").exists():
            raise FileExistsError(f"{run_dir}: already holds a run (use --resume or a new folder)")
        run_dir.mkdir(parents=True, exist_ok=True)
        teacher = TeacherPolicy(teacher_config or TeacherConfig.small())
        meta = {"clone": config.to_dict(), "teacher": teacher.config.to_dict(),
                "experts": str(experts_dir), "robots": robots}  # fmt: skip
        atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=2))
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    params = list(teacher.actor_parameters())
    opt = torch.optim.Adam(params, lr=config.lr)
    log = CsvLog(run_dir / "progress.csv", LOG_COLUMNS)
    if state is not None:
        torch.set_rng_state(state["torch_rng"])
        log.truncate_after("epoch", state["epoch"])

    names = [n for n, _ in robots]
    fingerprints, places = fingerprints_and_places(  # once per run
        [src for _, src in robots], teacher.config.max_limbs
    )
    experts = str(meta["experts"])
    data_path = run_dir / "data.npz"
    if data_path.exists():
        data = DistillData.load(data_path)
    else:
        data = _collect(experts, robots, None, config, 0, teacher.config.max_limbs, show_progress)
        data.save(data_path)
    if state is None:
        teacher.normalizer.update(torch.as_tensor(data.proprio),
                                  torch.as_tensor(data.limb_mask[data.robot]))  # fmt: skip
    teacher.to(device)
    if state is not None:
        opt.load_state_dict(state["optimizer"])  # after .to(): its moments follow the params
    schedule = Schedule(config.epochs, config.dagger_rounds + 1, config.lr,
                        checkpoint_every=config.checkpoint_every)  # fmt: skip

    end = train_epochs(
        data, schedule, opt,
        epoch_fn=lambda d: _epoch(teacher, params, opt, d, config, device),
        collect_round=lambda rnd: _collect(experts, robots, str(ckpt), config, rnd,
                                           teacher.config.max_limbs, show_progress),
        save=partial(save_bc_checkpoint, ckpt, teacher, opt, robots=names,
                     fingerprints=fingerprints, contexts=places, device=device,
                     extra={"trainer": "hd-clone"}),
        log=log, row=lambda d: {"lr": opt.param_groups[0]["lr"]},
        data_path=data_path, state=state,
        curve=(run_dir / "learning_curve.png", "Teacher cloned from experts"),
        label="clone", show_progress=show_progress,
    )  # fmt: skip
    return CloneResult(run_dir, end.epochs, end.loss, end.data.n_samples, stopped=end.stopped)


def _epoch(teacher: TeacherPolicy, params, opt, data: DistillData, config: CloneConfig,
           device: torch.device) -> float:  # fmt: skip
    def predict(batch: Batch) -> torch.Tensor:
        return teacher.action_mean(batch.proprio, *batch.sample_context())

    teacher.train()
    loss = bc_epoch(predict, params, opt, data, batch_size=config.batch_size,
                    robots_per_batch=config.robots_per_batch,
                    max_grad_norm=config.max_grad_norm, device=device)  # fmt: skip
    teacher.eval()
    return loss


# --- data ---------------------------------------------------------------------------


def _collect(experts, robots, teacher_ckpt, config: CloneConfig, rnd, max_limbs, show_progress):
    steps = config.dagger_samples_per_robot if teacher_ckpt else config.samples_per_robot
    jobs = [(experts, name, src, teacher_ckpt, steps, config.action_noise,
             config.seed * 100_003 + 7919 * rnd + i, max_limbs)
            for i, (name, src) in enumerate(robots)]  # fmt: skip
    label = "DAgger data" if teacher_ckpt else "expert data"
    parts = _map(_collect_job, jobs, workers=config.n_workers, label=label,
                 show_progress=show_progress)  # fmt: skip
    return DistillData.from_parts(parts)


def _collect_job(args) -> dict:
    experts, name, source, teacher_ckpt, steps, noise, seed, max_limbs = args
    from hd_deploy.envs.task import LocomotionTask, TaskConfig
    from hd_deploy.train.experts import Expert

    torch.set_num_threads(1)
    task = LocomotionTask(source, config=TaskConfig(max_limbs=max_limbs))
    expert = Expert.load(experts, name)
    robot = task.robot
    if expert.fingerprint != robot.fingerprint:
        raise CheckpointError(f"expert {name} was trained on another robot than {source}")
    n, L = robot.n_limbs, max_limbs
    ctx_np, mask_np = task.padded_context()
    ctx, mask = torch.as_tensor(ctx_np)[None], torch.as_tensor(mask_np)[None]
    teacher = _policy("teacher", teacher_ckpt) if teacher_ckpt else None
    proprio = np.zeros((steps, L, 17), np.float32)
    action = np.zeros((steps, L, 2), np.float32)
    rng = np.random.default_rng(seed)
    obs = task.reset(rng)
    for t in range(steps):
        proprio[t, :n] = obs
        label = expert.act(obs.reshape(-1))
        action[t, robot.actuator_limb, robot.actuator_slot] = label
        if teacher is not None:
            with torch.no_grad():
                mean = teacher.action_mean(torch.as_tensor(proprio[t : t + 1]), ctx, mask)[0]
            ctrl = robot.actions_to_ctrl(mean.numpy())
        else:
            ctrl = robot.scale_ctrl(label + noise * rng.standard_normal(label.shape))
        res = task.step(ctrl)
        obs = task.reset(rng) if (res.terminated or res.truncated) else task.observe()
    return {"proprio": proprio, "action": action, "context": ctx_np, "limb_mask": mask_np,
            "action_mask": robot.action_mask(L)}  # fmt: skip
