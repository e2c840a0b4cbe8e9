"""CSV run log: resumable appends, truncation, last value."""

from __future__ import annotations

import math
from pathlib import Path

from hd_deploy.train.runlog import CsvLog


def test_csv_log_last_and_truncate(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "progress.csv", ("epoch", "loss"))
    assert math.isnan(log.last("loss"))
    for epoch, loss in ((1, 0.5), (2, 0.25), (3, 0.125)):
        log.append({"epoch": epoch, "loss": loss})
    assert log.last("loss") == 0.125
    log.truncate_after("epoch", 2)  # an interrupted stretch past the checkpoint at epoch 2
    again = CsvLog(tmp_path / "progress.csv", ("epoch", "loss"))  # reopening keeps the rows
    assert [r["epoch"] for r in again.read()] == ["1", "2"]
    assert again.last("loss") == 0.25
