"""Run every benchmark script in this folder (or the ones named) and print their reports.

    python benchmarks/run.py                 # all bench_*.py
    python benchmarks/run.py counts sweep    # bench_counts.py, bench_sweep.py

Each script prints its own table (median of several runs, ratio against its named peer measured in the
same run); the results are recorded by hand in BENCHMARKS.md with the machine and date.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        wanted = {f"bench_{n}.py" if not n.startswith("bench_") else n for n in names}
        scripts = [s for s in scripts if s.name in wanted or s.stem in wanted]
        missing = wanted - {s.name for s in scripts} - {s.stem for s in scripts}
        if missing:
            print(f"no such benchmark: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    rc = 0
    for s in scripts:
        print(f"== {s.name}", flush=True)
        # The repository root first on the path, so the checkout is measured even without an install.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
        rc |= subprocess.call([sys.executable, str(s)], cwd=HERE.parent, env=env)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
