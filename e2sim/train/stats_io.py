"""A run's measured technique statistics, written in the formats ``e2sim estimate --slu-stats/--psg-stats``
reads (``e2sim.stats``): SLU skip ratio per gated block, PSG fallback fraction per conv layer."""
from __future__ import annotations

from pathlib import Path

from ..output import write_atomic
from ..stats import PsgSettings, PsgStats, SluStats, dump_stats
from ..workload import Workload

SLU_FILE = "slu_stats.yaml"
PSG_FILE = "psg_stats.yaml"


def write_stats(out: Path, workload: Workload, stats, config, batch: int) -> None:
    """``stats``: the loop's running sums. PSG fractions are written for the workload's convs, plus the SLU
    gates' convs when the run is gated (the techniques stage adds them to the workload under those names)."""
    from .psg import BITS, GRAD_MSB_BITS, MSB_BITS

    if stats.blocks and float(stats.samples) > 0:
        skip = (stats.skipped / stats.samples).tolist()
        record = SluStats(workload=workload.name, skip_ratio=dict(zip(stats.blocks, skip)), settings={
            "slu_target": config.slu_target, "slu_beta": config.slu_beta, "slu_skipped": config.slu_skipped,
            "data": config.data,
            "seed": config.seed, "samples": int(stats.samples), "batch_size": batch})
        write_atomic(out / SLU_FILE, dump_stats(record))
    steps = int(stats.psg_steps)
    if stats.psg_layers and steps > 0:
        if stats.blocks:
            from ..techniques import add_gates

            workload = add_gates(workload)
        known = workload.layer_index
        frac = (stats.fallback / steps).tolist()
        record = PsgStats(
            workload=workload.name,
            settings=PsgSettings(bits=BITS, msb_bits=MSB_BITS, grad_msb_bits=GRAD_MSB_BITS,
                                 threshold=config.psg_threshold, steps=steps, sample_every=1, batch_size=batch,
                                 data=config.data, seed=config.seed),
            fallback_fraction={n: f for n, f in zip(stats.psg_layers, frac) if n in known})
        write_atomic(out / PSG_FILE, dump_stats(record))
