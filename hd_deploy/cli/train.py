"""hd-train, hd-distill and hd-eval."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hd_deploy.cli.common import (
    app,
    given,
    one_size,
    resume_hint,
    resume_keeps,
    user_errors,
    writable,
)
from hd_deploy.errors import ConfigError
from hd_deploy.files import atomic_write_text
from hd_deploy.train.config import MACHINE, RESUMABLE

if TYPE_CHECKING:
    from rich.table import Table

# --- hd-train -----------------------------------------------------------------------

# the options that name the settings a resumed run may change (RESUMABLE, MACHINE)
_FLAG = {"total_steps": "--steps", "n_workers": "--workers"}


def _flags(keys: Iterable[str]) -> str:
    return ", ".join(_FLAG.get(k, "--" + k.replace("_", "-")) for k in keys)


RESUME_CAN_CHANGE = _flags(RESUMABLE)
# hd-distill and hd-clone take no --threads (their config's default stands)
MACHINE_CAN_CHANGE = _flags(k for k in MACHINE if k != "threads")
# hd-distill's and hd-clone's --resume
ResumeOnMachine = Annotated[
    bool,
    typer.Option(
        help=f"Continue the run in --out, on its settings; {MACHINE_CAN_CHANGE} may change "
        "(run.json records it)."
    ),
]

# options the training commands share (the rollout machine, the learning rate, the seed)
RolloutWorkers = Annotated[int | None, typer.Option("--workers", help="Rollout worker processes.")]
TrainDevice = Annotated[
    str | None,
    typer.Option("--device", help="Training device: auto, cpu, cuda. [default: auto]"),
]
PeakLr = Annotated[float | None, typer.Option("--lr", help="Peak learning rate (cosine decay).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed.")]

train_app = app("Train the universal transformer teacher with PPO.")


@train_app.command()
@user_errors
def train(
    robots: Annotated[
        list[Path] | None, typer.Argument(help="MJCF files or folders (default: bundled robots).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/teacher"),
    steps: Annotated[
        int | None, typer.Option(help="Total environment steps. [default: 6000000]")
    ] = None,
    n_envs: Annotated[int | None, typer.Option(help="Parallel environments.")] = None,
    rollout_steps: Annotated[
        int | None,
        typer.Option(help="Steps per environment per iteration. [default: 128; 2560 --reference]"),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Passes over each batch (fewer with --target-kl). [default: 4; 8 --reference]"
        ),
    ] = None,
    minibatch_size: Annotated[
        int | None,
        typer.Option(help="Samples per gradient step. [default: 1024; 5120 --reference]"),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            help="Paper-sized teacher and PPO settings (GPU-sized); with --init, the PPO "
            "settings (the size is the checkpoint's)."
        ),
    ] = False,
    tiny: Annotated[bool, typer.Option(help="Tiny model and run, for smoke tests.")] = False,
    seed: Seed = 0,
    resume: Annotated[
        bool,
        typer.Option(
            help=f"Continue the run in --out, on its settings; {RESUME_CAN_CHANGE} may "
            "change (run.json records it)."
        ),
    ] = False,
    eval_robots: Annotated[
        list[Path] | None,
        typer.Option(help="Robots (files or folders) to evaluate zero-shot while training."),
    ] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Iterations between zero-shot evaluations. [default: 50]")
    ] = None,
    overlap: Annotated[
        bool, typer.Option(help="Collect the next rollout while updating on this one.")
    ] = True,
    device: Annotated[
        str | None, typer.Option(help="Learner device: cpu or cuda [default: cuda if present]")
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(help="Stop (checkpoint written) after this many minutes; --resume goes on."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start from this teacher checkpoint folder, not from scratch."),
    ] = None,
    init_state: Annotated[
        bool,
        typer.Option(
            help="With --init, carry its run's Adam moments and reward scale too "
            "(trainer_state.pt): a branch of that run with new settings, without the jump "
            "a fresh Adam's first steps make."
        ),
    ] = False,
    critic_warmup: Annotated[
        int | None,
        typer.Option(
            help="First iterations that train only the value network. "
            "[default: 10 with --init, 0 with --init-state or without --init]"
        ),
    ] = None,
    lr_warmup: Annotated[
        int,
        typer.Option(
            help="First iterations of this run whose learning rate ramps from 0.1x to 1x "
            "(MetaMorph's: 5), softening a fresh Adam's first steps."
        ),
    ] = 0,
    target_kl: Annotated[
        float | None,
        typer.Option(
            help="Stop an update once its approximate KL from the policy it started from "
            "exceeds this. [default: 0, off]"
        ),
    ] = None,
    kl_stop: Annotated[
        str | None,
        typer.Option(
            help="Where --target-kl is checked: minibatch (MetaMorph's: before each gradient "
            "step) or epoch (the epoch's mean, after it). [default: minibatch; runs from "
            "before 2026-12-02: epoch]"
        ),
    ] = None,
    kl_estimator: Annotated[
        str | None,
        typer.Option(
            help="The KL estimate --target-kl compares: k1 (MetaMorph's: the mean of -log r, "
            "can be negative on a minibatch) or k3 (the mean of r - 1 - log r, never "
            "negative). [default: k1; runs from before 2026-12-03: k3]"
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate. [default: 3e-4]")] = None,
    clip_value: Annotated[
        bool | None,
        typer.Option(
            "--clip-value/--no-clip-value",
            help="MetaMorph's value-loss clipping: a value prediction gains nothing by "
            "moving more than the PPO clip (0.2) from where the update started. Also on "
            "--resume. [default: off, or the run's]",
        ),
    ] = None,
    robot_sampling: Annotated[
        str | None,
        typer.Option(
            help="How an environment picks its next robot: balanced (MetaMorph's: in "
            "inverse proportion to the robot's recent episode length, so robots that fall "
            "early get as many steps as robots that walk) or uniform. [default: balanced; "
            "runs from before 2026-12-02: uniform]"
        ),
    ] = None,
    context_noise: Annotated[
        float | None,
        typer.Option(
            help="Gaussian noise on each training episode's morphology context, in standard "
            "deviations of each feature over the training robots' limbs (one draw an "
            "episode; the zero-shot evaluation sees the exact context). Also on --resume. "
            "[default: 0, or the run's]"
        ),
    ] = None,
    advantage_norm: Annotated[
        str | None,
        typer.Option(
            help="How advantages are scaled: batch (MetaMorph's: by the whole batch's std) "
            "or robot (each robot's by the size of its own samples, so robots with small "
            "returns pull as hard as the fast walkers). Also on --resume. [default: batch, "
            "or the run's]"
        ),
    ] = None,
    action_std: Annotated[
        float | None,
        typer.Option(help="Fixed exploration std of the policy. [default: the model's, 0.9]"),
    ] = None,
    pos_embedding: Annotated[
        bool | None,
        typer.Option(
            "--pos-embedding/--no-pos-embedding",
            help="A learned embedding per limb slot added to every token (MetaMorph's); "
            "without it (ModuMorph's MetaMorph*, the HyperDistill authors' teacher) a "
            "limb's role comes from its morphology context alone. A new model only: with "
            "--init the checkpoint's (scripts/drop_pos_embedding.py drops it). [default: on]",
        ),
    ] = None,
    update_normalizer: Annotated[
        bool | None,
        typer.Option(
            "--update-normalizer/--keep-normalizer",
            help="Update the observation statistics from the rollouts. "
            "[default: keep with --init, else update]",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Learner threads (share a machine). [default: 2]")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="The learner's matmuls: fp32, or bf16 (about 2x faster updates on a CPU "
            "with AVX512-BF16; weights and Adam stay float32). Also on --resume. "
            "[default: fp32, or the run's]"
        ),
    ] = None,
) -> None:
    """Train a teacher; checkpoints, progress.csv and learning_curve.png go to --out."""
    import dataclasses

    from hd_deploy.models import TeacherConfig
    from hd_deploy.morphology.sources import bundled_robots, resolve_robots
    from hd_deploy.train.config import PPOConfig
    from hd_deploy.train.ppo import train_teacher

    one_size(reference=reference, tiny=tiny)
    files = resolve_robots(robots) if robots else bundled_robots()
    if reference:
        ppo, model = PPOConfig.reference(), TeacherConfig.reference()
    elif tiny:
        ppo, model = PPOConfig.tiny(), TeacherConfig.tiny()
    else:
        ppo, model = PPOConfig(), TeacherConfig.small()
    resume_keeps(
        resume, out,
        {"--init": (init, "init"), "--init-state": (init_state or None, "init_state"),
         "--critic-warmup": (critic_warmup, "ppo.critic_warmup"),
         "--lr-warmup": (lr_warmup or None, "ppo.lr_warmup"),
         "--action-std": (action_std, "teacher.action_std"),
         "--pos-embedding": (pos_embedding, "teacher.pos_embedding"),
         "--update-normalizer": (update_normalizer, "ppo.update_normalizer"),
         "--n-envs": (n_envs, "ppo.n_envs"),
         "--rollout-steps": (rollout_steps, "ppo.rollout_steps")},
        can_change=f"{RESUME_CAN_CHANGE} (run.json records each change)",
        configs={"ppo": PPOConfig, "teacher": TeacherConfig},
    )  # fmt: skip
    if pos_embedding is not None and init is not None and not resume:
        raise ConfigError(
            "--init takes the model of its checkpoint, positional embedding included "
            "(scripts/drop_pos_embedding.py writes one without)"
        )
    if pos_embedding is not None:
        model = dataclasses.replace(model, pos_embedding=pos_embedding)
    changes = given(
        n_workers=workers, eval_every=eval_every, lr=lr, epochs=epochs,
        minibatch_size=minibatch_size, target_kl=target_kl, kl_stop=kl_stop,
        kl_estimator=kl_estimator, threads=threads, robot_sampling=robot_sampling,
        clip_value=clip_value, context_noise=context_noise, advantage_norm=advantage_norm,
    )  # fmt: skip
    if critic_warmup is None:
        critic_warmup = 10 if init is not None and not init_state else 0
    if update_normalizer is None:
        update_normalizer = init is None
    if not resume:  # a resumed run's settings are its own, with ``changes``
        ppo = dataclasses.replace(
            ppo, seed=seed, overlap=overlap, critic_warmup=critic_warmup, lr_warmup=lr_warmup,
            update_normalizer=update_normalizer,
            **given(total_steps=steps, n_envs=n_envs, rollout_steps=rollout_steps, **changes),
        )  # fmt: skip
    result = train_teacher(
        files, out, teacher_config=model, ppo=ppo, resume=resume,
        total_steps=steps if resume else None, show_progress=sys.stderr.isatty(),
        eval_robots=resolve_robots(eval_robots) if eval_robots else (), device=device,
        max_wall_s=None if max_minutes is None else 60.0 * max_minutes, init=init,
        init_state=init_state,
        action_std=action_std, precision=precision, changes=changes if resume else None,
    )  # fmt: skip
    recent = (
        f"training return {result.training_return:.1f} (mean over robots)"
        if math.isfinite(result.training_return)
        else "no episode finished yet"
    )
    typer.echo(
        f"teacher: {result.env_steps} env steps, {recent}, "
        f"checkpoint {result.run_dir / 'checkpoint'}"
    )
    resume_hint(result.stopped, "hd-train", out)


# --- hd-experts ---------------------------------------------------------------------

experts_app = app("Train one small PPO expert per robot (the fast route to a teacher).")


@experts_app.command()
@user_errors
def experts(
    robots: Annotated[list[Path], typer.Argument(help="MJCF files or folders.")],
    out: Annotated[Path, typer.Option(help="Folder for the experts.")] = Path("runs/experts"),
    steps: Annotated[
        int | None, typer.Option(help="Environment steps per robot. [default: 300000]")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (robots in parallel).")] = 2,
    tiny: Annotated[bool, typer.Option(help="Tiny run, for smoke tests.")] = False,
    seed: Seed = 0,
) -> None:
    """Train an MLP expert per robot with PPO; robots already done in --out are skipped."""
    import dataclasses

    import numpy as np

    from hd_deploy.morphology.sources import resolve_robots
    from hd_deploy.train.config import ExpertConfig
    from hd_deploy.train.experts import train_experts

    files = resolve_robots(robots)
    cfg = ExpertConfig.tiny() if tiny else ExpertConfig()
    cfg = dataclasses.replace(cfg, seed=seed, **given(total_steps=steps))
    records = train_experts(files, out, config=cfg, workers=workers,
                            show_progress=sys.stderr.isatty())  # fmt: skip
    returns = [r["return_deterministic"] for r in records]
    typer.echo(f"experts: {len(records)} robots in {out}, deterministic return "
               f"mean {np.mean(returns):.1f}, min {np.min(returns):.1f}")  # fmt: skip


# --- hd-clone -----------------------------------------------------------------------

clone_app = app("Clone per-robot experts into the universal transformer teacher.")


@clone_app.command()
@user_errors
def clone(
    experts_dir: Annotated[Path, typer.Argument(help="Folder written by hd-experts.")],
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/teacher-clone"),
    epochs: Annotated[int | None, typer.Option(help="Training epochs. [default: 24]")] = None,
    samples: Annotated[
        int | None, typer.Option(help="Expert samples per robot. [default: 4000]")
    ] = None,
    dagger: Annotated[int | None, typer.Option(help="DAgger rounds (teacher acts).")] = None,
    workers: RolloutWorkers = None,
    device: TrainDevice = None,
    lr: PeakLr = None,
    reference: Annotated[
        bool, typer.Option(help="Paper-sized teacher (d 128, 5 layers; GPU-sized).")
    ] = False,
    tiny: Annotated[bool, typer.Option(help="Tiny model and run, for smoke tests.")] = False,
    seed: Seed = 0,
    resume: ResumeOnMachine = False,
) -> None:
    """Behaviour-clone the experts (plus DAgger) into a teacher checkpoint in --out."""
    import dataclasses

    from hd_deploy.models import TeacherConfig
    from hd_deploy.train.clone import clone_teacher
    from hd_deploy.train.config import CloneConfig

    one_size(reference=reference, tiny=tiny)
    resume_keeps(
        resume, out,
        {"--epochs": (epochs, "clone.epochs"), "--samples": (samples, "clone.samples_per_robot"),
         "--dagger": (dagger, "clone.dagger_rounds"), "--lr": (lr, "clone.lr")},
        can_change=f"{MACHINE_CAN_CHANGE} (run.json records each change)",
        configs={"clone": CloneConfig},
    )  # fmt: skip
    machine = given(n_workers=workers, device=device)  # a resumed run may change these
    cfg = CloneConfig.tiny() if tiny else CloneConfig()
    cfg = dataclasses.replace(
        cfg, seed=seed,
        **given(epochs=epochs, samples_per_robot=samples, dagger_rounds=dagger, lr=lr),
        **machine,
    )  # fmt: skip
    if reference:
        # Cloning trains no critic: keep the value network at the small size.
        small = TeacherConfig.small()
        model = dataclasses.replace(
            TeacherConfig.reference(), value_d_model=small.value_d_model,
            value_layers=small.value_layers, value_heads=small.value_heads,
            value_ff=small.value_ff,
        )  # fmt: skip
    else:
        model = TeacherConfig.tiny() if tiny else TeacherConfig.small()
    result = clone_teacher(experts_dir, out, teacher_config=model, config=cfg, resume=resume,
                           changes=machine, show_progress=sys.stderr.isatty())  # fmt: skip
    typer.echo(
        f"teacher: cloned on {result.samples} samples, {result.epochs} epochs, loss "
        f"{result.loss:.4g}, checkpoint {result.run_dir / 'checkpoint'}"
    )
    resume_hint(result.stopped, "hd-clone", out)


# --- hd-distill ---------------------------------------------------------------------

distill_app = app("Distil the teacher into the hypernetwork student.")


@distill_app.command()
@user_errors
def distill(
    robots: Annotated[
        list[Path] | None, typer.Argument(help="MJCF files or folders (default: bundled robots).")
    ] = None,
    teacher: Annotated[
        Path | None,
        typer.Option(help="Teacher checkpoint (default: the shipped one; on --resume the run's)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/student"),
    epochs: Annotated[int | None, typer.Option(help="Training epochs. [default: 50]")] = None,
    samples: Annotated[
        int | None, typer.Option(help="Teacher samples per robot. [default: 8000]")
    ] = None,
    start_samples: Annotated[
        int | None,
        typer.Option(help="More samples per robot from episode openings, each collection."),
    ] = None,
    start_steps: Annotated[
        int | None, typer.Option(help="Length of those openings in control steps (100).")
    ] = None,
    dagger: Annotated[
        int | None, typer.Option(help="DAgger rounds (student acts, teacher labels). [default: 0]")
    ] = None,
    lr: PeakLr = None,
    warmup: Annotated[
        int | None, typer.Option(help="Epochs of linear learning-rate warm-up (default 3).")
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="Decoupled weight decay (AdamW-style); default 0.")
    ] = None,
    context_noise: Annotated[
        float | None,
        typer.Option(help="Gaussian noise on the context while training, in feature stds."),
    ] = None,
    clip_labels: Annotated[
        bool | None,
        typer.Option(
            help="Clip the teacher's actions to [-1, 1] (the range the controls run at) "
            "before the loss. [default: no-clip-labels]"
        ),
    ] = None,
    init: Annotated[
        Path | None, typer.Option(help="Start from this student checkpoint (weights and size).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Seed the run with another run's data.npz, not a new collection; ROBOTS "
            "in its order (that run's robots.txt)."
        ),
    ] = None,
    workers: RolloutWorkers = None,
    device: TrainDevice = None,
    reference: Annotated[bool, typer.Option(help="Paper-sized hypernetwork.")] = False,
    tiny: Annotated[
        bool, typer.Option(help="Tiny model and run, for smoke tests (with --init: the run).")
    ] = False,
    seed: Seed = 0,
    resume: ResumeOnMachine = False,
) -> None:
    """Roll out the teacher, train the hypernetwork by behaviour cloning, checkpoint it."""
    import dataclasses

    from hd_deploy.models import HyperNetConfig
    from hd_deploy.morphology.sources import bundled_robots, resolve_robots
    from hd_deploy.train.config import DistillConfig
    from hd_deploy.train.distill import distill_student
    from hd_deploy.train.shipped import shipped

    one_size(reference=reference, tiny=tiny)
    resume_keeps(
        resume, out,
        {"--init": (init, "init"), "--epochs": (epochs, "distill.epochs"),
         "--samples": (samples, "distill.samples_per_robot"),
         "--start-samples": (start_samples, "distill.start_samples_per_robot"),
         "--start-steps": (start_steps, "distill.start_steps"),
         "--dagger": (dagger, "distill.dagger_rounds"), "--lr": (lr, "distill.lr"),
         "--warmup": (warmup, "distill.warmup_epochs"),
         "--weight-decay": (weight_decay, "distill.weight_decay"),
         "--context-noise": (context_noise, "distill.context_noise"),
         "--clip-labels": (clip_labels, "distill.clip_labels")},
        can_change=f"{MACHINE_CAN_CHANGE} (run.json records each change)",
        configs={"distill": DistillConfig},
    )  # fmt: skip
    if init is not None and reference:
        raise ConfigError("--init takes the size of its checkpoint; --reference sets another")
    files = resolve_robots(robots) if robots else bundled_robots()
    if reference:
        cfg, model = DistillConfig(), HyperNetConfig.reference()
    elif tiny:
        cfg, model = DistillConfig.tiny(), HyperNetConfig.tiny()
    else:
        cfg, model = DistillConfig(), HyperNetConfig.small()
    machine = given(n_workers=workers, device=device)  # a resumed run may change these
    cfg = dataclasses.replace(
        cfg, seed=seed,
        **given(epochs=epochs, samples_per_robot=samples, lr=lr, dagger_rounds=dagger,
                warmup_epochs=warmup, weight_decay=weight_decay, context_noise=context_noise,
                start_samples_per_robot=start_samples, start_steps=start_steps,
                clip_labels=clip_labels),
        **machine,
    )  # fmt: skip
    result = distill_student(
        teacher or (None if resume else shipped("teacher")), files, out, student_config=model,
        config=cfg,
        init=init, data=data, resume=resume, changes=machine,
        show_progress=sys.stderr.isatty(),
    )  # fmt: skip
    typer.echo(
        f"student: {result.epochs} epochs on {result.samples} samples, loss {result.loss:.4g}, "
        f"checkpoint {result.run_dir / 'checkpoint'}"
    )
    resume_hint(result.stopped, "hd-distill", out)


# --- hd-eval ------------------------------------------------------------------------

eval_app = app("Evaluate a policy on robots: mean and std of the return.")


@eval_app.command("eval")
@user_errors
def evaluate_cmd(
    policy: Annotated[
        str, typer.Argument(help="'teacher', 'student', a checkpoint folder or an .onnx file.")
    ],
    robots: Annotated[
        list[Path] | None, typer.Option("--robots", help="MJCF files or folders (repeatable).")
    ] = None,
    episodes: Annotated[int, typer.Option(help="Episodes per robot.")] = 3,
    seed: Annotated[int, typer.Option(help="Base seed (episode e uses (seed, e)).")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Evaluate POLICY (the student through its baked MLPs) on every robot."""
    from rich.console import Console

    from hd_deploy.morphology.sources import bundled_robots, resolve_robots
    from hd_deploy.train.rollout import evaluate
    from hd_deploy.train.shipped import resolve_policy

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    writable(json_path, "--json")
    kind, path = resolve_policy(policy)
    files = resolve_robots(robots) if robots else bundled_robots()
    report = evaluate(kind, path, files, episodes=episodes, seed=seed, workers=workers,
                      show_progress=sys.stderr.isatty())  # fmt: skip
    per_robot = f"{episodes} episode{'s' if episodes != 1 else ''} per robot"
    Console().print(eval_table(report, title=f"{kind} {path}: {per_robot}, seed {seed}"))
    seen = seen_line(report)
    if seen:
        typer.echo(seen)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")


