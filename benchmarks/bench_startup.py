"""Start-up time of the CLI against a bare interpreter, measured side by side (issue 13, item 7).

    python benchmarks/bench_startup.py [--repeats N]

Times four processes round-robin (one of each per round, so all see the same machine speed): the peer
``python -c pass``; the third-party imports the estimate needs (numpy and click: the floor of any e2sim
command that computes; pydantic only validates files, and a cached input is not validated again);
``e2sim --help``; ``e2sim estimate --workload resnet110_cifar100 --format json``. Both e2sim commands run
as ``python -m e2sim``, with the parse cache warm (as every run after the first) and Python's bytecode cache
allowed (PYTHONDONTWRITEBYTECODE removed from the environment: an installed package has its .pyc files). Prints the medians and the ratios to the peer, of wall time and of CPU time (user + system of the
child: less sensitive than wall time to other jobs on a shared machine). Targets: --help at most 5x and
estimate at most 8x the peer (0.2 s and 0.35 s on a quiet 2-core machine).
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
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        # What the estimate cannot avoid: its third-party imports alone (numpy for the arrays, click for the
        # CLI).
        "imports": [sys.executable, "-c", "import numpy, click"],
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
    r_imp = med["imports"] / peer
    print(f"| `python -c \"import numpy, click\"` | {med['imports']:.3f} | "
          f"{r_imp:.1f}x | {cpu_med['imports']:.3f} | {cpu_med['imports'] / cpu_med['python -c pass']:.1f}x | - |")
    for k in ("help", "estimate"):
        ratio = med[k] / peer
        ok &= ratio <= TARGETS[k]
        cpu_ratio = cpu_med[k] / cpu_med["python -c pass"]
        print(f"| `e2sim {' '.join(cmds[k][3:])}` | {med[k]:.3f} | {ratio:.1f}x | {cpu_med[k]:.3f} | "
              f"{cpu_ratio:.1f}x | <= {TARGETS[k]:g}x |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
