"""HyperDistill hypernetwork: morphology context in, per-robot MLP weights out.

The generated base MLP for a robot with ``L`` limb rows (padded) is kept in flat form,
exactly as it will be baked:

- input layer ``(L*17, H)``: the per-limb ``17 x H`` weights stacked limb by limb, rows of
  padded limbs zero, so ``x_flat @ W`` is the masked sum over limbs (divided by the number
  of real limbs for ``input_agg="mean"``), plus the summed per-limb biases ``(H,)``;
- hidden layers ``(H, H)`` and ``(H,)`` from the mean embedding over real limbs;
- output layer ``(H, L*2)``: limb ``l``'s ``H x 2`` weights in columns ``2l, 2l+1``
  (zero for padded limbs), bias ``(L*2,)``.

Weights are used as ``x @ W + b``; a baked ``nn.Linear`` holds ``W.T``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

import numpy as np
import torch
from torch import nn

from hd_deploy.errors import ConfigError
from hd_deploy.models.baked import BakedMLP
from hd_deploy.models.config import HyperNetConfig
from hd_deploy.models.layers import PreLNEncoderLayer
from hd_deploy.models.normalizer import ObsNormalizer
from hd_deploy.morphology.robot import JOINT_SLOTS

if TYPE_CHECKING:
    from hd_deploy.morphology.robot import Robot


@dataclass(frozen=True)
class GeneratedWeights:
    """Base-MLP weights for ``R`` robots padded to ``L`` limbs (see the module docstring).

    Attributes:
        w_in: Shape ``(R, L*17, H)``.
        b_in: Shape ``(R, H)``.
        hidden: ``(weight (R, H, H), bias (R, H))`` per hidden layer.
        w_out: Shape ``(R, H, L*2)``.
        b_out: Shape ``(R, L*2)``.
        limb_mask: Shape ``(R, L)`` bool.
    """

    w_in: torch.Tensor
    b_in: torch.Tensor
    hidden: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    w_out: torch.Tensor
    b_out: torch.Tensor
    limb_mask: torch.Tensor

    @property
    def n_robots(self) -> int:
        return self.limb_mask.shape[0]

    @property
    def n_limbs(self) -> int:
        """Padded limb rows ``L``."""
        return self.limb_mask.shape[1]


class ContextEncoder(nn.Module):
    """``Linear(53 -> d)``, one pre-LN transformer layer over limbs, LayerNorm, dropout.

    Args:
        config: Hypernetwork sizes.
    """

    def __init__(self, config: HyperNetConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(config.context_dim, config.context_d)
        self.layer = PreLNEncoderLayer(config.context_d, config.context_heads, config.context_ff)
        self.norm = nn.LayerNorm(config.context_d)
        self.dropout = nn.Dropout(config.context_dropout)

    def forward(self, context: torch.Tensor, limb_mask: torch.Tensor) -> torch.Tensor:
        """Shape ``(R, L, 53)`` with mask ``(R, L)`` -> embeddings ``(R, L, d)``."""
        return self.dropout(self.norm(self.layer(self.embed(context), limb_mask)))


def _head(d: int, n_in: int, n_out: int, *, fan_in: int | None) -> nn.Linear:
    """Linear hypernetwork head ``d -> n_in * n_out`` with a zero generator matrix.

    With ``fan_in`` the head's bias (the weights every robot starts from) is drawn like a
    ``Linear(fan_in, .)`` weight; without, it starts at zero (bias heads).
    """
    head = nn.Linear(d, n_in * n_out)
    nn.init.zeros_(head.weight)
    if fan_in is None:
        nn.init.zeros_(head.bias)
    else:
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(head.bias, -bound, bound)
    return head


class HyperNetPolicy(nn.Module):
    """Morphology-conditioned hypernetwork student (HyperDistill).

    Args:
        config: Sizes and options.
    """

    def __init__(self, config: HyperNetConfig) -> None:
        super().__init__()
        self.config = config
        c, p, h = config.context_d, config.proprio_dim, config.hidden
        self.normalizer = ObsNormalizer(p, clip=config.obs_clip)
        self.enc_in = ContextEncoder(config)
        self.enc_hidden = ContextEncoder(config) if config.n_hidden_layers > 0 else None
        self.enc_out = ContextEncoder(config)
        in_fan = p * config.max_limbs if config.input_agg == "sum" else p
        self.in_w = _head(c, p, h, fan_in=in_fan)
        self.in_b = _head(c, 1, h, fan_in=None)
        self.hidden_w = nn.ModuleList(
            _head(c, h, h, fan_in=h) for _ in range(config.n_hidden_layers)
        )
        self.hidden_b = nn.ModuleList(
            _head(c, 1, h, fan_in=None) for _ in range(config.n_hidden_layers)
        )
        self.out_w = _head(c, h, JOINT_SLOTS, fan_in=h)
        self.out_b = _head(c, 1, JOINT_SLOTS, fan_in=None)

    def generate(self, context: torch.Tensor, limb_mask: torch.Tensor) -> GeneratedWeights:
        """Generate base-MLP weights for a batch of robots.

        Args:
            context: Morphology context, shape ``(R, L, 53)``.
            limb_mask: True for real limbs, shape ``(R, L)`` bool (>= 1 per robot).

        Returns:
            The weights, differentiable with respect to the hypernetwork.
        """
        cfg = self.config
        if context.ndim != 3 or context.shape[-1] != cfg.context_dim:
            raise ValueError(
                f"context must have shape (R, L, {cfg.context_dim}), got {tuple(context.shape)}"
            )
        if limb_mask.shape != context.shape[:2]:
            raise ValueError(
                f"limb_mask must have shape {tuple(context.shape[:2])}, "
                f"got {tuple(limb_mask.shape)}"
            )
        r, n = context.shape[:2]
        p, h = cfg.proprio_dim, cfg.hidden
        mask = limb_mask.bool()
        m = mask.to(context.dtype)
        n_real = m.sum(dim=1).clamp(min=1.0)  # (R,)

        e = self.enc_in(context, mask)
        w_in = self.in_w(e).view(r, n, p, h) * m[:, :, None, None]
        b_in = (self.in_b(e) * m[..., None]).sum(dim=1)
        if cfg.input_agg == "mean":
            w_in = w_in / n_real[:, None, None, None]
            b_in = b_in / n_real[:, None]
        w_in = w_in.reshape(r, n * p, h)

        hidden: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.enc_hidden is not None:
            e = self.enc_hidden(context, mask)
            e_mean = (e * m[..., None]).sum(dim=1) / n_real[:, None]  # (R, d)
            for w_head, b_head in zip(self.hidden_w, self.hidden_b, strict=True):
                hidden.append((w_head(e_mean).view(r, h, h), b_head(e_mean)))

        e = self.enc_out(context, mask)
        w_out = self.out_w(e).view(r, n, h, JOINT_SLOTS) * m[:, :, None, None]
        w_out = w_out.permute(0, 2, 1, 3).reshape(r, h, n * JOINT_SLOTS)
        b_out = (self.out_b(e) * m[..., None]).reshape(r, n * JOINT_SLOTS)
        return GeneratedWeights(w_in, b_in, tuple(hidden), w_out, b_out, mask)

    @overload  # type: ignore[override]
    def apply(
        self,
        weights: GeneratedWeights,
        proprio: torch.Tensor,
        robot_index: torch.Tensor,
        limb_mask: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    @overload
    def apply(self, weights: Callable[[nn.Module], None]) -> HyperNetPolicy: ...

    def apply(
        self,
        weights: GeneratedWeights | Callable[[nn.Module], None],
        proprio: torch.Tensor | None = None,
        robot_index: torch.Tensor | None = None,
        limb_mask: torch.Tensor | None = None,
    ) -> torch.Tensor | HyperNetPolicy:
        """Run generated MLPs on a batch whose samples pick a robot by index.

        Samples are grouped by robot into a padded ``(R, S, .)`` block so that each layer is
        one batched matmul, however the batch mixes robots. Called with a single function,
        this is ``nn.Module.apply(fn)`` (recursive init), which the name shadows.

        Args:
            weights: From :meth:`generate`, ``R`` robots padded to ``L`` limbs.
            proprio: Raw proprioception, shape ``(B, L, 17)``.
            robot_index: Robot of each sample in ``[0, R)``, shape ``(B,)`` int.
            limb_mask: Optional ``(B, L)`` bool; outputs at False limbs are zeroed (they
                already are zero where the robot has no limb).

        Returns:
            Mean action per (limb, slot), shape ``(B, L, 2)``; zero at padded limbs.
        """
        if not isinstance(weights, GeneratedWeights):
            if callable(weights) and proprio is None and robot_index is None:
                return super().apply(weights)
            raise TypeError("apply(weights, proprio, robot_index) needs GeneratedWeights")
        if proprio is None or robot_index is None:
            raise TypeError("apply(weights, proprio, robot_index) needs proprio and robot_index")
        return self._run(weights, proprio, robot_index, limb_mask)

    def _run(
        self,
        weights: GeneratedWeights,
        proprio: torch.Tensor,
        robot_index: torch.Tensor,
        limb_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        p = self.config.proprio_dim
        b, n = proprio.shape[0], weights.n_limbs
        if proprio.shape != (b, n, p):
            raise ValueError(
                f"proprio must have shape (B, {n}, {p}) to match the weights, "
                f"got {tuple(proprio.shape)}"
            )
        if robot_index.shape != (b,):
            raise ValueError(f"robot_index must have shape ({b},), got {tuple(robot_index.shape)}")
        x = self.normalizer(proprio).reshape(b, n * p)
        rows, slot, s = _group(robot_index.long(), weights.n_robots)
        xp = x.new_zeros(weights.n_robots, s, n * p)
        xp = xp.index_put((rows, slot), x)
        y = torch.relu(torch.baddbmm(weights.b_in[:, None, :], xp, weights.w_in))
        for w, bias in weights.hidden:
            y = torch.relu(torch.baddbmm(bias[:, None, :], y, w))
        y = torch.baddbmm(weights.b_out[:, None, :], y, weights.w_out)
        out = y[rows, slot].view(b, n, JOINT_SLOTS)
        if limb_mask is not None:
            if limb_mask.shape != (b, n):
                raise ValueError(
                    f"limb_mask must have shape ({b}, {n}), got {tuple(limb_mask.shape)}"
                )
            out = out * limb_mask.bool()[..., None]
        return out

    def action_mean(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean action per (limb, slot) for a batch that may mix robots.

        Samples with identical context and mask share one generated MLP (found with
        ``torch.unique``), so generation costs one pass per distinct robot.

        Args:
            proprio: Raw proprioception, shape ``(B, L, 17)``.
            context: Morphology context, shape ``(B, L, 53)``.
            limb_mask: True for real limbs, shape ``(B, L)`` bool.

        Returns:
            Shape ``(B, L, 2)``, zero at padded limbs.
        """
        b, n, d = context.shape
        mask = limb_mask.bool()
        key = torch.cat([context.reshape(b, n * d), mask.to(context.dtype)], dim=1)
        uniq, inverse = torch.unique(key.detach(), dim=0, return_inverse=True)
        weights = self.generate(uniq[:, : n * d].reshape(-1, n, d), uniq[:, n * d :] > 0.5)
        return self._run(weights, proprio, inverse, None)

    def forward(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> torch.Tensor:
        """Same as :meth:`action_mean`."""
        return self.action_mean(proprio, context, limb_mask)

    def bake(self, robots: Sequence[Robot], contexts: Sequence[np.ndarray]) -> list[BakedMLP]:
        """Bake standalone MLPs for robots in one batched, gradient-free generate call.

        Args:
            robots: The robots.
            contexts: Their morphology contexts, each ``(n_limbs, 53)``.

        Returns:
            One :class:`BakedMLP` per robot, ``n_limbs*17 -> ... -> n_actuators``.

        Raises:
            ConfigError: A robot has more limbs than the hypernetwork hosts.
            ValueError: The lists differ in length, or a context has the wrong shape.
        """
        cfg = self.config
        if len(robots) != len(contexts):
            raise ValueError(f"{len(robots)} robots but {len(contexts)} contexts")
        if not robots:
            return []
        for robot, ctx in zip(robots, contexts, strict=True):
            if robot.n_limbs > cfg.max_limbs:
                raise ConfigError(
                    f"{robot.name}: {robot.n_limbs} limbs, more than max_limbs = {cfg.max_limbs}"
                )
            if np.shape(ctx) != (robot.n_limbs, cfg.context_dim):
                raise ValueError(
                    f"{robot.name}: context must have shape ({robot.n_limbs}, "
                    f"{cfg.context_dim}), got {np.shape(ctx)}"
                )
        n = max(robot.n_limbs for robot in robots)
        ctx_pad = np.zeros((len(robots), n, cfg.context_dim), dtype=np.float32)
        mask = np.zeros((len(robots), n), dtype=bool)
        for i, (robot, ctx) in enumerate(zip(robots, contexts, strict=True)):
            ctx_pad[i, : robot.n_limbs] = ctx
            mask[i, : robot.n_limbs] = True
        device = self.normalizer.mean.device
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                gw = self.generate(
                    torch.from_numpy(ctx_pad).to(device), torch.from_numpy(mask).to(device)
                )
        finally:
            self.train(was_training)
        return [self._bake_one(gw, i, robot) for i, robot in enumerate(robots)]

    def _bake_one(self, gw: GeneratedWeights, i: int, robot: Robot) -> BakedMLP:
        p, n = self.config.proprio_dim, robot.n_limbs
        cols = torch.as_tensor(
            np.asarray(robot.actuator_limb) * JOINT_SLOTS + np.asarray(robot.actuator_slot),
            dtype=torch.long,
            device=gw.w_out.device,
        )
        layers = [(gw.w_in[i, : n * p].T, gw.b_in[i])]
        layers += [(w[i].T, bias[i]) for w, bias in gw.hidden]
        layers.append((gw.w_out[i][:, cols].T, gw.b_out[i][cols]))
        ctrl = torch.as_tensor(np.asarray(robot.ctrl_range, dtype=np.float32))
        return BakedMLP.from_tensors(
            obs_mean=self.normalizer.mean.repeat(n).cpu(),
            obs_std=self.normalizer.std.repeat(n).cpu(),
            weights=[(w.contiguous().cpu(), bias.contiguous().cpu()) for w, bias in layers],
            ctrl_low=ctrl[:, 0].contiguous(),
            ctrl_high=ctrl[:, 1].contiguous(),
            obs_clip=self.normalizer.clip,
            name=robot.name,
            fingerprint=robot.fingerprint,
            actuator_names=robot.actuator_names,
        )


def _group(robot_index: torch.Tensor, n_robots: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Place each sample in a ``(n_robots, S)`` grid: row = robot, column = rank within it.

    Returns:
        ``(rows (B,), columns (B,), S)``.
    """
    b = robot_index.shape[0]
    if b == 0:
        return robot_index, robot_index, 0
    if int(robot_index.min()) < 0 or int(robot_index.max()) >= n_robots:
        raise ValueError(f"robot_index must lie in [0, {n_robots})")
    counts = torch.bincount(robot_index, minlength=n_robots)
    order = torch.argsort(robot_index, stable=True)
    starts = torch.cumsum(counts, dim=0) - counts
    rank = torch.arange(b, device=robot_index.device) - starts[robot_index[order]]
    slot = torch.empty_like(rank)
    slot[order] = rank
    return robot_index, slot, int(counts.max())
