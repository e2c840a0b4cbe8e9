"""Robot-balanced behaviour cloning steps shared by distillation and teacher cloning."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hd_deploy.errors import ConfigError
from hd_deploy.train.rollout import DistillData


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
        err = masked_bc_error(pred, action[idx], action_mask[chosen][local])
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
