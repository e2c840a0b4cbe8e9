"""Small transformer building blocks over a robot's limbs.

Two paths compute the same function:

- ``forward``: padded ``(B, L, ...)`` tokens with a limb mask. Attention is written out
  with plain ``Linear`` and ``matmul`` ops (no fused kernels) so that ONNX export is
  straightforward and FLOP counters see every projection and product.
- ``forward_packed``: only the real limb tokens, ``(N, ...)`` with ``N = sum of limbs``,
  grouped by limb count (:class:`LimbPacking`) so that attention needs no mask and runs
  fused. Training uses it: UNIMAL robots have 8 of 12 limb slots on average, so a third
  of the padded work was spent on padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LimbPacking:
    """Where the real limb tokens of a padded batch go when packed.

    Samples are ordered by limb count; the packed tokens of the samples with ``k`` limbs
    form one contiguous block that views as ``(n_samples, k, ...)`` without a copy.

    Attributes:
        gather: Flat index into ``B * L`` of every real token, in packed order, ``(N,)``.
        positions: Limb slot of every packed token, ``(N,)``.
        sample: Batch row of every packed token, ``(N,)``.
        counts: Real limbs per batch row, ``(B,)`` float.
        groups: ``(n_samples, n_limbs)`` per block, in packed order.
    """

    gather: torch.Tensor
    positions: torch.Tensor
    sample: torch.Tensor
    counts: torch.Tensor
    groups: tuple[tuple[int, int], ...]

    @staticmethod
    def from_mask(limb_mask: torch.Tensor) -> LimbPacking:
        """Packing of a ``(B, L)`` bool mask (True on real limbs)."""
        b, n = limb_mask.shape
        counts = limb_mask.sum(dim=1)
        order = torch.argsort(counts, stable=True)
        rows, cols = torch.nonzero(limb_mask[order], as_tuple=True)
        sample = order[rows]
        sizes, n_samples = torch.unique_consecutive(counts[order], return_counts=True)
        groups = tuple(
            (int(s), int(k)) for k, s in zip(sizes.tolist(), n_samples.tolist(), strict=True)
            if k > 0
        )  # fmt: skip
        return LimbPacking(sample * n + cols, cols, sample, counts.to(torch.float32), groups)

    @property
    def batch(self) -> int:
        return int(self.counts.shape[0])

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, ...)`` -> ``(N, ...)``: the real tokens in packed order."""
        return x.reshape(-1, *x.shape[2:])[self.gather]

    def unpack(self, y: torch.Tensor, n_limbs: int) -> torch.Tensor:
        """``(N, ...)`` -> ``(B, n_limbs, ...)`` with zeros at padding."""
        out = y.new_zeros(self.batch * n_limbs, *y.shape[1:])
        out[self.gather] = y
        return out.reshape(self.batch, n_limbs, *y.shape[1:])

    def sum(self, y: torch.Tensor) -> torch.Tensor:
        """Per-sample sum of per-token values: ``(N,)`` -> ``(B,)`` in batch order."""
        return y.new_zeros(self.batch).index_add(0, self.sample, y)

    def mean(self, y: torch.Tensor) -> torch.Tensor:
        """Per-sample mean over real limbs: ``(N,)`` -> ``(B,)`` (0 for a sample with none)."""
        return self.sum(y) / self.counts.to(y.dtype).clamp(min=1.0)