def seen_line(report: dict) -> str | None:
    """A note when some of an :func:`~hd_deploy.train.rollout.evaluate` report's robots are
    bodies the checkpoint trained on (by fingerprint, whatever their names): how many, and
    the mean return on them and on the rest. None when none are, or it cannot tell."""
    robots = report["robots"]
    seen = [r["return_mean"] for r in robots if r.get("seen_in_training")]
    if not seen:
        return None
    rest = [r["return_mean"] for r in robots if not r.get("seen_in_training")]
    rest_text = f", {sum(rest) / len(rest):.1f} on the other {len(rest)}" if rest else ""
    return (
        f"note: {len(seen)} of {len(robots)} robots are bodies this checkpoint trained on (by "
        f"fingerprint): mean return {sum(seen) / len(seen):.1f} on them{rest_text}"
    )


def eval_table(report: dict, *, title: str) -> Table:
    """An :func:`~hd_deploy.train.rollout.evaluate` report as a table that fits 80 columns:
    the numbers never wrap, a long robot name folds onto a second line."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("robot", overflow="fold")
    for col in ("limbs", "return\nmean", "return\nstd", "length\nsteps"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["robots"]:
        table.add_row(r["name"], str(r["n_limbs"]), f"{r['return_mean']:.1f}",
                      f"{r['return_std']:.1f}", f"{r['episode_length_mean']:.0f}")  # fmt: skip
    table.add_row("[bold]all", "", f"[bold]{report['return_mean']:.1f}",
                  f"{report['return_std']:.1f}", "")  # fmt: skip
    return table
