from __future__ import annotations

import click

from ..output import FORMATS, emit, frame_to_text, to_json
from .technique_options import run_estimate_with_techniques, technique_options, uses_techniques
from ..workload import MAX_BATCH, MAX_ITERATIONS


@click.command("estimate")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--profile", default="zedboard", show_default=True, help="bundled profile name or a profile YAML file")
@click.option("--precision", type=click.Choice(("fp32", "fp16", "int8", "int16")), default="fp32", show_default=True)
@click.option("--iterations", type=click.IntRange(min=1, max=MAX_ITERATIONS), default=None, help="override the schedule's iterations")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="override the workload's batch size")
@click.option("--scalesim-compat", is_flag=True, help="count as SCALE-Sim 3.0.0 does (CALC mode: no stalls)")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@technique_options
def estimate(workload, profile, precision, iterations, batch_size, scalesim_compat, fmt, **techniques) -> None:
    """Energy and time of a whole training run on a hardware profile.

    json: totals (energy_j, time_s, cycles, breakdown_j, by_pass_j) and the settings used;
    table / csv: one row per layer x pass x component (mac, sram, dram, static) with the run's energy_j.
    """
    from ..estimate import estimate as run

    if fmt == "json" or uses_techniques(techniques):
        # Techniques, baseline and saving (issue 4); json always carries the baseline and the saving.
        run_estimate_with_techniques(workload, profile, precision, iterations, batch_size, scalesim_compat,
                                     fmt, techniques)
        return
    est = run(workload, profile, precision, iterations=iterations, batch_size=batch_size,
              scalesim_compat=scalesim_compat)
    if fmt == "json":
        emit(to_json(est.to_dict()) + "\n")
    else:
        emit(frame_to_text(est.to_frame(), fmt))
