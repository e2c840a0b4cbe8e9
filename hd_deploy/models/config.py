"""Model configurations: the transformer teacher and the HyperDistill hypernetwork.

Both are frozen dataclasses whose defaults are the reference (paper) sizes; ``small()``
is the CPU training default and ``tiny()`` is for tests. ``to_dict()`` / ``from_dict()``
round-trip through JSON (checkpoints store the dict). Invalid values raise
:class:`~hd_deploy.errors.ConfigError` on construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from hd_deploy.errors import ConfigError
from hd_deploy.morphology.features import CONTEXT_DIM, PROPRIO_DIM
from hd_deploy.morphology.robot import MAX_LIMBS

_C = TypeVar("_C", bound="_ConfigBase")

INPUT_AGGS = ("sum", "mean")


class _ConfigBase:
    """Dict round-trip shared by the model configs."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of every field."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        """Build a config from a dict; missing keys take their defaults.

        Raises:
            ConfigError: ``data`` has keys that are not fields, or a value is invalid.
        """
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown keys {unknown}; known keys are {known}")
        return cls(**dict(data))


def _check_int(owner: str, name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} must be an int, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{owner}.{name} must be >= {minimum}, got {value}")


def _check_float(owner: str, name: str, value: object, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}.{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{owner}.{name} must be in [{low}, {high}], got {value}")


def _check_bool(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} must be a bool, got {value!r}")


def _check_heads(owner: str, d_name: str, d: int, h_name: str, h: int) -> None:
    if d % h != 0:
        raise ConfigError(f"{owner}.{d_name} ({d}) must be divisible by {h_name} ({h})")


@dataclass(frozen=True)
class TeacherConfig(_ConfigBase):
    """MetaMorph-style transformer policy; defaults are the reference size (DESIGN.md).

    The actor embeds each limb's token (normalised proprio + context), runs pre-LN
    encoder layers over the limbs and decodes two actions per limb. The value network is
    a separate transformer whose per-limb outputs are averaged over the real limbs.
    """

    # inputs
    proprio_dim: int = PROPRIO_DIM
    context_dim: int = CONTEXT_DIM
    max_limbs: int = MAX_LIMBS
    # actor transformer
    d_model: int = 128
    n_layers: int = 5
    n_heads: int = 2
    ff_dim: int = 1024
    dropout: float = 0.0
    pos_embedding: bool = True
    # policy
    action_std: float = 0.9
    # value transformer
    value_d_model: int = 128
    value_layers: int = 5
    value_heads: int = 2
    value_ff: int = 1024
    # observation normalisation
    obs_clip: float = 10.0

    def __post_init__(self) -> None:
        own = type(self).__name__
        for name in ("proprio_dim", "context_dim", "max_limbs", "d_model", "n_heads", "ff_dim"):
            _check_int(own, name, getattr(self, name), 1)
        for name in ("value_d_model", "value_heads", "value_ff"):
            _check_int(own, name, getattr(self, name), 1)
        _check_int(own, "n_layers", self.n_layers, 0)
        _check_int(own, "value_layers", self.value_layers, 0)
        _check_heads(own, "d_model", self.d_model, "n_heads", self.n_heads)
        _check_heads(own, "value_d_model", self.value_d_model, "value_heads", self.value_heads)
        _check_float(own, "dropout", self.dropout, low=0.0, high=0.99)
        _check_bool(own, "pos_embedding", self.pos_embedding)
        _check_float(own, "action_std", self.action_std, low=1e-6, high=1e6)
        _check_float(own, "obs_clip", self.obs_clip, low=1e-6, high=1e9)

    @property
    def token_dim(self) -> int:
        """Per-limb token width: proprio + context (70)."""
        return self.proprio_dim + self.context_dim

    @classmethod
    def reference(cls) -> TeacherConfig:
        """Reference size: d 128, 5 layers, 2 heads, ff 1024 (about 1.66M actor params)."""
        return cls()

    @classmethod
    def small(cls) -> TeacherConfig:
        """CPU training default: d 64, 2 layers, ff 128; value net d 32, 1 layer, ff 64."""
        return cls(
            d_model=64,
            n_layers=2,
            n_heads=2,
            ff_dim=128,
            value_d_model=32,
            value_layers=1,
            value_heads=2,
            value_ff=64,
        )

    @classmethod
    def tiny(cls) -> TeacherConfig:
        """Test size: d 16, 1 layer, ff 32; value net d 8, 1 layer, ff 16."""
        return cls(
            d_model=16,
            n_layers=1,
            n_heads=2,
            ff_dim=32,
            value_d_model=8,
            value_layers=1,
            value_heads=2,
            value_ff=16,
        )


@dataclass(frozen=True)
class HyperNetConfig(_ConfigBase):
    """HyperDistill hypernetwork; defaults are the reference size (DESIGN.md).

    Context encoders (one each for the input, hidden and output layers) embed every limb's
    morphology context; linear heads turn embeddings into the weights of a base MLP
    ``n_limbs*17 -> hidden -> (hidden x n_hidden_layers) -> n_limbs*2``.
    """

    # inputs
    proprio_dim: int = PROPRIO_DIM
    context_dim: int = CONTEXT_DIM
    max_limbs: int = MAX_LIMBS
    # context encoders
    context_d: int = 128
    context_heads: int = 2
    context_ff: int = 256
    context_dropout: float = 0.1
    # generated base MLP
    hidden: int = 256
    n_hidden_layers: int = 1
    input_agg: str = "sum"
    # observation normalisation
    obs_clip: float = 10.0

    def __post_init__(self) -> None:
        own = type(self).__name__
        for name in (
            "proprio_dim",
            "context_dim",
            "max_limbs",
            "context_d",
            "context_heads",
            "context_ff",
            "hidden",
        ):
            _check_int(own, name, getattr(self, name), 1)
        _check_int(own, "n_hidden_layers", self.n_hidden_layers, 0)
        _check_heads(own, "context_d", self.context_d, "context_heads", self.context_heads)
        _check_float(own, "context_dropout", self.context_dropout, low=0.0, high=0.99)
        if self.input_agg not in INPUT_AGGS:
            raise ConfigError(
                f"{own}.input_agg must be one of {list(INPUT_AGGS)}, got {self.input_agg!r}"
            )
        _check_float(own, "obs_clip", self.obs_clip, low=1e-6, high=1e9)

    @classmethod
    def reference(cls) -> HyperNetConfig:
        """Reference size: context d 128 (2 heads, ff 256), base MLP hidden 256 x 1."""
        return cls()

    @classmethod
    def small(cls) -> HyperNetConfig:
        """CPU training default: context d 64 (ff 128), base MLP hidden 128 x 1."""
        return cls(context_d=64, context_heads=2, context_ff=128, hidden=128, n_hidden_layers=1)

    @classmethod
    def tiny(cls) -> HyperNetConfig:
        """Test size: context d 16 (ff 32), base MLP hidden 16 x 1."""
        return cls(context_d=16, context_heads=2, context_ff=32, hidden=16, n_hidden_layers=1)
