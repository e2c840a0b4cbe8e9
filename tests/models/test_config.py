"""Model configs: sizes, validation messages, dict round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hd_deploy.models import HyperNetConfig, TeacherConfig


@pytest.mark.parametrize("cls", [TeacherConfig, HyperNetConfig])
def test_presets_round_trip_through_json(cls: type) -> None:
    for cfg in (cls.reference(), cls.small(), cls.tiny()):
        assert cls.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_reference_is_the_default_and_small_sizes() -> None:
    assert TeacherConfig.reference() == TeacherConfig()
    small = TeacherConfig.small()
    assert (small.d_model, small.n_layers, small.n_heads, small.ff_dim) == (64, 2, 2, 128)
    assert (small.value_d_model, small.value_layers, small.value_ff) == (32, 1, 64)
    assert small.token_dim == 70
    hn = HyperNetConfig.small()
    assert (hn.context_d, hn.context_ff, hn.hidden, hn.n_hidden_layers) == (64, 128, 128, 1)


def test_configs_are_frozen() -> None:
    cfg = TeacherConfig.tiny()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.d_model = 32  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (TeacherConfig, {"d_model": 30, "n_heads": 4}, "TeacherConfig.d_model (30) must be "
         "divisible by n_heads (4)"),
        (TeacherConfig, {"value_d_model": 9}, "TeacherConfig.value_d_model (9) must be "
         "divisible by value_heads (2)"),
        (TeacherConfig, {"n_layers": -1}, "TeacherConfig.n_layers must be >= 0, got -1"),
        (TeacherConfig, {"ff_dim": 1.5}, "TeacherConfig.ff_dim must be an int, got 1.5"),
        (TeacherConfig, {"pos_embedding": 1}, "TeacherConfig.pos_embedding must be a bool"),
        (TeacherConfig, {"action_std": 0.0}, "TeacherConfig.action_std must be in"),
        (TeacherConfig, {"dropout": 1.0}, "TeacherConfig.dropout must be in [0.0, 0.99]"),
        (HyperNetConfig, {"context_d": 15}, "HyperNetConfig.context_d (15) must be divisible "
         "by context_heads (2)"),
        (HyperNetConfig, {"input_agg": "max"}, "HyperNetConfig.input_agg must be one of "
         "['sum', 'mean'], got 'max'"),
        (HyperNetConfig, {"hidden": 0}, "HyperNetConfig.hidden must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_validation_messages(cls: type, changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        cls(**changes)
    assert str(info.value).startswith(message)


def test_from_dict_rejects_unknown_keys_and_fills_defaults() -> None:
    with pytest.raises(ValueError, match=r"TeacherConfig: unknown keys \['d_modle'\]"):
        TeacherConfig.from_dict({"d_modle": 64})
    assert HyperNetConfig.from_dict({"hidden": 32}) == HyperNetConfig(hidden=32)


def test_from_dict_does_not_mutate_its_input() -> None:
    data = TeacherConfig.small().to_dict()
    before = dict(data)
    TeacherConfig.from_dict(data)
    assert data == before
