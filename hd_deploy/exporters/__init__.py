"""Exporters: per-robot controllers (baked MLP or teacher) to verified ONNX files."""

from __future__ import annotations

from hd_deploy.exporters.onnx import TOLERANCE, ExportError, ExportResult, export_controller
from hd_deploy.exporters.robots import export_robots, output_name, shipped_checkpoint

__all__ = [
    "TOLERANCE",
    "ExportError",
    "ExportResult",
    "export_controller",
    "export_robots",
    "output_name",
    "shipped_checkpoint",
]
