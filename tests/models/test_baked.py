"""Baked MLP: equivalence with the hypernetwork, batched baking, stable names, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hd_deploy.models import BakedMLP, HyperNetConfig, HyperNetPolicy, baked_params

from ._helpers import (
    RobotCase,
    ctrl_from_actions,
    pad_batch,
    perturb_hypernet,
    randomize_normalizer,
)

TINY = HyperNetConfig.tiny()
SMALL = HyperNetConfig.small()
ATOL = 1e-5


def make_hypernet(seed: int, config: HyperNetConfig = TINY) -> HyperNetPolicy:
    torch.manual_seed(seed)
    model = HyperNetPolicy(config)
    randomize_normalizer(model.normalizer, seed)
    perturb_hypernet(model, seed)
    return model


def check_equivalence(model: HyperNetPolicy, cases: list[RobotCase]) -> list[BakedMLP]:
    """Bake all cases at once; each baked MLP must equal the padded hypernetwork path."""
    model.train()  # bake must switch dropout off by itself and restore the mode
    baked = model.bake([c.robot for c in cases], [c.context for c in cases])
    assert model.training
    model.eval()
    p, c, m, case_index = pad_batch(cases, model.config.max_limbs)
    with torch.no_grad():
        actions = model.action_mean(p, c, m)
    clipped = 0
    for ci, (case, mlp) in enumerate(zip(cases, baked, strict=True)):
        robot = case.robot
        assert mlp.widths[0] == robot.n_limbs * 17 and mlp.widths[-1] == robot.n_actuators
        assert mlp.fingerprint == robot.fingerprint
        assert mlp.actuator_names == robot.actuator_names
        obs = torch.from_numpy(case.obs.reshape(len(case.obs), -1))
        with torch.no_grad():
            ctrl = mlp(obs)
        expected = ctrl_from_actions(robot, actions[case_index == ci]).float()
        torch.testing.assert_close(ctrl, expected, rtol=0, atol=ATOL)
        a = actions[case_index == ci][:, robot.actuator_limb, robot.actuator_slot]
        clipped += int((a.abs() > 1).sum())
    assert clipped > 0  # the clamp was exercised
    return baked


def test_baked_equals_hypernet_random_robots_2_to_12_limbs(
    random_cases: list[RobotCase],
) -> None:
    assert sorted(c.robot.n_limbs for c in random_cases) == list(range(2, 13))
    check_equivalence(make_hypernet(0), random_cases)


def test_baked_equals_hypernet_gym_robots(gym_cases: list[RobotCase]) -> None:
    cfg = HyperNetConfig.from_dict({**TINY.to_dict(), "input_agg": "mean"})
    check_equivalence(make_hypernet(1, cfg), gym_cases)


def test_batched_bake_of_100_unimal_robots(unimal_cases: list[RobotCase]) -> None:
    cases = unimal_cases[:100]
    assert len(cases) == 100
    baked = check_equivalence(make_hypernet(2, SMALL), cases)
    # Robots differ, so their baked input layers must too.
    assert not torch.equal(baked[0].layers[1].weight, baked[1].layers[1].weight)


def test_unperturbed_hypernet_differs_per_robot_only_through_layout(
    random_cases: list[RobotCase],
) -> None:
    torch.manual_seed(0)
    model = HyperNetPolicy(TINY)
    a, b = (c for c in random_cases if c.robot.n_limbs in (5, 6))
    mlp_a, mlp_b = model.bake([a.robot, b.robot], [a.context, b.context])
    torch.testing.assert_close(mlp_a.layers[1].weight, mlp_b.layers[1].weight)


def test_reference_size_and_stable_names() -> None:
    mlp = BakedMLP(12 * 17, 24, hidden=256, n_hidden_layers=1)
    assert mlp.widths == (204, 256, 256, 24)
    assert sum(x.numel() for x in mlp.parameters()) == 124_440 == baked_params(12, 24)
    assert list(mlp.state_dict()) == [
        "obs_mean",
        "obs_std",
        "ctrl_low",
        "ctrl_high",
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]


def test_forward_normalises_once_clamps_and_scales() -> None:
    mean = torch.linspace(-1, 1, 6)
    std = torch.full((6,), 2.0)
    eye = torch.eye(6)
    weights = [(eye, torch.zeros(6)), (eye, torch.zeros(6)), (eye[:3], torch.zeros(3))]
    mlp = BakedMLP.from_tensors(
        obs_mean=mean,
        obs_std=std,
        weights=weights,
        ctrl_low=torch.tensor([-2.0, 0.0, -1.0]),
        ctrl_high=torch.tensor([2.0, 1.0, 3.0]),
    )
    obs = (mean + std * torch.tensor([0.5, 0.25, 3.0, 0, 0, 0]))[None]
    # normalised 0.5, 0.25, 3.0 -> ReLU -> clamp to 1 -> scaled to each range
    torch.testing.assert_close(mlp(obs), torch.tensor([[1.0, 0.625, 3.0]]))
    torch.testing.assert_close(mlp(mean[None]), torch.tensor([[0.0, 0.5, 1.0]]))


def test_from_tensors_checks_shapes() -> None:
    w = [(torch.zeros(4, 6), torch.zeros(4)), (torch.zeros(2, 5), torch.zeros(2))]
    with pytest.raises(ValueError, match=r"tensor shapes do not fit 6->4->2: \['layers.1"):
        BakedMLP.from_tensors(
            obs_mean=torch.zeros(6),
            obs_std=torch.ones(6),
            weights=w,
            ctrl_low=torch.zeros(2),
            ctrl_high=torch.ones(2),
        )


def test_bake_checks_inputs(random_cases: list[RobotCase]) -> None:
    model = HyperNetPolicy(TINY)
    case = random_cases[3]
    with pytest.raises(ValueError, match="1 robots but 2 contexts"):
        model.bake([case.robot], [case.context, case.context])
    with pytest.raises(ValueError, match=r"context must have shape \(5, 53\)"):
        model.bake([case.robot], [np.zeros((4, 53), dtype=np.float32)])
    assert model.bake([], []) == []
