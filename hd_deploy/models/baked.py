"""The baked per-robot controller: a plain MLP with its normaliser and control range.

A ``BakedMLP`` depends on nothing but torch: the hypernetwork writes its weights once
(:meth:`HyperNetPolicy.bake`) and the MLP is then exported or run on its own. Names of
parameters and buffers are part of the format that exporters and the numpy runtime read:

- ``obs_mean``, ``obs_std``: ``(n_obs,)``, the per-limb normaliser tiled over limbs;
- ``layers.{i}.weight`` ``(out, in)``, ``layers.{i}.bias`` ``(out,)``, ReLU between layers;
- ``ctrl_low``, ``ctrl_high``: ``(n_actuators,)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import nn


class BakedMLP(nn.Module):
    """``obs (B, n_obs) -> ctrl (B, n_actuators)``: normalise, MLP, clamp, scale to ctrlrange.

    Layer widths: ``n_obs -> hidden -> (hidden x n_hidden_layers) -> n_actuators``. Buffers
    start as an identity normaliser and ``[-1, 1]`` control ranges; fill them with
    :meth:`from_tensors` or ``load_state_dict``.

    Args:
        n_obs: Observation width (``n_limbs * 17``).
        n_actuators: Controls out, in the robot's actuator order.
        hidden: Hidden width.
        n_hidden_layers: Hidden-to-hidden layers.
        obs_clip: Clip of the normalised observation.
        name: Robot name (metadata).
        fingerprint: Robot fingerprint (metadata).
        actuator_names: Actuator names in order (metadata).
    """

    input_names = ("obs",)
    output_names = ("ctrl",)

    obs_mean: torch.Tensor
    obs_std: torch.Tensor
    ctrl_low: torch.Tensor
    ctrl_high: torch.Tensor

    def __init__(
        self,
        n_obs: int,
        n_actuators: int,
        *,
        hidden: int,
        n_hidden_layers: int,
        obs_clip: float = 10.0,
        name: str = "robot",
        fingerprint: str = "",
        actuator_names: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if n_obs < 1 or n_actuators < 1 or hidden < 1 or n_hidden_layers < 0:
            raise ValueError(
                "need n_obs, n_actuators, hidden >= 1 and n_hidden_layers >= 0; got "
                f"{n_obs}, {n_actuators}, {hidden}, {n_hidden_layers}"
            )
        if actuator_names and len(actuator_names) != n_actuators:
            raise ValueError(f"{len(actuator_names)} actuator names for {n_actuators} actuators")
        self.n_obs = n_obs
        self.n_actuators = n_actuators
        self.hidden = hidden
        self.n_hidden_layers = n_hidden_layers
        self.obs_clip = float(obs_clip)
        self.robot_name = name
        self.fingerprint = fingerprint
        self.actuator_names = tuple(actuator_names)
        widths = [n_obs] + [hidden] * (n_hidden_layers + 1) + [n_actuators]
        self._widths = tuple(widths)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        self.register_buffer("obs_mean", torch.zeros(n_obs))
        self.register_buffer("obs_std", torch.ones(n_obs))
        self.register_buffer("ctrl_low", -torch.ones(n_actuators))
        self.register_buffer("ctrl_high", torch.ones(n_actuators))
        self.eval()  # a deployment artefact; nothing in it behaves differently in training

    @classmethod
    def from_tensors(
        cls,
        *,
        obs_mean: torch.Tensor,
        obs_std: torch.Tensor,
        weights: Sequence[tuple[torch.Tensor, torch.Tensor]],
        ctrl_low: torch.Tensor,
        ctrl_high: torch.Tensor,
        obs_clip: float = 10.0,
        name: str = "robot",
        fingerprint: str = "",
        actuator_names: Sequence[str] = (),
    ) -> BakedMLP:
        """Build from explicit tensors.

        Args:
            obs_mean: Shape ``(n_obs,)``.
            obs_std: Shape ``(n_obs,)``, already ``sqrt(var + eps)``.
            weights: ``(weight (out, in), bias (out,))`` per layer, input layer first;
                at least two layers, all hidden widths equal.
            ctrl_low: Shape ``(n_actuators,)``.
            ctrl_high: Shape ``(n_actuators,)``.
            obs_clip: Clip of the normalised observation.
            name: Robot name.
            fingerprint: Robot fingerprint.
            actuator_names: Actuator names in order.
        """
        if len(weights) < 2:
            raise ValueError(f"need at least 2 layers, got {len(weights)}")
        n_obs = weights[0][0].shape[1]
        hidden = weights[0][0].shape[0]
        n_act = weights[-1][0].shape[0]
        mlp = cls(
            n_obs,
            n_act,
            hidden=hidden,
            n_hidden_layers=len(weights) - 2,
            obs_clip=obs_clip,
            name=name,
            fingerprint=fingerprint,
            actuator_names=actuator_names,
        )
        state = {
            "obs_mean": obs_mean,
            "obs_std": obs_std,
            "ctrl_low": ctrl_low,
            "ctrl_high": ctrl_high,
        }
        for i, (w, b) in enumerate(weights):
            state[f"layers.{i}.weight"] = w
            state[f"layers.{i}.bias"] = b
        expected = {k: tuple(v.shape) for k, v in mlp.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if expected != got:
            bad = sorted(k for k in expected if expected[k] != got.get(k))
            raise ValueError(f"tensor shapes do not fit {_widths_text(mlp)}: {bad}")
        mlp.load_state_dict({k: v.detach().to(torch.float32) for k, v in state.items()})
        return mlp

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths, input first, e.g. ``(204, 256, 256, 24)``."""
        return self._widths

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Controls for a batch of observations.

        Args:
            obs: Flat native observation, shape ``(B, n_obs)`` float32.

        Returns:
            Controls in actuator order inside each ctrlrange, shape ``(B, n_actuators)``.
        """
        a = torch.clamp(self.action_mean(obs), -1.0, 1.0)
        return self.ctrl_low + (a + 1.0) * 0.5 * (self.ctrl_high - self.ctrl_low)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """The normalised, clipped observation the first layer reads, ``(B, n_obs)``."""
        return torch.clamp((obs - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)

    def action_mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The MLP's output before the clamp to [-1, 1] and the ctrlrange scaling, the
        action mean a policy-gradient method perturbs (``hd-tune``), ``(B, n_actuators)``."""
        x = self.normalize(obs)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = torch.relu(x)
        return x

    def dummy_input(self, batch: int = 1) -> torch.Tensor:
        """Zero observation of the right shape, ``(batch, n_obs)``."""
        return torch.zeros(batch, self.n_obs)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable metadata (sizes, clip, robot identity)."""
        return {
            "robot": self.robot_name,
            "fingerprint": self.fingerprint,
            "widths": list(self.widths),
            "n_hidden_layers": self.n_hidden_layers,
            "obs_clip": self.obs_clip,
            "actuator_names": list(self.actuator_names),
        }

    def extra_repr(self) -> str:
        return f"robot={self.robot_name!r}, widths={self.widths}, obs_clip={self.obs_clip}"


def _widths_text(mlp: BakedMLP) -> str:
    return "->".join(str(w) for w in mlp.widths)
