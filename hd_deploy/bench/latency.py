"""Interleaved latency timing: every backend sees the same machine noise.

Each callable is warmed up, then timed call by call (``perf_counter_ns``) in rounds; in
every round each backend runs a block of calls and the order of the backends rotates from
round to round, so a burst of background load lands on all of them alike. The garbage
collector is off while timing.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from hd_deploy.errors import ConfigError

#: Timed calls per backend in the default run (``rounds * calls_per_round``).
DEFAULT_CALLS = 2000
DEFAULT_ROUNDS = 20
DEFAULT_WARMUP = 100


@dataclass(frozen=True)
class TimingPlan:
    """How many calls to make per backend.

    Attributes:
        warmup: Untimed calls per backend before timing starts.
        rounds: Rounds; every backend runs one block per round.
        calls_per_round: Timed calls per backend per round.
    """

    warmup: int = DEFAULT_WARMUP
    rounds: int = DEFAULT_ROUNDS
    calls_per_round: int = DEFAULT_CALLS // DEFAULT_ROUNDS

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}")
        if self.rounds < 1 or self.calls_per_round < 1:
            raise ConfigError(
                f"rounds and calls_per_round must be >= 1, got {self.rounds} and "
                f"{self.calls_per_round}"
            )

    @property
    def calls(self) -> int:
        """Timed calls per backend."""
        return self.rounds * self.calls_per_round

    @classmethod
    def for_calls(cls, calls: int, *, warmup: int | None = None) -> TimingPlan:
        """About ``calls`` timed calls per backend in up to 20 rounds (at least 1 per round).

        Raises:
            ConfigError: ``calls`` < 1.
        """
        if calls < 1:
            raise ConfigError(f"calls must be >= 1, got {calls}")
        rounds = min(DEFAULT_ROUNDS, calls)
        per_round = -(-calls // rounds)
        w = min(DEFAULT_WARMUP, max(1, calls // 10)) if warmup is None else warmup
        return cls(warmup=w, rounds=rounds, calls_per_round=per_round)

    def to_dict(self) -> dict[str, int]:
        return {
            "warmup": self.warmup,
            "rounds": self.rounds,
            "calls_per_round": self.calls_per_round,
            "calls": self.calls,
        }


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency of one backend, microseconds."""

    p50_us: float
    p99_us: float
    mean_us: float
    min_us: float
    n: int

    @classmethod
    def from_ns(cls, samples_ns: np.ndarray) -> LatencyStats:
        us = np.asarray(samples_ns, dtype=np.float64) / 1e3
        if us.size == 0:
            raise ValueError("no timing samples")
        return cls(
            p50_us=float(np.percentile(us, 50)),
            p99_us=float(np.percentile(us, 99)),
            mean_us=float(us.mean()),
            min_us=float(us.min()),
            n=int(us.size),
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "p50": self.p50_us,
            "p99": self.p99_us,
            "mean": self.mean_us,
            "min": self.min_us,
            "n": self.n,
        }


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the garbage collector inside the block (restored afterwards)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    plan: TimingPlan = TimingPlan(),
    *,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, LatencyStats]:
    """Time zero-argument callables side by side.

    Args:
        fns: Backend name -> one call (e.g. ``lambda: controller.act(obs)``).
        plan: Warm-up, rounds and calls per round.
        on_round: Called with the finished round number (1-based), e.g. to advance a bar.

    Returns:
        Backend name -> latency statistics over ``plan.calls`` calls.
    """
    names = list(fns)
    if not names:
        return {}
    for name in names:
        fn = fns[name]
        for _ in range(plan.warmup):
            fn()
    samples = {name: np.empty(plan.calls, dtype=np.int64) for name in names}
    clock = time.perf_counter_ns
    with gc_paused():
        for r in range(plan.rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                fn, buf = fns[name], samples[name]
                base = r * plan.calls_per_round
                for i in range(base, base + plan.calls_per_round):
                    t0 = clock()
                    fn()
                    buf[i] = clock() - t0
            if on_round is not None:
                on_round(r + 1)
    return {name: LatencyStats.from_ns(samples[name]) for name in names}


def time_repeated(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> LatencyStats:
    """Median-style statistics of a slower call (e.g. baking), timed ``repeats`` times.

    Raises:
        ConfigError: ``repeats`` < 1.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    out = np.empty(repeats, dtype=np.int64)
    with gc_paused():
        for i in range(repeats):
            t0 = time.perf_counter_ns()
            fn()
            out[i] = time.perf_counter_ns() - t0
    return LatencyStats.from_ns(out)
