"""Writing results: tidy tables and JSON records to stdout or files, in the formats every command offers."""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

FORMATS = ("table", "csv", "json")


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def to_json(obj: Any) -> str:
    return json.dumps(_jsonable(obj), indent=2, sort_keys=False)


def frame_to_text(df, fmt: str) -> str:
    """Render a pandas DataFrame as table, csv or json (records)."""
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return to_json(df.to_dict(orient="records")) + "\n"
    if fmt == "table":
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
            return df.to_string(index=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write a file atomically (temp file in the same folder, then rename) so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
