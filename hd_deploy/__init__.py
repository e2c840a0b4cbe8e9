"""hd_deploy: bake universal robot policies into tiny per-robot controllers."""

from __future__ import annotations

__version__ = "0.1.0"
