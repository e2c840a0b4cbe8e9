"""ObsNormalizer: statistics over real limbs only, clip, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hd_deploy.models import ObsNormalizer

DIM = 5


def test_update_uses_only_real_limbs_and_matches_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    norm = ObsNormalizer(DIM)
    chunks = []
    for _ in range(3):
        x = torch.randn(4, 6, 7, DIM, generator=g) * 3 + 2
        mask = torch.rand(4, 6, 7, generator=g) > 0.4
        x[~mask] = 1e6  # padding garbage must not enter the statistics
        norm.update(x, mask)
        chunks.append(x[mask].double().numpy())
    rows = np.concatenate(chunks)
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), rows.var(0), rtol=1e-4)
    assert norm.count.item() == len(rows)
    assert norm.mean.dtype == torch.float32 and norm.var.dtype == torch.float32


def test_forward_normalises_and_clips() -> None:
    norm = ObsNormalizer(DIM, clip=10.0)
    with torch.no_grad():
        norm.mean.fill_(1.0)
        norm.var.fill_(4.0)
    x = torch.tensor([[1.0, 3.0, -1.0, 1e3, -1e3]])
    expected = torch.tensor([[0.0, 1.0, -1.0, 10.0, -10.0]])
    torch.testing.assert_close(norm(x), expected, rtol=1e-6, atol=1e-6)


def test_empty_update_is_a_no_op_and_shapes_are_checked() -> None:
    norm = ObsNormalizer(DIM)
    norm.update(torch.zeros(2, 3, DIM), torch.zeros(2, 3, dtype=torch.bool))
    assert norm.count.item() == 0 and torch.all(norm.var == 1)
    with pytest.raises(ValueError, match="must have shape"):
        norm.update(torch.zeros(2, 3, DIM + 1), torch.ones(2, 3, dtype=torch.bool))


def test_dict_round_trip_is_exact() -> None:
    norm = ObsNormalizer(DIM)
    norm.update(torch.randn(50, 3, DIM) * 7, torch.ones(50, 3, dtype=torch.bool))
    back = ObsNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert torch.equal(back.mean, norm.mean) and torch.equal(back.var, norm.var)
    assert back.count.item() == norm.count.item() and back.clip == norm.clip
    with pytest.raises(ValueError, match="need keys"):
        ObsNormalizer.from_dict({"mean": [0.0]})


def test_copy_takes_the_other_statistics() -> None:
    a, b = ObsNormalizer(DIM), ObsNormalizer(DIM)
    a.update(torch.randn(10, 2, DIM), torch.ones(10, 2, dtype=torch.bool))
    b.copy_(a)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var)
    with pytest.raises(ValueError):
        ObsNormalizer(DIM + 1).copy_(a)
