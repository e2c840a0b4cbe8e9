"""Parameters and multiply-accumulates of the deployed models, measured and cross-checked.

MACs per control step come from fvcore (attention fast path disabled, matrix products
only; see :func:`hd_deploy.models.fvcore_macs`) and are checked against the analytic
count of :mod:`hd_deploy.models.counting`; :func:`macs_check` records both numbers and
whether they agree within :data:`MACS_TOLERANCE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hd_deploy.models import (
    BakedMLP,
    HyperNetPolicy,
    TeacherExport,
    baked_macs,
    baked_params,
    count_params,
    fvcore_macs,
    hypernet_params,
    teacher_actor_macs,
    teacher_actor_params,
)
from hd_deploy.models.config import TeacherConfig
from hd_deploy.morphology.features import PROPRIO_DIM

#: Largest relative difference between fvcore and the analytic count that still agrees.
MACS_TOLERANCE = 0.01


def macs_check(fvcore: int, analytic: int, *, tolerance: float = MACS_TOLERANCE) -> dict[str, Any]:
    """Compare a measured and an analytic MAC count.

    Args:
        fvcore: MACs measured by fvcore.
        analytic: MACs from the closed-form count.
        tolerance: Largest relative difference, ``|fvcore - analytic| / analytic``, that
            still agrees.

    Returns:
        ``{"fvcore", "analytic", "rel_diff", "tolerance", "agree"}``.
    """
    if fvcore < 0 or analytic < 0:
        raise ValueError(f"MAC counts must be >= 0, got {fvcore} and {analytic}")
    rel = abs(fvcore - analytic) / analytic if analytic else float(fvcore != 0)
    return {
        "fvcore": int(fvcore),
        "analytic": int(analytic),
        "rel_diff": float(rel),
        "tolerance": float(tolerance),
        "agree": bool(rel <= tolerance),
    }


def teacher_cost(
    export: TeacherExport, config: TeacherConfig, *, analytic_macs: int | None = None
) -> dict[str, Any]:
    """Parameters and MACs per control step of a per-robot teacher.

    Args:
        export: The teacher on one robot (``TeacherPolicy.for_robot``).
        config: Its config (for the analytic counts).
        analytic_macs: Override of the analytic MAC count (tests feed a wrong one).

    Returns:
        ``{"params", "params_analytic", "macs", "macs_check"}``; ``macs`` is fvcore's.
    """
    n = export.n_limbs
    measured = fvcore_macs(export, export.dummy_input())
    analytic = teacher_actor_macs(config, n) if analytic_macs is None else analytic_macs
    return {
        "params": count_params(export),
        "params_analytic": teacher_actor_params(config, n),
        "macs": measured,
        "macs_check": macs_check(measured, analytic),
    }


def student_cost(mlp: BakedMLP, *, analytic_macs: int | None = None) -> dict[str, Any]:
    """Parameters and MACs per control step of a baked MLP.

    Args:
        mlp: The baked controller.
        analytic_macs: Override of the analytic MAC count (tests feed a wrong one).

    Returns:
        ``{"params", "params_analytic", "macs", "macs_check", "widths"}``.
    """
    n_limbs, rem = divmod(mlp.n_obs, PROPRIO_DIM)
    if rem:
        raise ValueError(f"baked MLP input width {mlp.n_obs} is not a multiple of 17")
    sizes = (n_limbs, mlp.n_actuators, mlp.hidden, mlp.n_hidden_layers)
    measured = fvcore_macs(mlp, mlp.dummy_input())
    analytic = baked_macs(*sizes) if analytic_macs is None else analytic_macs
    return {
        "params": count_params(mlp),
        "params_analytic": baked_params(*sizes),
        "macs": measured,
        "macs_check": macs_check(measured, analytic),
        "widths": list(mlp.widths),
    }


class _Generate(nn.Module):
    """``generate`` as a traceable module returning plain tensors."""

    def __init__(self, hypernet: HyperNetPolicy) -> None:
        super().__init__()
        self.hypernet = hypernet

    def forward(self, context: torch.Tensor, limb_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gw = self.hypernet.generate(context, limb_mask)
        hidden = tuple(t for pair in gw.hidden for t in pair)
        return (gw.w_in, gw.b_in, *hidden, gw.w_out, gw.b_out)


def hypernet_cost(hypernet: HyperNetPolicy, context: np.ndarray) -> dict[str, Any]:
    """Size of the hypernetwork and the MACs of baking one robot (run once per robot).

    Args:
        hypernet: The student.
        context: One robot's morphology context, shape ``(n_limbs, 53)``.

    Returns:
        ``{"params", "params_analytic", "macs_per_bake"}`` (fvcore, no analytic check).
    """
    ctx = torch.as_tensor(np.asarray(context, dtype=np.float32))[None]
    mask = torch.ones(ctx.shape[:2], dtype=torch.bool)
    return {
        "params": count_params(hypernet),
        "params_analytic": hypernet_params(hypernet.config),
        "macs_per_bake": fvcore_macs(_Generate(hypernet), ctx, mask),
    }
