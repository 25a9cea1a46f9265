"""Start-up time of the CLI against a bare interpreter, measured side by side (issue 13, item 7).

    python benchmarks/bench_startup.py [--repeats N]

Times three processes round-robin (one of each per round, so all see the same machine speed): the peer
``python -c pass``, ``e2sim --help`` and ``e2sim estimate --workload resnet110_cifar100 --format json``
(both as ``python -m e2sim``, with the parse cache warm, as every run after the first). Prints the medians
and the ratios to the peer, of wall time and of CPU time (user + system of the child: less sensitive to
other jobs on a shared machine than wall time). Targets: --help at most 5x and estimate at most 8x the peer (0.2 s and 0.35 s
on a quiet 2-core machine).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_medians  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"help": 5.0, "estimate": 8.0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "help": [sys.executable, "-m", "e2sim", "--help"],
        "estimate": [sys.executable, "-m", "e2sim", "estimate", "--workload", "resnet110_cifar100",
                     "--format", "json"],
    }

    cpu: dict[str, list[float]] = {k: [] for k in cmds}

    def runner(name, cmd):
        def run():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return run

    # The untimed warm-up call of each also fills the parse cache (the first run of a new file pays it).
    med = interleaved_medians({k: runner(k, c) for k, c in cmds.items()}, args.repeats)
    cpu_med = {k: statistics.median(v[1:]) for k, v in cpu.items()}  # [0]: the warm-up call
    peer = med["python -c pass"]
    print(f"median of {args.repeats} interleaved runs; 1-min load average {os.getloadavg()[0]:.2f}")
    print("| command | wall median (s) | wall ratio to `python -c pass` | CPU median (s) | CPU ratio | target |")
    print("|---|---|---|---|---|---|")
    print(f"| `python -c pass` | {peer:.3f} | 1.0x | {cpu_med['python -c pass']:.3f} | 1.0x | - |")
    ok = True
    for k in ("help", "estimate"):
        ratio = med[k] / peer
        ok &= ratio <= TARGETS[k]
        cpu_ratio = cpu_med[k] / cpu_med["python -c pass"]
        print(f"| `e2sim {' '.join(cmds[k][3:])}` | {med[k]:.3f} | {ratio:.1f}x | {cpu_med[k]:.3f} | "
              f"{cpu_ratio:.1f}x | <= {TARGETS[k]:g}x |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
