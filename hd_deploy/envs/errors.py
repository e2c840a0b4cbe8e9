"""Errors of the environment layer (no heavy imports, so the CLI can name them cheaply)."""

from __future__ import annotations


class WorkerError(RuntimeError):
    """An environment worker crashed, raised or stopped answering (one-line message)."""
