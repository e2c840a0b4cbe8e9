"""Fixtures of the deploy test kit (see deploy_kit.py)."""

from __future__ import annotations

from .deploy_kit import kit, student, student_dynamic, teacher  # noqa: F401
