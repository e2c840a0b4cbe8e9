"""Benchmarks: teacher against baked student in size, compute, latency, speed and return.

``run_benchmark`` (what ``hd-bench`` calls) writes ``report.json`` (see
:data:`REPORT_SCHEMA`), ``report.md`` and PNG plots.
"""

from __future__ import annotations

from hd_deploy.bench.profile import MACS_TOLERANCE, macs_check
from hd_deploy.bench.run import run_benchmark
from hd_deploy.bench.schema import CONVENTION, REPORT_SCHEMA, SCHEMA_VERSION

__all__ = [
    "CONVENTION",
    "MACS_TOLERANCE",
    "REPORT_SCHEMA",
    "SCHEMA_VERSION",
    "macs_check",
    "run_benchmark",
]
