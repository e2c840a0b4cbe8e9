"""Robot-balanced behaviour cloning: batches, device choice, and a loss that goes down."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hd_deploy.train.bc import (
    Batch,
    Schedule,
    _warmed_step,
    balanced_batches,
    bc_epoch,
    device_name,
    resolve_device,
    set_cosine_lr,
)
from hd_deploy.train.rollout import DistillData

L = 4


def _data(n_robots: int = 3, per_robot: int = 64, seed: int = 0) -> DistillData:
    """Labels a fixed linear function of the first proprio feature, masked per robot."""
    rng = np.random.default_rng(seed)
    parts = []
    for r in range(n_robots):
        n_limbs = 2 + r % (L - 1)
        limb_mask = np.arange(L) < n_limbs
        proprio = rng.standard_normal((per_robot, L, 17)).astype(np.float32) * limb_mask[:, None]
        action = np.stack([proprio[..., 0], -proprio[..., 0]], axis=-1) * 0.5
        parts.append({"proprio": proprio, "action": action.astype(np.float32),
                      "context": np.zeros((L, 53), np.float32), "limb_mask": limb_mask,
                      "action_mask": np.repeat(limb_mask[:, None], 2, axis=1)})  # fmt: skip
    return DistillData.from_parts(parts)


def test_balanced_batches_draw_equal_shares_of_few_robots() -> None:
    data = _data(n_robots=5)
    rng = np.random.default_rng(0)
    batches = list(balanced_batches(data, batch_size=32, robots_per_batch=4, rng=rng))
    assert len(batches) == data.n_samples // 32
    for chosen, idx, local in batches:
        assert len(set(chosen.tolist())) == 4
        assert np.array_equal(data.robot[idx], chosen[local])  # each sample from its robot
        assert np.array_equal(np.bincount(local), [8, 8, 8, 8])


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="expected auto, cpu"):
        resolve_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_device_name_is_the_same_for_every_trainer(monkeypatch) -> None:
    # hd-train, hd-clone and hd-distill record it in checkpoint.json; the model card prints it
    assert device_name(torch.device("cpu")) == "cpu"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert device_name(torch.device("cuda", 0)) == "cuda (NVIDIA H200)"


NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NO_CUDA)])
def test_bc_epoch_fits_a_linear_policy(device: str) -> None:
    torch.manual_seed(0)
    data = _data()
    model = torch.nn.Linear(17, 2).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    seen: list[Batch] = []

    def predict(batch: Batch) -> torch.Tensor:
        seen.append(batch)
        return model(batch.proprio)

    def epoch() -> float:
        return bc_epoch(
            predict, list(model.parameters()), opt, data, batch_size=24, robots_per_batch=3,
            max_grad_norm=10.0, device=torch.device(device),
        )  # fmt: skip

    first = epoch()
    for _ in range(30):
        last = epoch()
    assert last < 0.01 * first
    assert seen[0].proprio.device.type == device
    ctx, mask = seen[0].sample_context()
    assert ctx.shape == (24, L, 53) and mask.shape == (24, L)


def test_clip_labels_asks_for_the_command_the_motor_runs() -> None:
    """Labels of 3 and of 1 are the same command: with clip_labels the loss cannot tell."""
    model = torch.nn.Linear(17, 2)

    def loss(scale: float, clip: bool) -> float:
        data = _data()
        data.action = np.sign(data.action) * scale  # every label at +-scale
        torch.manual_seed(0)  # the same batches
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # measure, do not move
        return bc_epoch(
            lambda b: model(b.proprio), list(model.parameters()), opt, data, batch_size=24,
            robots_per_batch=3, max_grad_norm=10.0, clip_labels=clip,
        )  # fmt: skip

    assert loss(3.0, clip=False) > loss(1.0, clip=False) + 1.0
    assert loss(3.0, clip=True) == pytest.approx(loss(1.0, clip=True))
    assert loss(1.0, clip=True) == pytest.approx(loss(1.0, clip=False))


def test_select_keeps_only_the_chosen_robots_renumbered() -> None:
    data = _data(n_robots=4, per_robot=10)
    sub = data.select([3, 1], per_robot=6, rng=np.random.default_rng(0))
    assert sub.n_robots == 2 and np.array_equal(np.bincount(sub.robot), [6, 6])
    assert np.array_equal(sub.limb_mask, data.limb_mask[[3, 1]])
    for new, old in ((0, 3), (1, 1)):  # every kept sample is one of the old robot's samples
        own = data.proprio[data.robot_indices(old)]
        for row in sub.proprio[sub.robot_indices(new)]:
            assert (own == row).all(axis=(1, 2)).any()
    assert data.select([2]).n_samples == 10  # no cap: all samples


def test_concat_appends_the_other_robots_renumbered() -> None:
    a, b = _data(n_robots=2, per_robot=5), _data(n_robots=3, per_robot=4)
    b.proprio = b.proprio + 1.0  # tell the halves apart
    both = a.concat(b)
    assert both.n_robots == 5 and np.array_equal(np.bincount(both.robot), [5, 5, 4, 4, 4])
    assert np.array_equal(both.limb_mask[2:], b.limb_mask) and both.context.shape == (5, L, 53)
    assert np.array_equal(both.action_mask[:2], a.action_mask)
    for r in range(3):
        own = b.proprio[b.robot_indices(r)]
        assert np.array_equal(both.proprio[both.robot_indices(2 + r)], own)
    assert np.array_equal(both.select([0, 1]).proprio, a.proprio)


def test_cosine_lr_warms_up_linearly_then_follows_the_cosine() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    def lr(epoch: int, warmup: int) -> float:
        set_cosine_lr(opt, 1e-3, epoch, 10, warmup)
        return opt.param_groups[0]["lr"]

    assert [round(lr(e, 3), 8) for e in range(3)] == [2.5e-4, 5e-4, 7.5e-4]
    assert lr(3, 3) == lr(3, 0) and lr(0, 0) == 1e-3  # after (or without) warm-up: cosine
    assert lr(9, 3) < lr(4, 3) < 1e-3


def test_the_first_optimiser_steps_are_warmed_up() -> None:
    """Adam's first steps move a weight by about lr whatever the gradient (the hd-distill
    loss jump of 2-epoch runs); the first ``warmup_steps`` run at a growing fraction of it,
    counted by the optimiser's state, and the group's lr is left as it was."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([w], lr=0.1)
    moves = []
    for _ in range(5):
        before = w.detach().clone()
        opt.zero_grad()
        (-w).sum().backward()  # a constant gradient: each Adam step moves w by its lr
        _warmed_step(opt, w, warmup_steps=3)
        moves.append(float((w.detach() - before).item()))
        assert opt.param_groups[0]["lr"] == 0.1
    np.testing.assert_allclose(moves, [0.025, 0.05, 0.075, 0.1, 0.1], rtol=1e-4)


@pytest.mark.parametrize(
    ("epochs", "rounds", "due", "last_round"),
    [(24, 2, [12], 1), (5, 3, [1, 2], 2), (2, 4, [1], 1), (6, 1, [], 0)],
)
def test_dagger_rounds_start_every_epochs_over_rounds_epochs(epochs, rounds, due, last_round):
    schedule = Schedule(epochs, rounds, lr=1e-3)
    at = [schedule.round_at(e) for e in range(epochs)]
    assert [e for e, (_, d) in enumerate(at) if d] == due
    assert at[0] == (0, False) and at[-1][0] == last_round
    assert all(a[0] <= b[0] for a, b in zip(at, at[1:], strict=False))  # never goes back
