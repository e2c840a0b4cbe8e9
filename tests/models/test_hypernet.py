"""HyperDistill hypernetwork: initial MLP, grouping by robot, padding, gradients."""

from __future__ import annotations

import pytest
import torch

from hd_deploy.models import HyperNetConfig, HyperNetPolicy

from ._helpers import RobotCase, pad_batch, perturb_hypernet, randomize_normalizer

TINY = HyperNetConfig.tiny()
MAX_LIMBS = TINY.max_limbs
ATOL = 1e-5
RTOL = 1e-6  # raw action means can reach ~10 before the clamp


def make_hypernet(seed: int = 0, config: HyperNetConfig = TINY) -> HyperNetPolicy:
    torch.manual_seed(seed)
    model = HyperNetPolicy(config)
    randomize_normalizer(model.normalizer, seed)
    perturb_hypernet(model, seed)
    return model.eval()


def generator_matrices(model: HyperNetPolicy) -> list[torch.Tensor]:
    heads = [model.in_w, model.in_b, model.out_w, model.out_b]
    heads += list(model.hidden_w) + list(model.hidden_b)
    return [h.weight for h in heads]


def test_every_robot_starts_from_the_same_non_degenerate_mlp(
    random_cases: list[RobotCase],
) -> None:
    torch.manual_seed(0)
    model = HyperNetPolicy(TINY).eval()
    assert all(torch.all(w == 0) for w in generator_matrices(model))
    cases = [c for c in random_cases if c.robot.n_limbs == 6] + [random_cases[-1]]
    _, c, m, _ = pad_batch(cases, MAX_LIMBS)
    gw = model.generate(c, m)
    per_limb = gw.w_in.view(len(c), MAX_LIMBS, TINY.proprio_dim, TINY.hidden)
    first = per_limb[0, 0]
    assert torch.all(per_limb[m] == first)  # same weights for every real limb and robot
    assert torch.all(per_limb[~m] == 0)
    assert first.abs().max() > 0 and first.std() > 0
    for w, b in gw.hidden:
        assert torch.all(w == w[0]) and w[0].std() > 0 and torch.all(b == b[0])


def test_apply_with_index_equals_per_sample_generation(random_cases: list[RobotCase]) -> None:
    model = make_hypernet(1)
    p, c, m, case_index = pad_batch(random_cases, MAX_LIMBS)
    per_sample = model.apply(model.generate(c, m), p, torch.arange(len(p)))
    # One generated MLP per robot; samples shuffled so groups are interleaved.
    first = torch.stack([torch.nonzero(case_index == i)[0, 0] for i in range(len(random_cases))])
    gw = model.generate(c[first], m[first])
    perm = torch.randperm(len(p), generator=torch.Generator().manual_seed(0))
    grouped = model.apply(gw, p[perm], case_index[perm], m[perm])
    torch.testing.assert_close(grouped, per_sample[perm], rtol=RTOL, atol=ATOL)
    # action_mean finds the distinct robots itself.
    torch.testing.assert_close(model.action_mean(p, c, m), per_sample, rtol=RTOL, atol=ATOL)
    assert torch.all(per_sample[~m] == 0)


def test_padding_does_not_change_real_limbs(random_cases: list[RobotCase]) -> None:
    model = make_hypernet(2)
    p, c, m, case_index = pad_batch(random_cases, MAX_LIMBS)
    padded = model.action_mean(p, c, m)
    for ci, case in enumerate(random_cases):
        n, rows = case.robot.n_limbs, case_index == ci
        alone = model.action_mean(p[rows, :n], c[rows, :n], m[rows, :n])
        torch.testing.assert_close(padded[rows, :n], alone, rtol=RTOL, atol=ATOL)


def test_mean_aggregation_divides_input_layer_by_real_limbs(
    random_cases: list[RobotCase],
) -> None:
    summed = make_hypernet(3)
    averaged = HyperNetPolicy(HyperNetConfig.from_dict({**TINY.to_dict(), "input_agg": "mean"}))
    averaged.load_state_dict(summed.state_dict())
    averaged.eval()
    _, c, m, _ = pad_batch(random_cases, MAX_LIMBS)
    gs, ga = summed.generate(c, m), averaged.generate(c, m)
    n = m.sum(1).float()
    torch.testing.assert_close(ga.w_in * n[:, None, None], gs.w_in, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ga.b_in * n[:, None], gs.b_in, rtol=1e-5, atol=1e-6)


def test_gradients_reach_generators_and_encoders(random_cases: list[RobotCase]) -> None:
    model = make_hypernet(4).train()
    p, c, m, _ = pad_batch(random_cases[:4], MAX_LIMBS)
    model.action_mean(p, c, m).square().sum().backward()
    missing = [n for n, x in model.named_parameters() if x.grad is None or not x.grad.any()]
    assert not missing


def test_zero_init_still_trains_the_generators(random_cases: list[RobotCase]) -> None:
    torch.manual_seed(5)
    model = HyperNetPolicy(TINY).train()
    p, c, m, _ = pad_batch(random_cases[:4], MAX_LIMBS)
    model.action_mean(p, c, m).sub(0.3).square().sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in generator_matrices(model))


def test_context_dropout_only_in_training(random_cases: list[RobotCase]) -> None:
    model = make_hypernet(6)
    p, c, m, _ = pad_batch(random_cases[:3], MAX_LIMBS)
    torch.testing.assert_close(model.action_mean(p, c, m), model.action_mean(p, c, m))
    model.train()
    torch.manual_seed(0)
    a = model.action_mean(p, c, m)
    assert not torch.allclose(a, model.action_mean(p, c, m))


@pytest.mark.parametrize("n_hidden_layers", [0, 2])
def test_other_depths(random_cases: list[RobotCase], n_hidden_layers: int) -> None:
    cfg = HyperNetConfig.from_dict({**TINY.to_dict(), "n_hidden_layers": n_hidden_layers})
    model = make_hypernet(7, cfg)
    p, c, m, _ = pad_batch(random_cases[:3], MAX_LIMBS)
    gw = model.generate(c, m)
    assert len(gw.hidden) == n_hidden_layers
    assert model.action_mean(p, c, m).shape == (len(p), MAX_LIMBS, 2)


def test_shape_errors_are_clear() -> None:
    model = HyperNetPolicy(TINY)
    c, m = torch.zeros(2, 4, 53), torch.ones(2, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"limb_mask must have shape \(2, 4\)"):
        model.generate(c, m[:, :3])
    gw = model.generate(c, m)
    with pytest.raises(ValueError, match=r"proprio must have shape \(B, 4, 17\)"):
        model.apply(gw, torch.zeros(3, 5, 17), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"robot_index must lie in \[0, 2\)"):
        model.apply(gw, torch.zeros(3, 4, 17), torch.tensor([0, 1, 2]))


def test_module_apply_still_works_for_init_functions() -> None:
    model = HyperNetPolicy(TINY)
    seen: list[str] = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert "ContextEncoder" in seen and seen[-1] == "HyperNetPolicy"
    with pytest.raises(TypeError, match="needs proprio and robot_index"):
        model.apply(model.generate(torch.zeros(1, 2, 53), torch.ones(1, 2, dtype=torch.bool)))
