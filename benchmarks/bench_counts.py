"""Counting speed: e2sim.count (closed forms, numpy) vs torch's FlopCounterMode (runs the model) on the
same network and batch, for the per-pass MACs of one training iteration. Peer: torch FlopCounterMode."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

import e2sim
from e2sim.train.models import build_model
from timing import median_time

torch.set_num_threads(2)


def main():
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


if __name__ == "__main__":
    main()
