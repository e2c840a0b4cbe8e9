"""MetaMorph-style transformer teacher policy and its per-robot export wrapper."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from hd_deploy.errors import ConfigError
from hd_deploy.models.config import TeacherConfig
from hd_deploy.models.layers import LimbPacking, LimbTransformer
from hd_deploy.models.normalizer import ObsNormalizer
from hd_deploy.morphology.robot import JOINT_SLOTS

if TYPE_CHECKING:
    from hd_deploy.morphology.robot import Robot


class TeacherPolicy(nn.Module):
    """Universal transformer policy: one token per limb, two actions per limb.

    Inputs are raw (un-normalised) proprioception; the policy normalises inside with its
    ``normalizer`` (updated by the trainer, never by ``forward``).

    Args:
        config: Sizes and options.
    """

    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        self.config = config
        self.normalizer = ObsNormalizer(config.proprio_dim, clip=config.obs_clip)
        self.actor = LimbTransformer(
            config.token_dim,
            JOINT_SLOTS,
            d_model=config.d_model,
            n_layers=config.n_layers,
            n_heads=config.n_heads,
            ff_dim=config.ff_dim,
            max_limbs=config.max_limbs,
            pos_embedding=config.pos_embedding,
            dropout=config.dropout,
        )
        self.critic = LimbTransformer(
            config.token_dim,
            1,
            d_model=config.value_d_model,
            n_layers=config.value_layers,
            n_heads=config.value_heads,
            ff_dim=config.value_ff,
            max_limbs=config.max_limbs,
            pos_embedding=config.pos_embedding,
            dropout=config.dropout,
        )
        # MetaMorph init: small embedding, near-zero initial actions.
        for net in (self.actor, self.critic):
            nn.init.uniform_(net.embed.weight, -0.1, 0.1)
            nn.init.zeros_(net.embed.bias)
        nn.init.uniform_(self.actor.head.weight, -0.01, 0.01)
        nn.init.zeros_(self.actor.head.bias)

    @property
    def action_std(self) -> float:
        """Fixed standard deviation of the Gaussian policy."""
        return self.config.action_std

    def actor_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the action transformer."""
        return self.actor.parameters()

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the value transformer."""
        return self.critic.parameters()

    def _tokens(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> torch.Tensor:
        self._check_shapes(proprio, context, limb_mask)
        return torch.cat([self.normalizer(proprio), context], dim=-1)

    def _check_shapes(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> None:
        c = self.config
        if (
            proprio.ndim != 3
            or proprio.shape[-1] != c.proprio_dim
            or context.shape != (*proprio.shape[:2], c.context_dim)
            or limb_mask.shape != proprio.shape[:2]
        ):
            raise ValueError(
                f"expected proprio (B, L, {c.proprio_dim}), context (B, L, {c.context_dim}) "
                f"and limb_mask (B, L); got {tuple(proprio.shape)}, {tuple(context.shape)} "
                f"and {tuple(limb_mask.shape)}"
            )
        if proprio.shape[1] > c.max_limbs:
            raise ValueError(f"L = {proprio.shape[1]} exceeds max_limbs = {c.max_limbs}")

    def action_mean(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean action per (limb, slot), zero at padded limbs.

        Args:
            proprio: Raw proprioception, shape ``(B, L, 17)``.
            context: Morphology context, shape ``(B, L, 53)``.
            limb_mask: True for real limbs, shape ``(B, L)`` bool.

        Returns:
            Shape ``(B, L, 2)``.
        """
        mask = limb_mask.bool()
        out = self.actor(self._tokens(proprio, context, mask), mask)
        return out * mask[..., None]

    def value(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> torch.Tensor:
        """State value: per-limb value head averaged over real limbs.

        Args:
            proprio: Raw proprioception, shape ``(B, L, 17)``.
            context: Morphology context, shape ``(B, L, 53)``.
            limb_mask: True for real limbs, shape ``(B, L)`` bool.

        Returns:
            Shape ``(B,)``.
        """
        mask = limb_mask.bool()
        per_limb = self.critic(self._tokens(proprio, context, mask), mask)[..., 0]
        m = mask.to(per_limb.dtype)
        return (per_limb * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)

    def packed(
        self,
        proprio: torch.Tensor,
        context: torch.Tensor,
        limb_mask: torch.Tensor,
        *,
        value: bool = True,
    ) -> tuple[LimbPacking, torch.Tensor, torch.Tensor | None]:
        """Action means and values computed on the real limbs only (the training path).

        Equal to :meth:`action_mean` and :meth:`value` up to float rounding, without the
        padded tokens' work (see :class:`~hd_deploy.models.layers.LimbPacking`).

        Args:
            proprio: Raw proprioception, shape ``(B, L, 17)``.
            context: Morphology context, shape ``(B, L, 53)``.
            limb_mask: True for real limbs, shape ``(B, L)`` bool.
            value: Also run the value network.

        Returns:
            The packing, action means of the real limbs ``(N, 2)`` in packed order, and
            values ``(B,)`` (None when ``value`` is False).
        """
        self._check_shapes(proprio, context, limb_mask)
        packing = LimbPacking.from_mask(limb_mask.bool())
        tokens = torch.cat([self.normalizer(packing.pack(proprio)), packing.pack(context)], dim=-1)
        mean = self.actor.forward_packed(tokens, packing)
        if not value:
            return packing, mean, None
        return packing, mean, packing.mean(self.critic.forward_packed(tokens, packing)[:, 0])

    def forward(
        self, proprio: torch.Tensor, context: torch.Tensor, limb_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Action mean ``(B, L, 2)`` and value ``(B,)``; see :meth:`action_mean`."""
        return self.action_mean(proprio, context, limb_mask), self.value(
            proprio, context, limb_mask
        )

    def for_robot(self, robot: Robot, context: np.ndarray) -> TeacherExport:
        """Deterministic per-robot controller for export (a snapshot of the current weights).

        Args:
            robot: The robot (limb and actuator layout, control ranges).
            context: Its morphology context, shape ``(n_limbs, 53)``.
        """
        return TeacherExport(self, robot, context)


class TeacherExport(nn.Module):
    """Export wrapper: flat native observation in, controls in actuator order out.

    Holds a copy of the actor (positional embedding trimmed to the robot's limbs), the
    normaliser statistics, the robot's context and its actuator gather and control range
    as buffers. Runs on exactly ``n_limbs`` tokens (no padding, no mask).

    Args:
        teacher: The trained policy (copied, not referenced).
        robot: The robot.
        context: Its morphology context, shape ``(n_limbs, 53)``.

    Raises:
        ConfigError: The robot has more limbs than the teacher hosts.
        ValueError: ``context`` has the wrong shape.
    """

    input_names = ("obs",)
    output_names = ("ctrl",)

    context: torch.Tensor
    act_limb: torch.Tensor
    act_slot: torch.Tensor
    ctrl_low: torch.Tensor
    ctrl_high: torch.Tensor

    def __init__(self, teacher: TeacherPolicy, robot: Robot, context: np.ndarray) -> None:
        super().__init__()
        cfg = teacher.config
        n = robot.n_limbs
        if n > cfg.max_limbs:
            raise ConfigError(f"{robot.name}: {n} limbs, more than max_limbs = {cfg.max_limbs}")
        if np.shape(context) != (n, cfg.context_dim):
            raise ValueError(
                f"{robot.name}: context must have shape ({n}, {cfg.context_dim}), "
                f"got {np.shape(context)}"
            )
        self.robot_name = robot.name
        self.fingerprint = robot.fingerprint
        self.n_limbs = n
        self.n_actuators = robot.n_actuators
        self.proprio_dim = cfg.proprio_dim
        self.normalizer: ObsNormalizer = copy.deepcopy(teacher.normalizer)
        self.actor: LimbTransformer = copy.deepcopy(teacher.actor)
        if self.actor.pos is not None:
            self.actor.pos = nn.Parameter(self.actor.pos.detach()[:n].clone())
        self.register_buffer("context", torch.as_tensor(context, dtype=torch.float32).clone())
        self.register_buffer("act_limb", torch.as_tensor(robot.actuator_limb, dtype=torch.long))
        self.register_buffer("act_slot", torch.as_tensor(robot.actuator_slot, dtype=torch.long))
        self.register_buffer("ctrl_low", _f32(robot.ctrl_range[:, 0]))
        self.register_buffer("ctrl_high", _f32(robot.ctrl_range[:, 1]))
        self.to(teacher.normalizer.mean.device)
        self.eval()
        self.requires_grad_(False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Controls for a batch of observations.

        Args:
            obs: Flat native observation, shape ``(B, n_limbs * 17)`` float32.

        Returns:
            Controls in actuator order, shape ``(B, n_actuators)``.
        """
        x = self.normalizer(obs.reshape(-1, self.n_limbs, self.proprio_dim))
        ctx = self.context.unsqueeze(0).expand(x.shape[0], -1, -1)
        actions = self.actor(torch.cat([x, ctx], dim=-1))  # (B, n_limbs, 2)
        a = torch.clamp(actions[:, self.act_limb, self.act_slot], -1.0, 1.0)
        return self.ctrl_low + (a + 1.0) * 0.5 * (self.ctrl_high - self.ctrl_low)

    def dummy_input(self, batch: int = 1) -> torch.Tensor:
        """Zero observation of the right shape, ``(batch, n_limbs * 17)``."""
        return torch.zeros(batch, self.n_limbs * self.proprio_dim)


def _f32(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32)).clone()
