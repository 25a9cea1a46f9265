"""Progress bars on stderr for long work (train, psg-accuracy, sweep, study).

One place decides whether a bar is drawn: only when stderr is a terminal and the user did not ask for
``--quiet``. Machine output stays on stdout, so a bar never mixes into piped results. tqdm is imported
lazily: the estimate path never pays for it.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def enabled(quiet: bool = False) -> bool:
    """Whether a progress bar should be drawn: not quiet and stderr is an interactive terminal."""
    if quiet:
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class _Silent:
    """Stands in for a tqdm bar when none is drawn: same calls, no output."""

    def __init__(self, iterable: Iterable | None = None, **_: Any) -> None:
        self._iterable = iterable
        self.n = 0

    def __iter__(self):
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, *_: Any, **__: Any) -> None:
        pass

    def set_description_str(self, *_: Any, **__: Any) -> None:
        pass

    def write(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
        quiet: bool = False, initial: float = 0):
    """A tqdm bar on stderr with elapsed and remaining time, or a silent stand-in (see :func:`enabled`).

    ``initial`` lets a resumed run start its bar at the work already done, so the remaining time is honest.
    """
    if not enabled(quiet):
        return _Silent(iterable)
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr,
                dynamic_ncols=True, leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")
