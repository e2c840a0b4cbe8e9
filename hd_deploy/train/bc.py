"""Robot-balanced behaviour cloning steps shared by distillation and teacher cloning."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

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


def bc_epoch(
    predict: Callable[[np.ndarray, np.ndarray, np.ndarray], torch.Tensor],
    params: list[torch.nn.Parameter],
    opt: torch.optim.Optimizer,
    data: DistillData,
    *,
    batch_size: int,
    robots_per_batch: int,
    max_grad_norm: float,
) -> float:
    """One pass of 0.5 x squared error over real actuators, averaged per robot.

    Args:
        predict: ``(chosen, idx, local) -> actions (k * per_robot, L, 2)``.
        params: Parameters to clip and step.
        opt: Optimiser over ``params``.
        data: Labelled samples.

    Returns:
        The mean loss over the epoch.
    """
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
    action_mask = torch.as_tensor(data.action_mask).float()
    total, n = 0.0, 0
    for chosen, idx, local in balanced_batches(
        data, batch_size=batch_size, robots_per_batch=robots_per_batch, rng=rng
    ):
        pred = predict(chosen, idx, local)
        target = torch.as_tensor(data.action[idx])
        amask = action_mask[torch.as_tensor(chosen)][torch.as_tensor(local)]
        err = 0.5 * ((pred - target) ** 2 * amask).sum(dim=(1, 2)) / amask.sum(dim=(1, 2))
        loss = err.view(len(chosen), -1).mean(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.step()
        total, n = total + loss.item(), n + 1
    return total / max(n, 1)
