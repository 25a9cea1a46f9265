"""Writing results: tidy tables and JSON records to stdout or files, in the formats every command offers."""
from __future__ import annotations

import json
import math
import os
import sys
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


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux), since setting it to
    read it races with other threads creating files."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write a file atomically (temp file in the same folder, then rename) so readers never see half a file.

    The file gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask), not the
    0600 of the temporary file."""
    import tempfile  # here, not at the top: every command imports this module (start-up time)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def new_run_dir(base: str | Path, prefix: str) -> Path:
    """A fresh folder ``base/<prefix><random>`` that no concurrent run can share, with the permissions a
    plain ``mkdir`` would give (0777 less the umask), not the 0700 of :func:`tempfile.mkdtemp`."""
    import tempfile

    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(run_dir, 0o777 & ~current_umask())
    return run_dir
