"""Training-step cost on CPU: a PSG step of ResNet-20 at batch 128 against a plain fp32 step, measured side
by side (interleaved, median of several), and SMD's wall time per scheduled iteration through the real
training loop (``e2sim.train.loop.train`` on synthetic data) at drop probability 0 and 0.5.

    python benchmarks/bench_train_step.py [--threads 2] [--repeats 7] [--batch 128] [--smd-iterations 24]

Wall time is the figure; the process CPU time (all threads, spin-waits included) is printed beside it
because on a shared machine it moves less with the load.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def step_times(batch: int, repeats: int, exact: bool) -> dict[str, list[float]]:
    import torch
    import torch.nn.functional as F

    from e2sim.train.models import build_model
    from e2sim.train.psg import convert_to_psg

    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    models = {"fp32": build_model("resnet20")}
    psg = build_model("resnet20")
    convert_to_psg(psg, threshold=5e-5, exact=exact)
    models["psg_exact" if exact else "psg"] = psg
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    for r in range(repeats + 1):
        for k, m in models.items():  # interleaved: both see the same machine load
            t, c = time.perf_counter(), time.process_time()
            opts[k].zero_grad(set_to_none=True)
            F.cross_entropy(m(x), y).backward()
            opts[k].step()
            if r:  # the first round warms up (numba compilation/cache load, allocator)
                times[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - c)
    return times, cpu


def smd_times(iterations: int, batch: int, threads: int) -> dict[float, tuple[float, int]]:
    from e2sim.train.loop import TrainConfig, train

    out = {}
    for p in (0.0, 0.5):
        with tempfile.TemporaryDirectory() as d:
            cfg = TrainConfig(workload="resnet20_cifar10", data="synthetic", iterations=iterations,
                              batch_size=batch, smd=p, eval_every=10**9, seed=0, threads=threads)
            t = time.perf_counter()
            rows = train(cfg, Path(d) / "run", log=lambda _m: None)
            out[p] = ((time.perf_counter() - t) / iterations, sum(1 - r["smd_dropped"] for r in rows))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--smd-iterations", type=int, default=24, help="0 skips the SMD measurement")
    ap.add_argument("--exact", action="store_true", help="also time the exact integer PSG kernel")
    a = ap.parse_args()
    import numba
    import torch

    numba.set_num_threads(a.threads)  # first: launching numba's pool resets the OpenMP thread count torch reads
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, ResNet-20, batch {a.batch}")
    for exact in ([False, True] if a.exact else [False]):
        t, c = step_times(a.batch, a.repeats, exact)
        med = {k: statistics.median(v) for k, v in t.items()}
        cmed = {k: statistics.median(v) for k, v in c.items()}
        name = "psg_exact" if exact else "psg"
        print(f"step median of {a.repeats}: fp32 {med['fp32']:.3f} s, {name} {med[name]:.3f} s, "
              f"ratio {name}/fp32 = {med[name] / med['fp32']:.2f}; process CPU time (all threads): fp32 "
              f"{cmed['fp32']:.3f} s, {name} {cmed[name]:.3f} s, ratio {cmed[name] / cmed['fp32']:.2f}")
    if a.smd_iterations < 1:
        return
    s = smd_times(a.smd_iterations, a.batch, a.threads)
    (t0, e0), (t5, e5) = s[0.0], s[0.5]
    print(f"SMD through the training loop, {a.smd_iterations} scheduled iterations: p=0: {t0:.3f} s/iteration "
          f"({e0} executed), p=0.5: {t5:.3f} s/iteration ({e5} executed); ratio {t5 / t0:.2f} "
          f"(executed fraction {e5 / e0:.2f})")


if __name__ == "__main__":
    main()
