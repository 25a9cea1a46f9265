"""A cache of parsed input files (workloads, hardware profiles), so that a command does not re-validate the
same YAML on every run.

The entry of a file is keyed by the SHA-256 of its bytes and of the source of the modules that parse it
(``PARSERS``), the e2sim, Python and pydantic versions: editing the file or the parsing code makes a new key,
never a stale hit. Entries are pickles written atomically into the user cache folder
(``$E2SIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/e2sim``, else ``~/.cache/e2sim``); an unreadable, corrupt or
mistyped entry is rebuilt and overwritten, and at most ``MAX_ENTRIES`` entries are kept.
``E2SIM_NO_CACHE=1`` turns the cache off. The cache is only an optimisation: when its folder cannot be
written the result is simply not stored.

The entries are pickles, so the cache folder must be writable only by its user (as ``~/.cache`` is).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Entries kept: a new one (a new file, or new parsing code) evicts the least recently written beyond this.
MAX_ENTRIES = 128
# Modules whose code turns a workload or profile file into a Workload or a HardwareProfile.
PARSERS = ("records.py", "workload.py", "workload_files.py", "builders.py", "config.py", "profile.py")
_stamp: str | None = None


def cache_dir() -> Path | None:
    if os.environ.get("E2SIM_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("E2SIM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "e2sim"


def _code_stamp() -> str:
    global _stamp
    if _stamp is None:
        from importlib.util import find_spec

        from . import __version__

        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for name in PARSERS:
            h.update((here / name).read_bytes())
        # pydantic's version by its version file, not by importing it (the point of a cache hit is to skip
        # pydantic: e2sim.records).
        h.update(Path(find_spec("pydantic").origin).with_name("version.py").read_bytes())
        h.update(f"{__version__}|{sys.version}".encode())
        _stamp = h.hexdigest()
    return _stamp


def cache_key(path: Path) -> str:
    h = hashlib.sha256(_code_stamp().encode())
    h.update(path.read_bytes())
    return h.hexdigest()[:32]


def cached_parse(path: str | Path, build: Callable[[], T]) -> T:
    """``build()`` (which parses ``path``), or its cached result for the same file content and parsing code.
    Errors raised by ``build`` propagate and nothing is stored."""
    folder = cache_dir()
    if folder is None:
        return build()
    try:
        entry = folder / f"{cache_key(Path(path))}.pickle"
    except OSError:
        return build()  # the file's error (unreadable, missing) comes from build, which names it
    try:
        with open(entry, "rb") as f:
            kind, value = pickle.load(f)
        if type(value).__module__ + "." + type(value).__qualname__ == kind:
            return value
    except Exception:  # noqa: BLE001 - a missing, corrupt or foreign entry is rebuilt, never trusted
        pass
    value = build()
    kind = type(value).__module__ + "." + type(value).__qualname__
    try:
        from .output import write_atomic

        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(entry, pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL))
        _evict(folder)
    except (OSError, pickle.PicklingError):
        pass
    return value


def _evict(folder: Path) -> None:
    """Keep the MAX_ENTRIES most recently written entries (old code versions leave theirs behind)."""
    entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-MAX_ENTRIES]:
        old.unlink(missing_ok=True)
