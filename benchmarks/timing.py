"""Timing helper shared by the benchmark scripts (imported as ``timing``: scripts run with this folder first
on ``sys.path``)."""
from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int, warmup: bool = False) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn``; ``warmup`` makes one untimed call first
    (compiled code, caches, allocator)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))
