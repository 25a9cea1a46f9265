"""The ``curves.csv`` of a run: one row per scheduled iteration."""
from __future__ import annotations

import io
from pathlib import Path

from ..errors import E2simError
from ..output import write_atomic

# smd_dropped: 1 where SMD dropped the iteration's mini-batch (no forward, backward or update: loss and
# train accuracy are empty there). slu_executed_fraction: fraction of (sample, gated block) pairs executed.
# psg_fallback_fraction: fraction of all PSG convs' weight-gradient entries that fell back to full precision.
# lr: of the parameters with ordinary gradients; psg_lr: of the sign-updated conv weights.
CURVE_COLUMNS = ("iteration", "smd_dropped", "loss", "train_accuracy", "test_accuracy", "lr", "psg_lr",
                 "slu_executed_fraction", "psg_fallback_fraction", "cumulative_energy_j")
CURVES_FILE = "curves.csv"
CONFIG_FILE = "config.json"  # the run's settings record (written by train.loop)


def write_curves(rows: list[dict], path: Path) -> None:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(rows, columns=list(CURVE_COLUMNS)).to_csv(buf, index=False)
    write_atomic(path, buf.getvalue())


def read_curves(path: str | Path):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise E2simError(f"{path}: no such file")
    try:
        df = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise E2simError(f"{path}: not a curves CSV ({exc})") from None
    if tuple(df.columns) != CURVE_COLUMNS:
        raise E2simError(f"{path}: columns {list(df.columns)} are not those of a curves file "
                         f"({', '.join(CURVE_COLUMNS)})")
    return df


def read_run_curves(run_dir: str | Path):
    return read_curves(Path(run_dir) / CURVES_FILE)


def read_run_record(run_dir: str | Path) -> dict:
    """A run's ``config.json``: its settings under ``config`` (workload, techniques, profile, ...)."""
    import json

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise E2simError(f"{path}: no such file (not a run directory written by e2sim train)")
    try:
        record = json.loads(path.read_text())
        if not isinstance(record.get("config"), dict) or "workload" not in record["config"]:
            raise ValueError("no config.workload")
    except (OSError, ValueError, AttributeError) as exc:
        raise E2simError(f"{path}: unreadable run record ({exc})") from None
    return record
