"""Exact parameter and multiply-accumulate counts, analytic and measured (fvcore).

Convention: counts are MACs, one fused multiply-add = 1 (fvcore's convention too);
FLOPs = 2 x MACs. Only matrix products are counted (linear layers, attention scores and
the attention-weighted sum); normalisation, softmax, activations, clamps and the
observation normaliser are elementwise and left out of both the analytic and the fvcore
counts, so the two agree exactly on the models here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from hd_deploy.models.config import HyperNetConfig, TeacherConfig
from hd_deploy.morphology.features import PROPRIO_DIM
from hd_deploy.morphology.robot import JOINT_SLOTS


def count_params(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as normaliser statistics are not parameters)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _encoder_layer_params(d: int, ff: int) -> int:
    norms = 2 * (2 * d)
    attn = (3 * d * d + 3 * d) + (d * d + d)
    return norms + attn + (d * ff + ff) + (ff * d + d)


def _encoder_layer_macs(n: int, d: int, ff: int) -> int:
    qkv = n * d * 3 * d
    scores = n * n * d  # all heads together: heads x n x n x (d / heads)
    weighted_sum = n * n * d
    out = n * d * d
    return qkv + scores + weighted_sum + out + 2 * n * d * ff


def teacher_actor_params(config: TeacherConfig, n_limbs: int | None = None) -> int:
    """Parameters of the teacher's actor (normaliser statistics excluded).

    Args:
        config: Teacher sizes.
        n_limbs: None for the full module (positional embedding of ``max_limbs`` rows);
            a number for a per-robot export, which keeps ``n_limbs`` rows.
    """
    d = config.d_model
    rows = config.max_limbs if n_limbs is None else _check_limbs(n_limbs, config.max_limbs)
    embed = config.token_dim * d + d
    pos = rows * d if config.pos_embedding else 0
    layers = config.n_layers * _encoder_layer_params(d, config.ff_dim)
    return embed + pos + layers + 2 * d + (d * JOINT_SLOTS + JOINT_SLOTS)


def teacher_actor_macs(config: TeacherConfig, n_limbs: int) -> int:
    """MACs of one control step of the actor on ``n_limbs`` tokens (no padding).

    Embedding ``n*70*d``; per layer QKV ``3*n*d^2``, scores ``n^2*d``, weighted sum
    ``n^2*d``, output projection ``n*d^2``, feed-forward ``2*n*d*ff``; decoder ``n*d*2``.
    """
    n = _check_limbs(n_limbs, config.max_limbs)
    d = config.d_model
    embed = n * config.token_dim * d
    layers = config.n_layers * _encoder_layer_macs(n, d, config.ff_dim)
    return embed + layers + n * d * JOINT_SLOTS


def baked_params(
    n_limbs: int,
    n_actuators: int,
    hidden: int = 256,
    n_hidden_layers: int = 1,
    *,
    proprio_dim: int = PROPRIO_DIM,
) -> int:
    """Parameters of a baked MLP ``n_limbs*17 -> hidden x (1 + n_hidden_layers) -> n_act``."""
    widths = _baked_widths(n_limbs, n_actuators, hidden, n_hidden_layers, proprio_dim)
    return sum(a * b + b for a, b in pairwise(widths))


def baked_macs(
    n_limbs: int,
    n_actuators: int,
    hidden: int = 256,
    n_hidden_layers: int = 1,
    *,
    proprio_dim: int = PROPRIO_DIM,
) -> int:
    """MACs of one control step of a baked MLP (sum of ``in x out`` over layers)."""
    widths = _baked_widths(n_limbs, n_actuators, hidden, n_hidden_layers, proprio_dim)
    return sum(a * b for a, b in pairwise(widths))


def hypernet_params(config: HyperNetConfig) -> int:
    """Parameters of the whole hypernetwork (encoders and generator heads)."""
    c, p, h = config.context_d, config.proprio_dim, config.hidden
    encoder = (config.context_dim * c + c) + _encoder_layer_params(c, config.context_ff) + 2 * c
    n_encoders = 3 if config.n_hidden_layers > 0 else 2
    heads = (c * p * h + p * h) + (c * h + h)
    heads += config.n_hidden_layers * ((c * h * h + h * h) + (c * h + h))
    heads += (c * h * JOINT_SLOTS + h * JOINT_SLOTS) + (c * JOINT_SLOTS + JOINT_SLOTS)
    return n_encoders * encoder + heads


@contextmanager
def _mha_fastpath(enabled: bool) -> Iterator[None]:
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def _matmul_handles() -> dict[str, Any]:
    """fvcore handles for matrix products only (its norm and pooling handles are left out)."""
    from fvcore.nn import jit_handles as jh

    return {
        "aten::addmm": jh.addmm_flop_jit,
        "aten::bmm": jh.bmm_flop_jit,
        "aten::einsum": jh.einsum_flop_jit,
        "aten::matmul": jh.matmul_flop_jit,
        "aten::mm": jh.matmul_flop_jit,
        "aten::linear": jh.linear_flop_jit,
        "aten::_convolution": jh.conv_flop_jit,
        "aten::scaled_dot_product_attention": _sdpa_macs,
    }


def _sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return batch * q[-2] * k[-2] * q[-1] + batch * q[-2] * k[-2] * v[-1]


def fvcore_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """MACs of one forward call measured by fvcore (matrix products only).

    PyTorch's fused multi-head-attention fast path hides projections from tracers, so it
    is disabled while counting (and restored afterwards); fused scaled-dot-product
    attention gets its own handle. The module is traced in eval mode, then its mode is
    restored.

    Args:
        module: Any module.
        *inputs: Example inputs for its forward.
    """
    was_training = module.training
    module.eval()
    try:
        with _mha_fastpath(False), torch.no_grad(), warnings.catch_warnings():
            # fvcore scripts and traces with torch.jit, which newer torch marks deprecated.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(module, inputs)
            analysis.clear_op_handles()
            analysis.set_op_handle(**_matmul_handles())
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return int(analysis.total())
    finally:
        module.train(was_training)


def _baked_widths(
    n_limbs: int, n_actuators: int, hidden: int, n_hidden_layers: int, proprio_dim: int
) -> list[int]:
    if min(n_limbs, n_actuators, hidden, proprio_dim) < 1 or n_hidden_layers < 0:
        raise ValueError(
            "need n_limbs, n_actuators, hidden, proprio_dim >= 1 and n_hidden_layers >= 0"
        )
    return [n_limbs * proprio_dim] + [hidden] * (n_hidden_layers + 1) + [n_actuators]


def _check_limbs(n_limbs: int, max_limbs: int) -> int:
    if not 1 <= n_limbs <= max_limbs:
        raise ValueError(f"n_limbs must be in [1, {max_limbs}], got {n_limbs}")
    return n_limbs
