"""A run's ``estimate.json``: the JSON ``e2sim estimate --format json`` writes, for the run as it happened —
its scheduled and executed iterations (SMD as measured, not the expectation), its batch size and profile,
and the SLU skip ratios and PSG fallback fractions it measured (its stats files). ``e2sim validate
--against RUN`` reads it."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..output import write_atomic
from ..workload import Workload

ESTIMATE_FILE = "estimate.json"


def run_savings(out: Path, workload: Workload, config, batch: int, executed: int):
    """The run's Savings (estimate beside the fp32 baseline of the same schedule and batch)."""
    from ..estimate import estimate_plan
    from ..savings import Savings, estimate_baseline
    from ..stats import load_psg_stats, load_slu_stats
    from ..techniques import PSG, SLU, Techniques, build
    from .stats_io import PSG_FILE, SLU_FILE

    charged = config.slu_skipped == "charged"
    slu = psg = None
    if config.slu:
        f = out / SLU_FILE
        # No stats file: no iteration executed (the energy is zero whatever the ratios).
        slu = (SLU(per_block=load_slu_stats(f).ratios(), source=str(f), charge_skipped_forward=charged)
               if f.is_file() else SLU(skip=0.0, source="no executed iteration", charge_skipped_forward=charged))
    if config.psg:
        f = out / PSG_FILE
        psg = (PSG(per_layer=load_psg_stats(f).fractions(), source=str(f)) if f.is_file()
               else PSG(fallback=1.0, source="no executed iteration"))
    w, plan = build(workload, Techniques(slu=slu, psg=psg), "fp32", iterations=config.iterations,
                    batch_size=batch)
    plan = replace(plan, iterations_executed=float(executed)).with_notes(
        f"smd: measured, {executed} of {config.iterations} scheduled iterations executed "
        f"(drop probability {config.smd:g})")
    labels = [n for n, on in (("SMD", config.smd > 0), ("SLU", config.slu), ("PSG", config.psg)) if on]
    est = estimate_plan(plan, w, config.profile)
    base = estimate_baseline(workload, config.profile, "fp32", config.iterations, batch)
    return Savings(est, base, "fp32", "+".join(labels) or "none")


def write_run_estimate(out: Path, workload: Workload, config, batch: int, rows: list[dict]) -> Path:
    from ..output import to_json

    executed = sum(1 for r in rows if not r["smd_dropped"])
    d = run_savings(out, workload, config, batch, executed).to_dict()
    write_atomic(out / ESTIMATE_FILE, to_json(d) + "\n")
    return out / ESTIMATE_FILE


def read_run_estimate(out: Path) -> dict:
    return json.loads((Path(out) / ESTIMATE_FILE).read_text())
