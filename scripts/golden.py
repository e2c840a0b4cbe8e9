"""Regenerate tests/golden/shipped.json after replacing the shipped checkpoints.

python scripts/golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

from hd_deploy.train.shipped import golden_outputs, shipped

OUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "shipped.json"

if __name__ == "__main__":
    OUT.write_text(json.dumps(golden_outputs(shipped("teacher"), shipped("student")), indent=1))
    print(f"wrote {OUT}")
