"""Small transformer building blocks over a robot's limbs.

Attention is written out with plain ``Linear`` and ``matmul`` ops (no fused kernels) so
that ONNX export is straightforward and FLOP counters see every projection and product.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
        return x + self.dropout(self.ff2(self.dropout(F.relu(self.ff1(self.norm2(x))))))


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
