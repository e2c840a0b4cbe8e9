"""Fixtures of the deploy test kit (tests/exporters/deploy_kit.py)."""

from __future__ import annotations

from exporters.deploy_kit import kit, student, student_dynamic, teacher  # noqa: F401
