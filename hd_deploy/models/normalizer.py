"""Running observation normaliser shared across limbs (MetaMorph style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class ObsNormalizer(nn.Module):
    """Running mean/variance of per-limb features, one set of statistics for every limb.

    Statistics are updated only over real limbs (padding rows are skipped) and applied as
    ``clamp((x - mean) / sqrt(var + eps), -clip, clip)``.

    Args:
        dim: Features per limb (17 for proprioception).
        clip: Symmetric clip of the normalised values.
        eps: Added to the variance before the square root.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, dim: int, *, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if clip <= 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.dim = int(dim)
        self.clip = float(clip)
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float32))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float32))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @property
    def std(self) -> torch.Tensor:
        """``sqrt(var + eps)``, shape ``(dim,)``."""
        return torch.sqrt(self.var + self.eps)

    @torch.no_grad()
    def update(self, x: torch.Tensor, limb_mask: torch.Tensor) -> None:
        """Fold a batch into the running statistics (parallel Welford update).

        Args:
            x: Raw features, shape ``(..., L, dim)``.
            limb_mask: True for real limbs, shape ``(..., L)`` bool.
        """
        if x.shape[-1] != self.dim or x.shape[:-1] != limb_mask.shape:
            raise ValueError(
                f"x must have shape (..., L, {self.dim}) matching limb_mask (..., L); got "
                f"x {tuple(x.shape)} and limb_mask {tuple(limb_mask.shape)}"
            )
        rows = x[limb_mask.bool()].to(torch.float64)
        n = rows.shape[0]
        if n == 0:
            return
        b_mean = rows.mean(dim=0)
        b_var = rows.var(dim=0, unbiased=False)
        count = self.count.item()
        total = count + n
        mean = self.mean.to(torch.float64)
        delta = b_mean - mean
        new_mean = mean + delta * (n / total)
        m2 = self.var.to(torch.float64) * count + b_var * n + delta.square() * (count * n / total)
        self.mean.copy_(new_mean.to(torch.float32))
        self.var.copy_((m2 / total).to(torch.float32))
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise and clip, shape ``(..., dim)`` -> ``(..., dim)``."""
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip)

    @torch.no_grad()
    def copy_(self, other: ObsNormalizer) -> ObsNormalizer:
        """Take another normaliser's statistics (e.g. the teacher's, for the student)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot copy a {other.dim}-feature normaliser into {self.dim}")
        self.mean.copy_(other.mean)
        self.var.copy_(other.var)
        self.count.copy_(other.count)
        self.clip, self.eps = other.clip, other.eps
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable statistics (float32 values round-trip exactly)."""
        return {
            "mean": [float(v) for v in self.mean.tolist()],
            "var": [float(v) for v in self.var.tolist()],
            "count": float(self.count.item()),
            "clip": self.clip,
            "eps": self.eps,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObsNormalizer:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: Keys are missing or unknown, or the lengths disagree.
        """
        expected = {"mean", "var", "count", "clip", "eps"}
        if set(data) != expected:
            raise ValueError(f"normaliser stats need keys {sorted(expected)}, got {sorted(data)}")
        mean = torch.as_tensor(data["mean"], dtype=torch.float32)
        var = torch.as_tensor(data["var"], dtype=torch.float32)
        if mean.ndim != 1 or mean.shape != var.shape:
            raise ValueError(
                f"normaliser mean and var must be equal-length lists, got lengths "
                f"{list(mean.shape)} and {list(var.shape)}"
            )
        finite = bool(torch.isfinite(mean).all()) and bool(torch.isfinite(var).all())
        if not finite or bool((var < 0).any()):
            raise ValueError("normaliser stats must be finite with var >= 0")
        norm = cls(mean.shape[0], clip=float(data["clip"]), eps=float(data["eps"]))
        norm.mean.copy_(mean)
        norm.var.copy_(var)
        norm.count.fill_(float(data["count"]))
        return norm

    def extra_repr(self) -> str:
        return f"dim={self.dim}, clip={self.clip}, eps={self.eps}"
