"""Counting speed: e2sim.count (closed forms, numpy) vs torch's FlopCounterMode (runs the model) on the
same network and batch, for the per-pass MACs of one training iteration. Peer: torch FlopCounterMode.

Second part: a torchvision-style ResNet-50 at 224x224 (the definition in tests/test_from_torch.py, which
checks it against FlopCounterMode pass by pass): ``workload_from_torch`` (fx trace + shape propagation on
meta tensors) plus ``count``, first call in a fresh process and warm; and ``count`` against FlopCounterMode
on the same model, timed round-robin.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import e2sim
from e2sim.train.models import build_model
from timing import interleaved_medians, median_time

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(2)

FIRST_CALL = """
import sys, time
sys.path.insert(0, {tests!r})
import torch, e2sim
from test_from_torch import Bottleneck, ResNet
m = ResNet(Bottleneck, (3, 4, 6, 3), width=64, classes=1000)
t0, c0 = time.perf_counter(), time.process_time()
w = e2sim.workload_from_torch(m, (3, 224, 224), batch_size=32)
e2sim.count(w)
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def cifar_rows():
    print(f"{'workload':22s} {'batch':>5s} {'e2sim_count_s':>14s} {'flopcounter_s':>14s} {'ratio':>8s} {'macs_equal':>10s}")
    for name, model in (("resnet20_cifar10", "resnet20"), ("resnet110_cifar100", "resnet110")):
        w = e2sim.load_workload(name)
        batch = 16
        module = build_model(model, w.dataset.classes)
        x = torch.randn(batch, 3, 32, 32)

        def oracle():
            with FlopCounterMode(display=False) as fc:
                module(x).sum().backward()
            return fc.get_total_flops() // 2

        t_e2 = median_time(lambda: e2sim.count(w, batch_size=batch), 7)
        t_fc = median_time(oracle, 3)
        c = e2sim.count(w, batch_size=batch)
        # x needs no gradient (as in training), so the oracle has no dX for the first conv, like e2sim.
        equal = int(c.macs.sum()) == oracle()
        print(f"{name:22s} {batch:5d} {t_e2:14.5f} {t_fc:14.5f} {t_fc / t_e2:8.0f}x {str(equal):>10s}")


def resnet50_rows(batch: int = 2):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_from_torch import Bottleneck, ResNet

    firsts = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FIRST_CALL.format(tests=str(ROOT / "tests"))], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout.split()
        firsts.append((float(out[0]), float(out[1])))
    firsts.sort()
    module = ResNet(Bottleneck, (3, 4, 6, 3), width=64, classes=1000)
    x = torch.randn(batch, 3, 224, 224)

    def import_and_count():
        return e2sim.count(e2sim.workload_from_torch(module, (3, 224, 224), batch_size=batch))

    c = import_and_count()
    w = e2sim.workload_from_torch(module, (3, 224, 224), batch_size=batch)

    def oracle():
        with FlopCounterMode(display=False) as fc:
            module(x).sum().backward()
        return fc.get_total_flops() // 2

    c0 = time.process_time()
    t_import = median_time(import_and_count, 5)
    cpu_import = (time.process_time() - c0) / 5
    med = interleaved_medians({"count": lambda: e2sim.count(w), "flopcounter": oracle}, 3)
    # torch counts a grouped conv's weight gradient `groups` times; ResNet-50 has no grouped conv.
    equal = int(c.macs.sum()) == oracle()
    print(f"\nResNet-50 (torchvision-style) at 224x224, {len(w.layers)} layers, batch {batch}")
    print(f"import + count, first call in a fresh process (median of 3): {firsts[1][0]:.3f} s wall, "
          f"{firsts[1][1]:.3f} s CPU")
    print(f"import + count, warm (median of 5): {t_import:.3f} s wall, {cpu_import:.3f} s CPU per call")
    print(f"count alone: {med['count']:.5f} s; FlopCounterMode fwd+bwd: {med['flopcounter']:.3f} s; "
          f"ratio {med['flopcounter'] / med['count']:.0f}x; MACs equal: {equal}")


def main():
    cifar_rows()
    resnet50_rows()


if __name__ == "__main__":
    main()