class LimbAttention(nn.Module):
    """Multi-head self-attention over limbs with an optional key padding mask.

    Args:
        d_model: Token width.
        n_heads: Number of heads (must divide ``d_model``).
        dropout: Dropout on the attention weights.
    """

    def __init__(self, d_model: int, n_heads: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, limb_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over limbs.

        Args:
            x: Tokens, shape ``(B, L, d)``.
            limb_mask: True for real limbs, shape ``(B, L)`` bool; None: all real.

        Returns:
            Shape ``(B, L, d)``.
        """
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, L, dh)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        if limb_mask is not None:
            # A large finite negative (not -inf) keeps fully padded query rows finite.
            scores = scores.masked_fill(~limb_mask[:, None, None, :], torch.finfo(x.dtype).min)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        y = torch.matmul(weights, v)  # (B, H, L, dh)
        return self.out(y.transpose(1, 2).reshape(b, n, d))

    def forward_packed(self, x: torch.Tensor, packing: LimbPacking) -> torch.Tensor:
        """Attend within each sample over packed tokens ``(N, d)`` -> ``(N, d)``."""
        d = x.shape[-1]
        qkv = self.qkv(x)
        p = self.dropout.p if self.training else 0.0
        parts = []
        # split (not slicing): its backward is one concatenation, not a zero fill per group
        blocks = torch.split(qkv, [n * k for n, k in packing.groups])
        for (n_samples, k), block in zip(packing.groups, blocks, strict=True):
            q, key, v = block.view(n_samples, k, 3, self.n_heads, self.head_dim).permute(
                2, 0, 3, 1, 4
            )
            y = F.scaled_dot_product_attention(q, key, v, dropout_p=p)  # (b, H, k, dh)
            parts.append(y.transpose(1, 2).reshape(n_samples * k, d))
        return self.out(torch.cat(parts) if len(parts) > 1 else parts[0])


class PreLNEncoderLayer(nn.Module):
    """Pre-LayerNorm transformer encoder layer: ``x + attn(ln(x))``, ``x + ff(ln(x))``.

    Args:
        d_model: Token width.
        n_heads: Attention heads.
        ff_dim: Feed-forward width.
        dropout: Dropout on attention weights and on both residual branches.
    """

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = LimbAttention(d_model, n_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ff_dim)
        self.ff2 = nn.Linear(ff_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, limb_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Shape ``(B, L, d)`` -> ``(B, L, d)``; ``limb_mask`` ``(B, L)`` bool or None."""
        x = x + self.dropout(self.attn(self.norm1(x), limb_mask))
        return x + self._ff(x)

    def forward_packed(self, x: torch.Tensor, packing: LimbPacking) -> torch.Tensor:
        """Packed tokens ``(N, d)`` -> ``(N, d)``; see :class:`LimbPacking`."""
        x = x + self.dropout(self.attn.forward_packed(self.norm1(x), packing))
        return x + self._ff(x)

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.ff2(self.dropout(F.relu(self.ff1(self.norm2(x))))))


class LimbTransformer(nn.Module):
    """Embed per-limb tokens, run pre-LN encoder layers, final LayerNorm, per-limb head.

    The embedding is scaled by ``sqrt(d_model)`` (MetaMorph). The learned positional
    embedding, when present, is indexed by limb position.

    Args:
        in_dim: Token input width.
        out_dim: Outputs per limb.
        d_model: Token width.
        n_layers: Encoder layers.
        n_heads: Attention heads.
        ff_dim: Feed-forward width.
        max_limbs: Rows of the positional embedding.
        pos_embedding: Whether to add a learned positional embedding.
        dropout: Dropout inside the encoder layers.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        d_model: int,
        n_layers: int,
        n_heads: int,
        ff_dim: int,
        max_limbs: int,
        pos_embedding: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Linear(in_dim, d_model)
        self.pos = nn.Parameter(torch.randn(max_limbs, d_model)) if pos_embedding else None
        self.layers = nn.ModuleList(
            PreLNEncoderLayer(d_model, n_heads, ff_dim, dropout=dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, out_dim)
        self._scale = math.sqrt(d_model)

    def forward(self, tokens: torch.Tensor, limb_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-limb outputs.

        Args:
            tokens: Shape ``(B, L, in_dim)`` with ``L <= max_limbs``.
            limb_mask: True for real limbs, shape ``(B, L)`` bool; None: all real.

        Returns:
            Shape ``(B, L, out_dim)``.
        """
        x = self.embed(tokens) * self._scale
        if self.pos is not None:
            x = x + self.pos[: tokens.shape[1]]
        for layer in self.layers:
            x = layer(x, limb_mask)
        return self.head(self.norm(x))

    def forward_packed(self, tokens: torch.Tensor, packing: LimbPacking) -> torch.Tensor:
        """Per-limb outputs of packed tokens: ``(N, in_dim)`` -> ``(N, out_dim)``."""
        x = self.embed(tokens) * self._scale
        if self.pos is not None:
            x = x + self.pos[packing.positions]
        for layer in self.layers:
            x = layer.forward_packed(x, packing)  # type: ignore[operator]
        return self.head(self.norm(x))
