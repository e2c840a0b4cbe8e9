"""The interleaved timing harness: call counts and order (no timing assertions)."""

from __future__ import annotations

import pytest

from hd_deploy.bench.latency import LatencyStats, TimingPlan, time_interleaved, time_repeated


def test_every_backend_gets_the_planned_calls() -> None:
    calls: list[str] = []
    fns = {name: (lambda n=name: calls.append(n)) for name in ("a", "b", "c")}
    plan = TimingPlan(warmup=2, rounds=3, calls_per_round=4)
    stats = time_interleaved(fns, plan)
    assert set(stats) == {"a", "b", "c"}
    for name, s in stats.items():
        assert isinstance(s, LatencyStats) and s.n == 12
        assert calls.count(name) == 2 + 12
        assert s.min_us <= s.p50_us <= s.p99_us
    # warm-up first, then blocks of 4 whose order rotates every round
    timed = calls[6:]
    blocks = [timed[i] for i in range(0, len(timed), 4)]
    assert blocks == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_rounds_report_progress() -> None:
    seen: list[int] = []
    time_interleaved({"x": lambda: None}, TimingPlan(0, 5, 1), on_round=seen.append)
    assert seen == [1, 2, 3, 4, 5]
    assert time_interleaved({}, TimingPlan()) == {}


def test_plan_for_calls() -> None:
    assert TimingPlan().calls == 2000
    plan = TimingPlan.for_calls(2000)
    assert (plan.rounds, plan.calls_per_round, plan.calls) == (20, 100, 2000)
    small = TimingPlan.for_calls(5)
    assert small.calls == 5 and small.rounds == 5 and small.warmup == 1
    assert TimingPlan.for_calls(33).calls >= 33
    assert set(plan.to_dict()) == {"warmup", "rounds", "calls_per_round", "calls"}
    with pytest.raises(ValueError, match="calls must be >= 1"):
        TimingPlan.for_calls(0)
    with pytest.raises(ValueError, match="rounds and calls_per_round"):
        TimingPlan(rounds=0)


def test_time_repeated() -> None:
    n = []
    stats = time_repeated(lambda: n.append(1), repeats=3, warmup=2)
    assert stats.n == 3 and len(n) == 5
    assert set(stats.to_dict()) == {"p50", "p99", "mean", "min", "n"}
