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


def interleaved_medians(fns: dict, repeats: int, every: dict | None = None) -> dict:
    """Median wall seconds per callable, timed round-robin (one call of each per round, after one untimed
    warm-up call each) so that all of them see the same machine speed: on a shared machine the speed drifts
    by up to 2x within a minute, which biases ratios of back-to-back medians. ``every[name] = k`` times that
    callable only every k-th round (slow peers)."""
    return {name: wall for name, (wall, _) in interleaved_wall_cpu(fns, repeats, every).items()}


def interleaved_wall_cpu(fns: dict, repeats: int, every: dict | None = None) -> dict:
    """As :func:`interleaved_medians`, with the median CPU seconds of this process (``time.process_time``,
    all threads) beside the wall seconds: ``{name: (wall, cpu)}``. On a loaded machine the CPU time moves
    far less than the wall time."""
    every = every or {}
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            if r % every.get(name, 1):
                continue
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - w0, time.process_time() - c0))
    return {name: (float(statistics.median(w for w, _ in t)), float(statistics.median(c for _, c in t)))
            for name, t in times.items()}
