"""Parameter and MAC counts: exact analytic numbers, and fvcore agreeing with them."""

from __future__ import annotations

import pytest
import torch

from hd_deploy.models import (
    BakedMLP,
    HyperNetConfig,
    HyperNetPolicy,
    TeacherConfig,
    TeacherPolicy,
    baked_macs,
    baked_params,
    count_params,
    fvcore_macs,
    hypernet_params,
    teacher_actor_macs,
    teacher_actor_params,
)

from ._helpers import RobotCase

REFERENCE = TeacherConfig.reference()


def test_reference_baked_mlp_by_hand() -> None:
    # 204*256+256 + 256*256+256 + 256*24+24
    assert baked_params(12, 24, 256, 1) == 124_440
    # 204*256 + 256*256 + 256*24
    assert baked_macs(12, 24, 256, 1) == 123_904
    assert baked_params(1, 1, 8, 0) == 17 * 8 + 8 + 8 * 1 + 1


def test_reference_teacher_actor_by_hand() -> None:
    # embed 70*128+128 = 9,088; positions 12*128 = 1,536; per layer: 2 LayerNorms 512,
    # QKV 49,536, out 16,512, FF 132,096 + 131,200 -> 329,856 x 5 = 1,649,280;
    # final LayerNorm 256; decoder 258.
    assert teacher_actor_params(REFERENCE) == 1_660_418
    assert teacher_actor_params(REFERENCE, 9) == 1_660_418 - 3 * 128
    # embed 12*70*128 = 107,520; per layer: QKV 589,824, scores 18,432, weighted sum
    # 18,432, out 196,608, FF 3,145,728 -> 3,969,024 x 5 = 19,845,120; decoder 3,072.
    assert teacher_actor_macs(REFERENCE, 12) == 19_955_712
    # headline ratio: about 160x fewer MACs than the teacher at 12 limbs
    assert 160 < teacher_actor_macs(REFERENCE, 12) / baked_macs(12, 24) < 162


def test_small_teacher_sizes() -> None:
    small = TeacherConfig.small()
    assert teacher_actor_params(small) == 72_514
    # embed 12*70*64 = 53,760; per layer: QKV 147,456, scores + weighted sum 18,432,
    # out 49,152, FF 196,608 -> 411,648 x 2 = 823,296; decoder 1,536.
    assert teacher_actor_macs(small, 12) == 878_592
    assert count_params(TeacherPolicy(small).critic) == 11_297


@pytest.mark.parametrize(
    "config",
    [REFERENCE, TeacherConfig.small(), TeacherConfig(pos_embedding=False, n_layers=1)],
)
def test_teacher_analytic_params_match_module(config: TeacherConfig) -> None:
    teacher = TeacherPolicy(config)
    assert count_params(teacher.actor) == teacher_actor_params(config)
    assert count_params(teacher) == count_params(teacher.actor) + count_params(teacher.critic)


@pytest.mark.parametrize(
    "config",
    [
        HyperNetConfig.reference(),
        HyperNetConfig.small(),
        HyperNetConfig.tiny(),
        HyperNetConfig(context_d=16, context_ff=8, hidden=8, n_hidden_layers=0),
        HyperNetConfig(context_d=16, context_ff=8, hidden=8, n_hidden_layers=3),
    ],
)
def test_hypernet_analytic_params_match_module(config: HyperNetConfig) -> None:
    assert hypernet_params(config) == count_params(HyperNetPolicy(config))


def test_hypernet_reference_and_small_sizes() -> None:
    assert hypernet_params(HyperNetConfig.reference()) == 9_566_850
    assert hypernet_params(HyperNetConfig.small()) == 1_350_978


def test_fvcore_agrees_with_analytic_for_teacher_export(random_cases: list[RobotCase]) -> None:
    teacher = TeacherPolicy(REFERENCE)
    for case in (random_cases[0], random_cases[-1]):
        n = case.robot.n_limbs
        wrapper = teacher.for_robot(case.robot, case.context)
        measured = fvcore_macs(wrapper, wrapper.dummy_input())
        analytic = teacher_actor_macs(REFERENCE, n)
        assert abs(measured - analytic) <= 0.01 * analytic
        assert measured == analytic  # only matrix products are counted on both sides
        assert count_params(wrapper) == teacher_actor_params(REFERENCE, n)


def test_fvcore_agrees_with_analytic_for_baked_mlp() -> None:
    mlp = BakedMLP(12 * 17, 24, hidden=256, n_hidden_layers=1)
    assert fvcore_macs(mlp, mlp.dummy_input()) == baked_macs(12, 24) == 123_904


def test_fvcore_sees_torch_attention_projections_and_restores_fastpath() -> None:
    layer = torch.nn.TransformerEncoderLayer(128, 2, 1024, dropout=0.0, batch_first=True)
    n = 12
    expected = n * 128 * 384 + 2 * n * n * 128 + n * 128 * 128 + 2 * n * 128 * 1024
    previous = torch.backends.mha.get_fastpath_enabled()
    try:
        for state in (True, False):
            torch.backends.mha.set_fastpath_enabled(state)
            assert fvcore_macs(layer, torch.zeros(1, n, 128)) == expected
            assert torch.backends.mha.get_fastpath_enabled() is state
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
    assert layer.training  # mode restored after counting in eval mode


def test_count_params_trainable_only() -> None:
    mlp = BakedMLP(4, 2, hidden=3, n_hidden_layers=0)
    mlp.layers[0].requires_grad_(False)
    assert count_params(mlp) == 4 * 3 + 3 + 3 * 2 + 2
    assert count_params(mlp, trainable_only=True) == 3 * 2 + 2
