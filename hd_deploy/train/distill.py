"""Distil the transformer teacher into the hypernetwork student (HyperDistill).

1. Roll out the teacher (deterministic action mean) on every distillation robot in
   parallel worker processes; store raw proprioception and the teacher's action mean.
2. Behaviour cloning: each batch draws ``robots_per_batch`` robots and an equal share of
   samples from each, generates the base-MLP weights once per robot, and minimises
   0.5 x squared error over real actuators, averaged per robot (balanced over robots).
3. Optional DAgger rounds: the *student* acts, the teacher labels, the data grows.

The learning rate ramps up over the first epochs and, within them, over the first
optimiser steps (warm-up; Adam's first steps move every weight by about the learning rate,
and a short run whose epochs are one step each otherwise ends worse than it started), then
decays along a cosine over all epochs (optional decoupled weight decay and noise on the
context).

The student starts from the teacher's observation statistics (frozen), so a baked MLP
sees exactly what the teacher saw.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import torch

from hd_deploy.errors import ConfigError
from hd_deploy.files import atomic_write_text
from hd_deploy.models import HyperNetConfig, HyperNetPolicy, load_student, load_teacher
from hd_deploy.models.checkpoint import CheckpointError
from hd_deploy.morphology.nearness import fingerprints_and_places
from hd_deploy.train.bc import (
    Batch,
    Schedule,
    bc_epoch,
    masked_bc_error,
    resolve_device,
    save_bc_checkpoint,
    train_epochs,
)
from hd_deploy.train.config import MACHINE, DistillConfig
from hd_deploy.train.rollout import DistillData, collect
from hd_deploy.train.rundir import apply_changes, exclusive_run, read_run, recover
from hd_deploy.train.runlog import CsvLog, progress_bar

LOG_COLUMNS = ("epoch", "round", "samples", "wall_s", "loss", "teacher_action_rms")
#: The first teacher collection of a run (samples, wall time, workers); the training's own
#: wall time (progress.csv) starts after it.
COLLECTION_FILE = "collection.json"


@dataclass
class DistillResult:
    """Where a distillation run ended."""

    run_dir: Path
    epochs: int
    loss: float
    samples: int
    stopped: bool = False  # by a signal (Ctrl-C, SIGTERM), a checkpoint written


@exclusive_run
def distill_student(
    teacher_checkpoint: str | Path | None,
    robots: Sequence[str | Path],
    run_dir: str | Path,
    *,
    student_config: HyperNetConfig | None = None,
    config: DistillConfig = DistillConfig(),
    init: str | Path | None = None,
    data: str | Path | None = None,
    resume: bool = False,
    changes: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> DistillResult:
    """Collect teacher data, train the hypernetwork, write ``run_dir/checkpoint``.

    Args:
        teacher_checkpoint: Teacher checkpoint folder; None on resume: the run's own (run.json).
        robots: MJCF files of the distillation robots.
        run_dir: Output folder (``checkpoint/``, ``data.npz``, ``progress.csv``, plot).
        student_config: Hypernetwork size (default ``HyperNetConfig.small()``).
        config: Distillation settings; on resume the saved settings are used.
        init: Student checkpoint to start from (its weights and size; ``student_config`` is
            then not used): more rounds, robots or epochs on top of a finished run.
        data: Seed the new run with these samples (another run's ``data.npz``, linked or
            copied into ``run_dir``) instead of collecting them: ``robots`` must be its
            robots in its order (that run's ``robots.txt``). A ``data.npz`` already in
            ``run_dir`` (``scripts/extend_data.py`` writes one) seeds it the same way.
        resume: Continue from ``run_dir/checkpoint`` (collected data is reused, a DAgger
            round whose data were saved before the run stopped included).
        changes: On resume, the machine settings (``config.MACHINE``: workers, threads,
            device) to change from here on; ``run.json`` records each change.
        show_progress: Show progress bars.

    Raises:
        FileExistsError: run_dir holds a run and resume is False.
        FileNotFoundError: resume is True and run_dir holds no checkpoint.
        CheckpointError: The teacher (or ``init`` student) checkpoint is missing, corrupt or
            of the wrong kind.
        ConfigError: No such device; no teacher for a new run, or on resume another than
            the run's; student and teacher of different ``max_limbs``; seed data of
            other robots or in another order; ``data`` on resume or beside a ``data.npz``
            already in ``run_dir``.
    """
    resolve_device(config.device)  # fail before a run folder is written
    run_dir = Path(run_dir)
    ckpt, data_path = run_dir / "checkpoint", run_dir / "data.npz"
    robots = [str(r) for r in robots]
    if resume:
        if data is not None:
            raise ConfigError("--resume uses the run's own data.npz; drop --data")
        if not recover(ckpt) or not (ckpt / "trainer_state.pt").exists():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        meta = read_run(run_dir, ("distill", "robots"))
        if teacher_checkpoint is None:
            teacher_checkpoint = meta["teacher"]  # the run's own teacher, not the shipped one
        elif Path(teacher_checkpoint).resolve() != Path(meta["teacher"]).resolve():
            raise ConfigError(
                f"{run_dir} was distilled from {meta['teacher']}, not {teacher_checkpoint}; "
                "leave --teacher out to resume it"
            )
        teacher = load_teacher(teacher_checkpoint)
        robots = meta["robots"]
        student = load_student(ckpt)
        state = torch.load(ckpt / "trainer_state.pt", weights_only=True, map_location="cpu")
        config = apply_changes(run_dir, meta, "distill", DistillConfig.from_dict(meta["distill"]),
                               changes, MACHINE, ("after_epoch", state["epoch"]),
                               check=lambda new: resolve_device(new.device))  # fmt: skip
        seeded = _load_data(data_path, len(robots))
    else:
        if (run_dir / "run.json").exists():
            raise FileExistsError(f"{run_dir}: already holds a run (use --resume or a new folder)")
        if teacher_checkpoint is None:
            raise ConfigError("a new distillation run needs a teacher checkpoint")
        teacher = load_teacher(teacher_checkpoint)
        if init:
            student = load_student(init)
        else:
            student = HyperNetPolicy(student_config or HyperNetConfig.small())
        if student.config.max_limbs != teacher.config.max_limbs:
            raise ConfigError(
                f"student hosts {student.config.max_limbs} limbs, teacher "
                f"{teacher.config.max_limbs}; they must agree"
            )
        seed_path = _seed_path(data, data_path)
        seeded = _load_data(seed_path, len(robots))  # a new run may be seeded with another's data
        if seeded is not None:
            check_robot_order(seeded, robots, teacher.config.max_limbs, seed_path, show_progress)
        run_dir.mkdir(parents=True, exist_ok=True)
        if seed_path != data_path:
            _link_or_copy(seed_path, data_path)
        student.normalizer.load_state_dict(teacher.normalizer.state_dict())
        atomic_write_text(
            run_dir / "run.json",
            json.dumps(
                {
                    "distill": config.to_dict(),
                    "student": student.config.to_dict(),
                    "teacher": str(teacher_checkpoint),
                    "init": str(init) if init else None,
                    "data": str(data) if data else None,
                    "robots": robots,
                },
                indent=2,
            ),
        )
        state = None
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    student.to(device)
    opt = make_optimizer(student, config)
    log = CsvLog(run_dir / "progress.csv", LOG_COLUMNS)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        log.truncate_after("epoch", state["epoch"])

    if seeded is None:
        t_collect = time.time()
        samples = collect(teacher_checkpoint, robots, config=config, show_progress=show_progress)
        samples.save(data_path)
        record = {"samples": samples.n_samples, "wall_s": round(time.time() - t_collect, 1),
                  "workers": config.n_workers}  # fmt: skip
        atomic_write_text(run_dir / COLLECTION_FILE, json.dumps(record, indent=2) + "\n")
    else:
        samples = seeded
    names = [Path(r).stem for r in robots]
    # once per run, for checkpoints
    fingerprints, places = fingerprints_and_places(robots, student.config.max_limbs)
    schedule = Schedule(config.epochs, config.dagger_rounds + 1, config.lr,
                        config.warmup_epochs, config.checkpoint_every)  # fmt: skip

    def collect_round(rnd: int) -> DistillData:
        return collect(teacher_checkpoint, robots, config=config, student_checkpoint=ckpt,
                       show_progress=show_progress, seed_offset=rnd)  # fmt: skip

    end = train_epochs(
        samples, schedule, opt,
        epoch_fn=lambda d: train_epoch(student, opt, d, config, device),
        collect_round=collect_round, log=log,
        save=partial(save_bc_checkpoint, ckpt, student, opt, robots=names,
                     fingerprints=fingerprints, contexts=places, device=device),
        row=lambda d: {"teacher_action_rms": d.action_rms},
        data_path=data_path, state=state,
        curve=(run_dir / "learning_curve.png", "Hypernetwork distillation"),
        label="distil", show_progress=show_progress,
    )  # fmt: skip
    return DistillResult(run_dir, end.epochs, end.loss, end.data.n_samples, stopped=end.stopped)


def _seed_path(data: str | Path | None, data_path: Path) -> Path:
    """Where a new run's seed samples come from: ``data`` or the run folder's own file."""
    if data is None or Path(data).resolve() == data_path.resolve():
        return data_path
    data = Path(data)
    if data_path.exists():
        raise ConfigError(f"{data_path} already seeds this run; drop --data or that file")
    if not data.is_file():
        raise FileNotFoundError(f"--data {data}: no such file")
    return data


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` holds ``source``'s bytes: a hard link (data files run to gigabytes), or a
    copy across file systems. A DAgger round replaces the run's file, never the source."""
    try:
        os.link(source, target)
    except OSError:
        partial = target.with_suffix(".tmp.npz")  # an interrupted copy leaves no seed behind
        shutil.copyfile(source, partial)
        partial.replace(target)


def check_robot_order(
    data: DistillData,
    robots: Sequence[str | Path],
    max_limbs: int,
    path: Path,
    show_progress: bool,
) -> None:
    """Refuse seed samples whose ``i``-th robot is not ``robots[i]``: each robot's
    morphology context (as the collector computed it) must equal the data's.

    Raises:
        ConfigError: A robot differs; the message names the first one.
    """
    import numpy as np

    from hd_deploy.envs.task import LocomotionTask, TaskConfig

    config = TaskConfig(max_limbs=max_limbs)
    with progress_bar(disable=not show_progress) as bar:
        job = bar.add_task("check seed data", total=len(robots), status="")
        for i in range(len(robots)):
            bar.advance(job)
            ctx, mask = LocomotionTask(robots[i], config=config, headless=True).padded_context()
            same = np.array_equal(mask, data.limb_mask[i]) and np.allclose(
                ctx, data.context[i], rtol=0, atol=1e-6
            )
            if not same:
                raise ConfigError(
                    f"{path}: its robot {i + 1} is not {robots[i]} (another morphology); give "
                    "the robots in the data's order (robots.txt of the run that wrote it)"
                )


def _load_data(path: Path, n_robots: int) -> DistillData | None:
    """The samples already collected in ``path`` (None if absent), of ``n_robots`` robots."""
    if not path.exists():
        return None
    try:
        data = DistillData.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # truncated, not npz, fields
        raise CheckpointError(f"{path}: unreadable distillation data ({exc})") from None
    if data.n_robots != n_robots:
        raise ConfigError(f"{path}: holds data of {data.n_robots} robots, the run has {n_robots}")
    return data


def _trainable(student: HyperNetPolicy):
    return [p for name, p in student.named_parameters() if not name.startswith("normalizer.")]


def make_optimizer(student: HyperNetPolicy, config: DistillConfig) -> torch.optim.Optimizer:
    """Adam over the trainable parameters, with ``config.weight_decay`` decoupled (AdamW)."""
    return torch.optim.Adam(_trainable(student), lr=config.lr, weight_decay=config.weight_decay,
                            decoupled_weight_decay=True)  # fmt: skip


def context_scale(data: DistillData) -> torch.Tensor:
    """Per-feature std of the context over the real limbs of ``data``'s robots, ``(53,)``."""
    return torch.as_tensor(data.context[data.limb_mask].std(axis=0))


def train_epoch(student: HyperNetPolicy, opt, data: DistillData, config: DistillConfig,
                device: torch.device) -> float:  # fmt: skip
    """One pass over the data in robot-balanced batches; returns the mean loss.

    With ``config.context_noise`` each batch's robots see their context plus Gaussian noise of
    that many feature standard deviations (a fresh draw per batch).
    """
    noise = config.context_noise * context_scale(data).to(device)

    def predict(batch: Batch) -> torch.Tensor:
        context = batch.context
        if config.context_noise > 0:
            context = context + torch.randn_like(context) * noise
        weights = student.generate(context, batch.limb_mask)
        return student.apply(weights, batch.proprio, batch.local)

    student.train()
    loss = bc_epoch(predict, _trainable(student), opt, data, batch_size=config.batch_size,
                    robots_per_batch=config.robots_per_batch,
                    max_grad_norm=config.max_grad_norm, device=device,
                    warmup_steps=config.warmup_steps,
                    clip_labels=config.clip_labels)  # fmt: skip
    student.eval()
    return loss


class ImitationError(NamedTuple):
    """Open-loop error of a student on one robot's teacher-labelled states.

    ``loss`` is the training loss (0.5 x squared error over real actuators) and
    ``relative`` that loss over a zero action's: 0 is a perfect copy of the labels, 1 no
    better than standing still. ``executed`` and ``executed_relative`` are the same on the
    actions the robot runs, both clipped to [-1, 1] as the controls are: a teacher mean of
    2.5 and a student's 1.2 drive a motor alike.
    """

    loss: float
    relative: float
    executed: float
    executed_relative: float


def imitation_errors(student: HyperNetPolicy, data: DistillData) -> list[ImitationError]:
    """Open-loop :class:`ImitationError` of ``student`` per robot of ``data``."""
    out = []
    student.eval()
    for r in range(data.n_robots):
        idx = data.robot_indices(r)
        ctx = torch.as_tensor(data.context[r : r + 1])
        mask = torch.as_tensor(data.limb_mask[r : r + 1])
        target = torch.as_tensor(data.action[idx])
        amask = torch.as_tensor(data.action_mask[r], dtype=target.dtype).expand_as(target)
        with torch.no_grad():
            weights = student.generate(ctx, mask)
            pred = student.apply(weights, torch.as_tensor(data.proprio[idx]),
                                 torch.zeros(len(idx), dtype=torch.long))  # fmt: skip
        values = []  # raw, then executed: (loss, relative) each
        for p, t in ((pred, target), (pred.clamp(-1.0, 1.0), target.clamp(-1.0, 1.0))):
            loss = float(masked_bc_error(p, t, amask).mean())
            zero = float(masked_bc_error(torch.zeros_like(t), t, amask).mean())
            values += [loss, loss / zero if zero > 0 else float("nan")]
        out.append(ImitationError(*values))
    return out
