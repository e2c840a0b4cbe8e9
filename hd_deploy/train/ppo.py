"""PPO for the universal transformer teacher over many robots (MetaMorph recipe).

Per iteration: collect ``n_envs x rollout_steps`` transitions from worker processes
(each with the log-probability of its action under the policy that acted), update the
observation normaliser, recompute values under the new statistics, compute GAE, run
clipped-objective epochs. With overlap the batch was collected by the policy one update
behind the learner, so the update is the decoupled objective of Hilton et al. (2021, "Batch
size-invariance for policy optimization"): the clip is centred on the policy at the start of
the update (the proximal policy), and each sample is weighted by the truncated importance
weight proximal / acting (recorded at collection). Timeouts bootstrap from the
value of the last observation. Everything needed to continue (model, optimiser,
normaliser, reward scaler, step count, RNG) is checkpointed every few iterations.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hd_deploy.envs.task import TaskConfig
from hd_deploy.envs.vec_env import VecLocomotionEnv
from hd_deploy.errors import ConfigError, HdWarning
from hd_deploy.files import atomic_write_text
from hd_deploy.models import TeacherConfig, TeacherPolicy
from hd_deploy.models.checkpoint import load_teacher, read_checkpoint_info, save_checkpoint
from hd_deploy.morphology.nearness import fingerprints_and_places
from hd_deploy.stop import GracefulStop
from hd_deploy.train.bc import device_name, resolve_device
from hd_deploy.train.collect import (
    Collector,
    autocast,
    gaussian_log_density,
    native_bf16,
    obs_tensors,
)
from hd_deploy.train.config import (
    RESUMABLE,
    ROBOT_NORM_MIN_SAMPLES,
    WARMUP_FACTOR,
    PPOConfig,
)
from hd_deploy.train.rundir import (
    apply_changes,
    exclusive_run,
    read_run,
    recover,
    staging,
    swap_in,
)
from hd_deploy.train.runlog import CsvLog, plot_curve, progress_bar
from hd_deploy.train.sampling import RobotEpisodes, training_return
from hd_deploy.train.scaling import RunningScale

LOG_COLUMNS = (
    "iteration", "env_steps", "wall_s", "steps_per_s", "return_mean", "return_recent",
    "episode_length", "episodes", "unstable", "policy_loss", "value_loss", "approx_kl",
    "clip_frac", "lr", "eval_return", "eval_length", "stale_kl", "explained_var", "epochs",
    "return_robots", "grad_steps", "kl_k1",
)  # fmt: skip


@dataclass
class TrainResult:
    """Where a run ended."""

    run_dir: Path
    env_steps: int
    iterations: int
    training_return: float  # the last logged, as ``training_return`` reads it (nan: none yet)
    stopped: bool = False  # by a signal (Ctrl-C, SIGTERM), a checkpoint written


@exclusive_run
def train_teacher(
    robots: Sequence[str | Path],
    run_dir: str | Path,
    *,
    teacher_config: TeacherConfig | None = None,
    ppo: PPOConfig = PPOConfig(),
    task: TaskConfig = TaskConfig(),
    resume: bool = False,
    total_steps: int | None = None,
    show_progress: bool = True,
    device: str | None = None,
    eval_robots: Sequence[str | Path] = (),
    max_wall_s: float | None = None,
    init: str | Path | None = None,
    init_state: bool = False,
    action_std: float | None = None,
    precision: str | None = None,
    changes: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a universal teacher with PPO; writes checkpoints, CSV log and plot to run_dir.

    Args:
        robots: MJCF files of the training robots.
        run_dir: Output folder (``checkpoint/``, ``progress.csv``, ``learning_curve.png``,
            ``robots.csv``: each robot's recent episode length and return, and its share
            of the draws).
        teacher_config: Model size (default ``TeacherConfig.small()``); ignored on resume.
        ppo: PPO settings; on resume the saved settings are used.
        task: Locomotion task settings.
        resume: Continue from ``run_dir/checkpoint`` on the run's own robots.
        total_steps: On resume, a new total (to extend a finished run); else ignored.
        show_progress: Show a progress bar.
        device: Torch device (default: cuda when available, else cpu).
        eval_robots: Robots (usually unseen ones) on which every ``ppo.eval_every``
            iterations the checkpoint is evaluated, one deterministic episode each; the
            mean return is logged as ``eval_return`` (zero-shot return while training).
        max_wall_s: Stop after this many seconds of this call (checkpoint written), e.g.
            to end inside a machine's time limit; ``--resume`` continues. A first Ctrl-C
            or SIGTERM stops the same way at the end of the iteration
            (:class:`~hd_deploy.stop.GracefulStop`; ``stopped`` in the result).
        init: A teacher checkpoint folder to start from instead of a fresh model (a run
            folder is refused, as everywhere, with its checkpoint's path); its size
            replaces ``teacher_config``. Set ``ppo.critic_warmup`` so the value network
            learns its returns first.
        init_state: With ``init``, carry its run's Adam moments and reward scale
            (``trainer_state.pt`` beside the weights) as well: a branch of that run with new
            settings. A fresh Adam's first steps move every weight by the learning rate,
            which throws a trained policy far off (an approximate KL of 0.14-0.20 a step for
            the paper-sized teacher at 3e-4); with the reward scale carried the critic needs
            no warm-up. On the same robots, each robot's episode record (balanced sampling,
            ``return_robots``) goes on too.
        action_std: Exploration noise (the policy's fixed action std) instead of the
            model's own (0.9, MetaMorph's); ignored on resume.
        precision: The learner's matmuls, ``ppo.precision`` ("fp32" or "bf16"), on resume
            too (a setting of the machine, like ``device``, recorded in ``run.json`` and in
            each checkpoint); None keeps ``ppo``'s, or on resume the run's.
        changes: On resume, more of the run's PPO settings to change from here on, by
            name (:data:`~hd_deploy.train.config.RESUMABLE`); ``None`` values keep the
            run's. A change is written to ``run.json``'s ``ppo`` and logged in its
            ``changes`` list with the iteration it starts after, so the record says which
            iterations ran with which settings.

    Raises:
        FileExistsError: run_dir already holds a run and resume is False.
        FileNotFoundError: resume is True but run_dir holds no checkpoint.
        ConfigError: An unknown device, or CUDA asked for and not available; a resumed
            run whose robot files are gone.
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoint"
    dev = resolve_device(device or "auto")  # fail before a run folder is written
    carried = None  # the trainer state of --init's run (init_state)
    if resume:
        if not recover(ckpt_dir) or not (ckpt_dir / "trainer_state.pt").exists():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        meta = read_run(run_dir, ("ppo", "robots"))
        ppo = PPOConfig.from_dict(meta["ppo"])
        robots = meta["robots"]  # a resumed run keeps its robot set (and eval robots)
        eval_robots = eval_robots or meta.get("eval_robots", [])
        missing = [r for r in [*robots, *eval_robots] if not Path(r).is_file()]
        if missing:
            raise ConfigError(
                f"{run_dir / 'run.json'} names {len(missing)} robot file(s) that are not "
                f"here, such as {missing[0]}: a run resumes on the robots it started with, "
                "at the paths it was given (relative to the folder it ran from)"
            )
        done = read_checkpoint_info(ckpt_dir).extra.get("iteration", 0)
        total_before = ppo.total_steps

        def adds_iterations(new: PPOConfig) -> None:
            if new.total_steps != total_before and new.iterations <= done:
                raise ConfigError(
                    f"a total of {new.total_steps} steps adds no iteration ({new.batch_size} "
                    f"steps) to the {done * new.batch_size} this run has done: give at least "
                    f"{(done + 1) * new.batch_size}"
                )

        asked = {"total_steps": total_steps, "precision": precision, **(changes or {})}
        ppo = apply_changes(run_dir, meta, "ppo", ppo, asked, RESUMABLE,
                            ("after_iteration", done), check=adds_iterations)  # fmt: skip
        teacher = load_teacher(ckpt_dir)
    else:
        if (run_dir / "run.json").exists() or ckpt_dir.exists():
            # a checkpoint without its run.json (a copy that lost it) is a run's state too:
            # starting afresh would write over it
            raise FileExistsError(f"{run_dir}: already holds a run (use --resume or a new folder)")
        started_from: dict = {}  # --init's record, for run.json
        if init is not None:  # loaded first: a bad path leaves no run folder behind
            teacher = load_teacher(init)  # a run folder is refused with the checkpoint's path
            started_from = _init_record(init)
            carried = _init_state(init, started_from) if init_state else None
        elif init_state:
            raise ConfigError(
                "init_state (--init-state) carries the trainer state of --init's run: give --init"
            )
        else:
            teacher = TeacherPolicy(teacher_config or TeacherConfig.small())
        if action_std is not None:
            teacher.config = dataclasses.replace(teacher.config, action_std=action_std)
        if precision is not None:
            ppo = dataclasses.replace(ppo, precision=precision)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            run_dir / "run.json",
            json.dumps(
                {
                    "ppo": ppo.to_dict(),
                    "teacher": teacher.config.to_dict(),
                    "robots": [str(r) for r in robots],
                    "eval_robots": [str(r) for r in eval_robots],
                    **started_from,
                    **({"init_state": True} if init_state else {}),
                },
                indent=2,
            ),
        )
    torch.set_num_threads(ppo.threads)
    if ppo.precision == "bf16" and native_bf16(dev) is False:
        warnings.warn(
            f"bfloat16 matmuls (--precision bf16) on this {device_name(dev)}, which has no native "
            "bfloat16 (AVX512-BF16 or AMX on a CPU): emulated, they are slower than float32 "
            "here; pass --precision fp32 (also on --resume)",
            HdWarning,
            stacklevel=2,
        )
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls: ample for PPO's gradients
        torch.backends.cudnn.allow_tf32 = True
    task = dataclasses.replace(task, max_limbs=teacher.config.max_limbs)
    teacher.to(dev)
    opt = torch.optim.Adam(teacher.parameters(), lr=ppo.lr, eps=1e-5)
    scaler = RunningScale(ppo.n_envs, ppo.gamma)
    start_iter, env_steps, wall0, returns = 0, 0, 0.0, []
    per_robot = RobotEpisodes(len(robots))
    torch.manual_seed(ppo.seed)
    if resume:
        # map to the CPU: a run checkpointed on a GPU resumes anywhere (Adam's state follows
        # the parameters' device in load_state_dict)
        state = torch.load(ckpt_dir / "trainer_state.pt", weights_only=True, map_location="cpu")
        opt.load_state_dict(state["optimizer"])
        scaler.load(state["reward_scale"])
        start_iter, env_steps, wall0 = state["iteration"], state["env_steps"], state["wall_s"]
        returns = state.get("recent_returns", [])  # not in checkpoints before 2026-12
        if "robot_episodes" in state:  # nor this, before 2026-12-02
            per_robot.load(state["robot_episodes"])
        torch.set_rng_state(state["torch_rng"])
    elif carried is not None:
        opt.load_state_dict(carried["optimizer"])
        scaler.load(carried["reward_scale"])
    log = CsvLog(run_dir / "progress.csv", LOG_COLUMNS)
    if resume:
        log.truncate_after("iteration", start_iter)

    names = [Path(r).stem for r in robots]
    # once per run, for checkpoints
    fingerprints, places = fingerprints_and_places(robots, teacher.config.max_limbs)
    if carried is not None and carried.get("robot_fingerprints") == fingerprints:
        per_robot.load(carried["robot_episodes"])  # the same robots: their record goes on
    recent = ReturnWindow(task.episode_steps, returns)
    env = VecLocomotionEnv(
        robots, n_envs=ppo.n_envs, n_workers=ppo.n_workers, config=task,
        seed=ppo.seed + 1000 * start_iter, context_noise=ppo.context_noise,
    )  # fmt: skip

    def sample_robots() -> np.ndarray | None:  # before each collection (a resume's first too)
        weights = per_robot.weights() if ppo.robot_sampling == "balanced" else None
        env.set_robot_weights(weights)
        return weights

    weights = sample_robots()
    collector = Collector(env, ppo, scaler, dev, seed=ppo.seed + 1000 * start_iter)
    # where the run trained, for the model card (a resumed run may move between machines)
    where = {"device": device_name(dev), "workers": ppo.n_workers, "precision": ppo.precision}
    t_start = time.time()
    stop = GracefulStop("iteration")
    try:
        pending = collector.collect(teacher)
        with stop, progress_bar(disable=not show_progress) as bar:
            job = bar.add_task("PPO", total=ppo.iterations, completed=start_iter, status="")
            for it in range(start_iter, ppo.iterations):
                _set_lr(opt, ppo, it)
                t_iter = time.time()
                batch, episodes = pending
                per_robot.add(episodes)  # every run keeps them, to switch sampling on resume
                weights = sample_robots()
                last = it + 1 == ppo.iterations
                out_of_time = max_wall_s is not None and time.time() - t_start >= max_wall_s
                last = last or out_of_time or stop.requested
                if ppo.overlap and not last:
                    collector.start(teacher)  # the next batch, while this one trains
                stats = _update(teacher, opt, batch, ppo, dev, value_only=it < ppo.critic_warmup)
                last = last or stop.requested  # asked during the update: its batch is dropped
                if not last:
                    pending = collector.wait() if ppo.overlap else collector.collect(teacher)
                env_steps += ppo.batch_size
                recent.add([e["return"] for e in episodes], ppo.rollout_steps)
                wall = wall0 + time.time() - t_start
                row = {
                    "iteration": it + 1,
                    "env_steps": env_steps,
                    "wall_s": wall,
                    "steps_per_s": ppo.batch_size / (time.time() - t_iter),
                    "return_mean": _mean([e["return"] for e in episodes]),
                    "return_recent": recent.mean(),
                    "return_robots": per_robot.mean_return(),
                    "episode_length": _mean([e["length"] for e in episodes]),
                    "episodes": len(episodes),
                    "unstable": sum(bool(e["unstable"]) for e in episodes),
                    "lr": opt.param_groups[0]["lr"],
                    **stats,
                }
                # a run that ends is evaluated; one stopped by a signal stops without delay
                due = (it + 1) % ppo.eval_every == 0 or (last and not stop.requested)
                evaluate_now = bool(eval_robots) and due
                save = (it + 1) % ppo.checkpoint_every == 0 or last or evaluate_now
                if save:
                    _checkpoint(
                        ckpt_dir, teacher, opt, scaler, it + 1, env_steps, wall,
                        names, fingerprints, places, where, list(recent.returns), per_robot.state(),
                    )  # fmt: skip
                if evaluate_now:
                    row.update(
                        _zero_shot(ckpt_dir, eval_robots, seed=ppo.seed, workers=ppo.n_workers)
                    )
                log.append(row)
                bar.update(
                    job,
                    advance=1,
                    status=f"{row['steps_per_s']:.0f} steps/s  return {training_return(row):.0f}",
                )
                if save:
                    atomic_write_text(run_dir / "robots.csv", per_robot.table(names, weights))
                    plot_curve(
                        log, run_dir / "learning_curve.png", x="env_steps",
                        ys=(("return_recent", "return_robots", "eval_return"), "episode_length"),
                        title="Teacher PPO (eval: zero-shot on the eval robots)",
                    )  # fmt: skip
                if last:
                    break
    finally:
        collector.close()
    stopped = stop.requested and env_steps < ppo.iterations * ppo.batch_size
    rows = log.read()
    ret = training_return(rows[-1]) if rows else float("nan")
    return TrainResult(run_dir, env_steps, env_steps // ppo.batch_size, ret, stopped)


class ReturnWindow:
    """``return_recent``: the mean training return of the last ``size`` finished episodes.

    Every environment starts an episode when a run starts or resumes, so until each has run
    for an episode's length (``episode_steps``) the episodes that end are only the ones that
    fell early: counted alone they would pull the curve down at every resume. They are held
    back until then and join the window with the rest of those first episodes. The window is
    saved with the trainer state (``recent_returns``), so a resumed run's curve goes on from
    where it stopped; with nothing before them, the held episodes are all the mean has.
    """

    def __init__(self, episode_steps: int, returns: Sequence[float] = (), size: int = 100):
        self.returns: deque[float] = deque(returns, maxlen=size)
        self._held: list[float] = []
        self._wait = episode_steps

    def add(self, returns: Sequence[float], steps_per_env: int) -> None:
        self._held.extend(returns)
        self._wait -= steps_per_env
        if self._wait <= 0:
            self.returns.extend(self._held)
            self._held.clear()

    def mean(self) -> float:
        return _mean(list(self.returns) or self._held)


# --- update -------------------------------------------------------------------------


def _log_prob(mean: torch.Tensor, action: torch.Tensor, std: float, mask: torch.Tensor):
    """Gaussian log-density per token: ``(N, 2)`` arrays -> ``(N,)``, masked slots left out."""
    return (gaussian_log_density((action - mean) / std, std) * mask).sum(dim=-1)


def _policy(teacher: TeacherPolicy, p, c, m, action, amask, *, bf16: bool = False):
    """Log-probability ``(B,)`` of padded actions and values ``(B,)`` on the packed path.

    ``bf16``: the network's matmuls in bfloat16 (autocast); its outputs, and so the
    log-density and the losses, in float32.
    """
    with autocast(p.device, bf16):
        packing, mean, v = teacher.packed(p, c, m)
    per_token = _log_prob(
        mean.float(), packing.pack(action), teacher.action_std, packing.pack(amask)
    )
    assert v is not None
    return packing.sum(per_token), v.float()


def value_loss(
    value: torch.Tensor, start: torch.Tensor, ret: torch.Tensor, clip: float | None = None
) -> torch.Tensor:
    """Half the mean squared error of ``value`` against the returns ``ret``; with ``clip``
    (``PPOConfig.clip_value``, MetaMorph's), each sample's error is the larger of its own
    and that of ``value`` clipped to within ``clip`` of ``start``, the value the update
    started from: a prediction gains nothing by moving further than ``clip`` in one update."""
    error = (value - ret).pow(2)
    if clip is not None:
        clipped = start + (value - start).clamp(-clip, clip)
        error = torch.max(error, (clipped - ret).pow(2))
    return 0.5 * error.mean()


def _update(teacher, opt, buf, ppo: PPOConfig, dev, *, value_only: bool = False) -> dict:
    """One PPO update; ``value_only`` trains the value network alone (the policy's
    parameters get no gradient, so Adam leaves them and their moments untouched)."""
    T, N = ppo.rollout_steps, ppo.n_envs
    flat = {
        k: torch.as_tensor(v.reshape(T * N, *v.shape[2:]), device=dev)
        for k, v in buf.items()
        if k not in ("last", "reward", "done", "logp", "robot")
    }
    if ppo.update_normalizer:
        teacher.normalizer.update(flat["proprio"], flat["limb_mask"])
    amask = flat["action_mask"].float()
    bf16 = ppo.precision == "bf16"  # the proximal pass too: the first ratios are exactly 1
    value_clip = ppo.clip if ppo.clip_value else None
    with torch.no_grad():
        teacher.eval()
        prox = [
            _policy(teacher, flat["proprio"][sl], flat["context"][sl], flat["limb_mask"][sl],
                    flat["action"][sl], amask[sl], bf16=bf16)
            for sl in _chunks(T * N, 4096)
        ]  # fmt: skip
        # The clip is centred on the proximal policy (these weights, this normaliser); the
        # policy that acted (recorded as it acted; with overlap one update behind) enters
        # through the importance weight proximal / acting, truncated for bounded variance.
        prox_logp_t = torch.cat([lp for lp, _ in prox])
        values_t = torch.cat([v for _, v in prox])
        behaviour_logp_t = torch.as_tensor(buf["logp"].reshape(-1), device=dev)
        log_w = prox_logp_t - behaviour_logp_t
        weight_t = torch.exp(log_w.clamp(max=math.log(ppo.max_is_weight)))
        stale_kl = -log_w.mean().item()  # KL(acting || proximal), estimated on the batch
        with autocast(dev, bf16):
            last_v = teacher.packed(*obs_tensors(buf["last"], dev))[2]
        last_v = last_v.float().cpu().numpy()  # type: ignore[union-attr]
    adv, ret = _gae(buf["reward"], buf["done"], values_t.cpu().numpy().reshape(T, N), last_v, ppo)
    adv_t = torch.as_tensor(adv.reshape(-1), device=dev, dtype=torch.float32)
    ret_t = torch.as_tensor(ret.reshape(-1), device=dev, dtype=torch.float32)
    robot = torch.as_tensor(buf["robot"].reshape(-1)) if ppo.advantage_norm == "robot" else None
    adv_t = standardise_advantages(adv_t, robot)
    # how much of the return's variance the critic explains before this update (1: all)
    explained_var = 1.0 - ((ret_t - values_t).var() / (ret_t.var() + 1e-8)).item()

    teacher.train()
    sums = {"policy_loss": 0.0, "value_loss": 0.0, "approx_kl": 0.0, "kl_k1": 0.0,
            "clip_frac": 0.0}  # fmt: skip
    n = epochs = 0
    stop = False
    for _ in range(ppo.epochs):
        epochs += 1
        epoch_kl, epoch_n = 0.0, 0
        perm = torch.randperm(T * N, device=dev)
        for start in range(0, T * N - ppo.minibatch_size + 1, ppo.minibatch_size):
            idx = perm[start : start + ppo.minibatch_size]
            logp, v = _policy(teacher, flat["proprio"][idx], flat["context"][idx],
                              flat["limb_mask"][idx], flat["action"][idx], amask[idx],
                              bf16=bf16)  # fmt: skip
            log_r = logp - prox_logp_t[idx]
            with torch.no_grad():
                k3 = (torch.expm1(log_r) - log_r).mean().item()  # never negative
                k1 = -log_r.mean().item()
            kl = k1 if ppo.kl_estimator == "k1" else k3
            stop = bool(ppo.target_kl) and ppo.kl_stop == "minibatch" and kl > ppo.target_kl
            if stop:
                break  # this step would start past the target: the update ends before it
            ratio = torch.exp(log_r)
            a = adv_t[idx]
            clipped = torch.min(ratio * a, ratio.clamp(1 - ppo.clip, 1 + ppo.clip) * a)
            pl = -(weight_t[idx] * clipped).mean()
            vl = value_loss(v, values_t[idx], ret_t[idx], value_clip)
            loss = ppo.value_coef * vl if value_only else pl + ppo.value_coef * vl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(teacher.parameters(), ppo.max_grad_norm)
            opt.step()
            with torch.no_grad():
                sums["policy_loss"] += pl.item()
                sums["value_loss"] += vl.item()
                sums["approx_kl"] += k3
                sums["kl_k1"] += k1
                sums["clip_frac"] += ((ratio - 1).abs() > ppo.clip).float().mean().item()
            n += 1
            epoch_kl, epoch_n = epoch_kl + kl, epoch_n + 1
        if stop or (ppo.target_kl and ppo.kl_stop == "epoch"
                    and epoch_kl / max(epoch_n, 1) > ppo.target_kl):  # fmt: skip
            break  # the policy moved far enough from the one the update started from
    teacher.eval()
    means = {k: v / max(n, 1) for k, v in sums.items()}
    # epochs: how many took a step (fewer than ppo.epochs where the KL stop ended the update);
    # grad_steps: the gradient steps the update took
    epochs -= stop and epoch_n == 0
    return {**means, "stale_kl": stale_kl, "explained_var": explained_var, "epochs": epochs,
            "grad_steps": n}  # fmt: skip


def standardise_advantages(
    adv: torch.Tensor,
    robot: torch.Tensor | None = None,
    min_samples: int = ROBOT_NORM_MIN_SAMPLES,
) -> torch.Tensor:
    """Advantages less the batch's mean, over the batch's std; with ``robot`` (each sample's
    robot index, ``PPOConfig.advantage_norm`` "robot") each robot's over the root mean square
    of its own, so every robot's have unit size. Only the scale is per robot: a robot's
    samples in one batch come from one to three episodes, and taking their own mean out
    would also take out whether those episodes went better or worse than its critic
    expected. A robot with fewer than ``min_samples`` in the batch keeps the batch's scale."""
    centred = adv - adv.mean()
    batch = centred / (adv.std() + 1e-8)
    if robot is None:
        return batch
    _, group, counts = torch.unique(robot.to(adv.device), return_inverse=True,
                                    return_counts=True)  # fmt: skip
    square = torch.zeros(len(counts), dtype=adv.dtype, device=adv.device)
    rms = (square.index_add_(0, group, centred.square()) / counts).sqrt()
    own = centred / (rms[group] + 1e-8)
    return torch.where(counts[group] >= min_samples, own, batch)


def _gae(reward, done, values, last_value, ppo: PPOConfig):
    T = reward.shape[0]
    adv = np.zeros_like(values)
    gae = np.zeros(values.shape[1])
    for t in reversed(range(T)):
        next_v = last_value if t == T - 1 else values[t + 1]
        nonterminal = 1.0 - done[t]
        delta = reward[t] + ppo.gamma * next_v * nonterminal - values[t]
        gae = delta + ppo.gamma * ppo.gae_lambda * nonterminal * gae
        adv[t] = gae
    return adv, adv + values


def _zero_shot(ckpt_dir: Path, robots: Sequence[str | Path], *, seed: int, workers: int) -> dict:
    """One deterministic episode per robot on the run's worker processes (the physics
    workers wait meanwhile)."""
    from hd_deploy.train.rollout import evaluate

    res = evaluate("teacher", ckpt_dir, robots, episodes=1, seed=seed,
                   workers=max(1, workers), show_progress=False)  # fmt: skip
    lengths = [r["episode_length_mean"] for r in res["robots"]]
    return {"eval_return": res["return_mean"], "eval_length": float(np.mean(lengths))}


def _set_lr(opt, ppo: PPOConfig, it: int) -> None:
    frac = it / max(1, ppo.iterations)
    lr = ppo.lr * (0.5 * (1 + math.cos(math.pi * frac)) if ppo.lr_schedule == "cosine" else 1.0)
    if it < ppo.lr_warmup:  # MetaMorph's linear warm-up, from 0.1x at the run's first iteration
        alpha = it / ppo.lr_warmup
        lr *= WARMUP_FACTOR * (1 - alpha) + alpha
    for g in opt.param_groups:
        g["lr"] = lr


def _checkpoint(
    ckpt_dir, teacher, opt, scaler, iteration, env_steps, wall, names, fingerprints, places,
    where,
    recent_returns, robot_episodes,
) -> None:  # fmt: skip
    tmp = staging(ckpt_dir)
    save_checkpoint(
        tmp, teacher, robots=names, fingerprints=fingerprints, contexts=places,
        extra={"iteration": iteration, "env_steps": env_steps, "wall_s": round(wall, 1),
               **where},
    )  # fmt: skip
    torch.save(
        {
            "optimizer": compact_optimizer_state(opt.state_dict()),
            "reward_scale": scaler.state(),
            "iteration": iteration,
            "env_steps": env_steps,
            "wall_s": wall,
            "torch_rng": torch.get_rng_state(),
            "recent_returns": recent_returns,
            "robot_episodes": robot_episodes,
        },
        tmp / "trainer_state.pt",
    )
    swap_in(tmp, ckpt_dir)


def _init_state(init: str | Path, started_from: dict) -> dict:
    """The trainer state saved beside ``init``'s weights (``init_state``); ``started_from``
    is :func:`_init_record`'s, whose robot fingerprints say which robots it is for."""
    path = Path(init) / "trainer_state.pt"
    if not path.is_file():
        raise ConfigError(
            f"{init}: no trainer_state.pt to carry (a run's checkpoint has one; the package's "
            "weights alone do not): drop --init-state"
        )
    state = torch.load(path, weights_only=True, map_location="cpu")
    if "robot_episodes" in state:  # each robot's record, kept where the robots are the same
        state["robot_fingerprints"] = started_from["init_checkpoint"].get("robot_fingerprints")
    return state


def _init_record(init: str | Path) -> dict:
    """What a run started from: the path, and the checkpoint's own record there, which
    names it for good where the path may later hold another checkpoint (the package's)."""
    record = json.loads((Path(init) / "checkpoint.json").read_text())
    return {"init": str(init), "init_checkpoint": record}


def compact_optimizer_state(state: dict) -> dict:
    """``state`` with Adam's moments in bfloat16, for a trainer state half the size.

    The paper-sized teacher's moments take 27 MB in float32, too big to commit with a run
    (or to come back whole from the GPU machine); in bfloat16 (8 significant bits, the
    moments are running averages that need no more) they take 13 MB. ``load_state_dict``
    casts them back to the parameters' dtype on resume. Step counters stay as they are. The
    optimiser's own state is not touched (``state_dict`` shares its per-parameter dicts).
    """

    def compact(key: str, value):
        if key != "step" and torch.is_tensor(value) and value.is_floating_point():
            return value.to(torch.bfloat16)
        return value

    per_param = {i: {k: compact(k, v) for k, v in s.items()} for i, s in state["state"].items()}
    return {**state, "state": per_param}


def _chunks(n: int, size: int):
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")
