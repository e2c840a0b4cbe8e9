"""The analysis scripts under scripts/: imitation gap and the model card's return plot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from hd_deploy.models import HyperNetConfig, HyperNetPolicy
from hd_deploy.train.rollout import DistillData

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(student: HyperNetPolicy, n_limbs=(3, 5), samples: int = 7) -> DistillData:
    rng = np.random.default_rng(0)
    L = student.config.max_limbs
    parts = []
    for n in n_limbs:
        context = np.zeros((L, student.config.context_dim), np.float32)
        context[:n] = rng.standard_normal((n, student.config.context_dim))
        limb_mask = np.arange(L) < n
        action_mask = np.zeros((L, 2), bool)
        action_mask[:n, 0] = True
        proprio = np.zeros((samples, L, 17), np.float32)
        proprio[:, :n] = rng.standard_normal((samples, n, 17))
        with torch.no_grad():
            w = student.generate(torch.as_tensor(context[None]), torch.as_tensor(limb_mask[None]))
            own = student.apply(w, torch.as_tensor(proprio), torch.zeros(samples, dtype=torch.long))
        parts.append({"proprio": proprio, "action": own.numpy(), "context": context,
                      "limb_mask": limb_mask, "action_mask": action_mask})  # fmt: skip
    return DistillData.from_parts(parts)


def test_imitation_gap_is_zero_on_own_actions_and_grows_with_noise() -> None:
    gap = _load("imitation_gap")
    student = HyperNetPolicy(HyperNetConfig.tiny()).eval()
    data = _data(student)
    for loss, rel in gap.robot_errors(student, data):
        assert loss < 1e-10 and rel < 1e-8
    data.action = data.action + 0.1  # every real actuator off by 0.1: loss 0.5 * 0.01
    for loss, _ in gap.robot_errors(student, data):
        assert abs(loss - 0.005) < 1e-6


def test_return_plot_needs_both_evaluations(tmp_path: Path) -> None:
    card = _load("model_card")
    out = tmp_path / "plot.png"
    assert not card.plot_returns(tmp_path, "t", "s", out) and not out.exists()
    for run, scale in (("t", 1.0), ("s", 0.9)):
        robots = [{"name": f"r{i}", "return_mean": scale * 100 * i} for i in range(4)]
        (tmp_path / f"eval_{run}_train.json").write_text(json.dumps({"robots": robots}))
    assert card.plot_returns(tmp_path, "t", "s", out)
    assert out.stat().st_size > 1000
