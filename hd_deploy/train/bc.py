"""Robot-balanced behaviour cloning shared by distillation and teacher cloning: the batches,
the epoch, and the epoch loop with its DAgger rounds, checkpoints and graceful stop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hd_deploy.errors import ConfigError
from hd_deploy.models import HyperNetPolicy, TeacherPolicy
from hd_deploy.models.checkpoint import save_checkpoint
from hd_deploy.stop import GracefulStop
from hd_deploy.train.rollout import DistillData
from hd_deploy.train.rundir import round_saved, staging, swap_in
from hd_deploy.train.runlog import CsvLog, plot_curve, progress_bar


def balanced_batches(
    data: DistillData, *, batch_size: int, robots_per_batch: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of batches, each drawing an equal share of samples from a few robots.

    Yields:
        ``(chosen, idx, local)``: robot indices ``(k,)``, sample indices ``(k * per_robot,)``
        and each sample's position in ``chosen``.
    """
    per_robot = batch_size // robots_per_batch
    k = min(robots_per_batch, data.n_robots)
    for _ in range(max(1, data.n_samples // batch_size)):
        chosen = rng.choice(data.n_robots, size=k, replace=False)
        idx = np.concatenate([data.sample_indices(r, per_robot, rng) for r in chosen])
        yield chosen, idx, np.repeat(np.arange(k), per_robot)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when present, else the CPU; anything else goes to ``torch.device``.

    Raises:
        ConfigError: An unknown device, or CUDA asked for and not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r}: expected auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    return device


def device_name(device: torch.device) -> str:
    """Where a run trained, as checkpoints record it: ``cpu`` or ``cuda (NVIDIA H200)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@dataclass
class Batch:
    """One robot-balanced batch, its tensors already on the training device.

    Attributes:
        chosen: ``(k,)`` robot indices.
        proprio: ``(k * per_robot, L, 17)`` raw proprioception.
        local: ``(k * per_robot,)`` each sample's position in ``chosen``.
        context: ``(k, L, 53)`` context of the chosen robots.
        limb_mask: ``(k, L)``.
    """

    chosen: torch.Tensor
    proprio: torch.Tensor
    local: torch.Tensor
    context: torch.Tensor
    limb_mask: torch.Tensor

    def sample_context(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Context and limb mask per sample (for models that read them per sample)."""
        return self.context[self.local], self.limb_mask[self.local]


def bc_epoch(
    predict: Callable[[Batch], torch.Tensor],
    params: list[torch.nn.Parameter],
    opt: torch.optim.Optimizer,
    data: DistillData,
    *,
    batch_size: int,
    robots_per_batch: int,
    max_grad_norm: float,
    device: torch.device = torch.device("cpu"),
    warmup_steps: int = 0,
    clip_labels: bool = False,
) -> float:
    """One pass of 0.5 x squared error over real actuators, averaged per robot.

    The samples are copied to ``device`` once per ``data`` (a view on the CPU); batches are
    gathered there.

    Args:
        predict: ``batch -> actions (k * per_robot, L, 2)``.
        params: Parameters to clip and step.
        opt: Optimiser over ``params``.
        data: Labelled samples.
        device: Where the model lives.
        warmup_steps: The optimiser's first steps run at ``lr * (step + 1) / (warmup_steps
            + 1)`` (counted by the optimiser's own state, so it holds across epochs and
            resumes): Adam's first steps move every weight by about ``lr`` whatever the
            gradient, which a hypernetwork's generated weights amplify.
        clip_labels: Clip the labels to [-1, 1], the range the controls run at: a teacher
            mean of 2.5 drives the motor as 1 does, so the loss asks for 1.

    Returns:
        The mean loss over the epoch.
    """
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
    proprio, action, context, limb_mask, action_mask = _on_device(data, device)
    total = torch.zeros((), device=device)
    n = 0
    for chosen_np, idx_np, local_np in balanced_batches(
        data, batch_size=batch_size, robots_per_batch=robots_per_batch, rng=rng
    ):
        chosen = torch.as_tensor(chosen_np).to(device)
        idx = torch.as_tensor(idx_np).to(device)
        local = torch.as_tensor(local_np).to(device)
        batch = Batch(chosen, proprio[idx], local, context[chosen], limb_mask[chosen])
        pred = predict(batch)
        target = action[idx].clamp(-1.0, 1.0) if clip_labels else action[idx]
        err = masked_bc_error(pred, target, action_mask[chosen][local])
        loss = err.view(len(chosen_np), -1).mean(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        _warmed_step(opt, params[0], warmup_steps)
        total += loss.detach()
        n += 1
    return float(total.item()) / max(n, 1)


def masked_bc_error(
    pred: torch.Tensor, target: torch.Tensor, action_mask: torch.Tensor
) -> torch.Tensor:
    """The training loss per sample: 0.5 x squared error averaged over real actuators.

    Args:
        pred, target: ``(N, L, 2)`` actions.
        action_mask: ``(N, L, 2)`` float, 1 where a (limb, slot) drives an actuator.

    Returns:
        ``(N,)``.
    """
    return 0.5 * ((pred - target) ** 2 * action_mask).sum(dim=(1, 2)) / action_mask.sum(dim=(1, 2))


def _warmed_step(opt: torch.optim.Optimizer, param: torch.nn.Parameter, warmup_steps: int) -> None:
    """``opt.step()``, at a fraction of the learning rate during the first steps."""
    done = int(opt.state.get(param, {}).get("step", 0))
    if done >= warmup_steps:
        opt.step()
        return
    lrs = [group["lr"] for group in opt.param_groups]
    for group, lr in zip(opt.param_groups, lrs, strict=True):
        group["lr"] = lr * (done + 1) / (warmup_steps + 1)
    opt.step()
    for group, lr in zip(opt.param_groups, lrs, strict=True):
        group["lr"] = lr


def set_cosine_lr(
    opt: torch.optim.Optimizer, base_lr: float, epoch: int, epochs: int, warmup: int = 0
) -> None:
    """Learning rate of ``epoch`` on a cosine from ``base_lr`` (epoch 0) towards 0.

    The first ``warmup`` epochs ramp up linearly instead (``base_lr * (epoch + 1) /
    (warmup + 1)``): full-rate Adam steps from a fresh hypernetwork can switch off every unit
    of the generated hidden layer for good (seen on 208 robots at 1e-3; 2e-4 kept them).
    """
    lr = base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if epoch < warmup:
        lr = min(lr, base_lr * (epoch + 1) / (warmup + 1))
    for group in opt.param_groups:
        group["lr"] = lr


_DEVICE_CACHE: dict = {}


def _on_device(data: DistillData, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The samples as tensors on ``device``, copied once per data object (not per epoch)."""
    key = (id(data), str(device))
    hit = _DEVICE_CACHE.get(key)
    if hit is None or hit[0] is not data:
        _DEVICE_CACHE.clear()  # one data set at a time: a merged one replaces the last
        arrays = (data.proprio, data.action, data.context, data.limb_mask,
                  data.action_mask.astype(np.float32))  # fmt: skip
        hit = (data, tuple(torch.as_tensor(a).to(device) for a in arrays))
        _DEVICE_CACHE[key] = hit
    return hit[1]


# --- the epoch loop -----------------------------------------------------------------


@dataclass
class Schedule:
    """How a behaviour-cloning run spends its epochs.

    Attributes:
        epochs: Epochs in all.
        rounds: Data rounds: the first collection plus ``dagger_rounds``; round ``r > 0`` is
            collected at the start of epoch ``r * (epochs // rounds)``.
        lr: Peak learning rate (cosine decay over all epochs, :func:`set_cosine_lr`).
        warmup_epochs: Linear ramp over the first epochs.
        checkpoint_every: Epochs between checkpoints (the last one and a stop always write).
    """

    epochs: int
    rounds: int
    lr: float
    warmup_epochs: int = 0
    checkpoint_every: int = 1

    def round_at(self, epoch: int) -> tuple[int, bool]:
        """``(round, due)``: the data round ``epoch`` trains on, and whether it starts there."""
        per_round = max(1, self.epochs // self.rounds)
        rnd = epoch // per_round
        return min(rnd, self.rounds - 1), 0 < rnd < self.rounds and epoch % per_round == 0


@dataclass
class LoopEnd:
    """Where :func:`train_epochs` ended."""

    epochs: int
    loss: float
    data: DistillData
    stopped: bool  # by a signal (Ctrl-C, SIGTERM), a checkpoint written


def train_epochs(
    data: DistillData,
    schedule: Schedule,
    opt: torch.optim.Optimizer,
    *,
    epoch_fn: Callable[[DistillData], float],
    collect_round: Callable[[int], DistillData],
    save: Callable[..., None],
    log: CsvLog,
    row: Callable[[DistillData], Mapping[str, Any]],
    data_path: Path,
    state: Mapping[str, Any] | None,
    curve: tuple[Path, str],
    label: str,
    show_progress: bool,
) -> LoopEnd:
    """Run (or continue) a behaviour-cloning run's epochs.

    Each epoch sets the learning rate, trains (``epoch_fn``), logs a row and, every
    ``checkpoint_every`` epochs, saves and redraws the curve. A DAgger round starts with a
    checkpoint (the acting policy), collects (``collect_round(round)``), merges and saves
    the data; a resumed run does not collect a round its data already hold. The first
    SIGINT or SIGTERM ends the run after its epoch, with a checkpoint.

    Args:
        data: The samples so far.
        opt: The optimiser ``epoch_fn`` steps.
        epoch_fn: One epoch over the data; returns its mean loss.
        collect_round: New samples for a DAgger round.
        save: Called with ``epoch``, ``wall`` and ``samples``: write the checkpoint and
            trainer state (:func:`save_bc_checkpoint` with the run's model and robots bound).
        log: The run's ``progress.csv``; its last row tells where a resumed run is.
        row: The log columns besides epoch, round, samples, wall_s and loss.
        data_path: Where the run's data live (rewritten after each round).
        state: The trainer state a resumed run started from (None for a new run).
        curve: ``(png, title)`` of the learning curve.
        label: The progress bar's label.
    """
    start, wall0 = (state["epoch"], state["wall_s"]) if state is not None else (0, 0.0)
    t0, loss = time.time(), log.last("loss")  # a finished run reports its last loss
    stop = GracefulStop("epoch")
    with stop, progress_bar(disable=not show_progress) as bar:
        job = bar.add_task(label, total=schedule.epochs, completed=start, status="")
        for epoch in range(start, schedule.epochs):
            rnd, due = schedule.round_at(epoch)
            if due and not round_saved(state, epoch, data.n_samples):
                save(epoch=epoch, wall=wall0 + time.time() - t0, samples=data.n_samples)
                data = data.merge(collect_round(rnd))
                data.save(data_path)
            set_cosine_lr(opt, schedule.lr, epoch, schedule.epochs, schedule.warmup_epochs)
            loss = epoch_fn(data)
            wall = wall0 + time.time() - t0
            log.append({"epoch": epoch + 1, "round": rnd, "samples": data.n_samples,
                        "wall_s": wall, "loss": loss, **row(data)})  # fmt: skip
            bar.update(job, advance=1, status=f"loss {loss:.4g}")
            done = epoch + 1 == schedule.epochs
            if (epoch + 1) % schedule.checkpoint_every == 0 or done or stop.requested:
                save(epoch=epoch + 1, wall=wall, samples=data.n_samples)
                plot_curve(log, curve[0], x="epoch", ys=("loss",), title=curve[1])
            if stop.requested and not done:
                return LoopEnd(epoch + 1, loss, data, stopped=True)
    return LoopEnd(schedule.epochs, loss, data, stopped=False)


def save_bc_checkpoint(
    ckpt: Path,
    model: TeacherPolicy | HyperNetPolicy,
    opt: torch.optim.Optimizer,
    *,
    epoch: int,
    wall: float,
    samples: int,
    robots: list[str],
    fingerprints: list[str],
    contexts: np.ndarray | None = None,
    device: torch.device,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Swap in a checkpoint with its trainer state; ``samples`` (in the data now) lets a
    resume tell a saved round (:func:`~hd_deploy.train.rundir.round_saved`)."""
    tmp = staging(ckpt)
    record = {"epoch": epoch, "wall_s": round(wall, 1), **(extra or {}),
              "device": device_name(device)}  # fmt: skip
    save_checkpoint(tmp, model, robots=robots, fingerprints=fingerprints, contexts=contexts,
                    extra=record)  # fmt: skip
    torch.save({"optimizer": opt.state_dict(), "epoch": epoch, "samples": samples,
                "wall_s": wall, "torch_rng": torch.get_rng_state()},
               tmp / "trainer_state.pt")  # fmt: skip
    swap_in(tmp, ckpt)
