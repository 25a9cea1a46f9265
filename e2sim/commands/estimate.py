from __future__ import annotations

import click

from ..output import FORMATS, emit
from ..summary import DETAILS
from ..workload import MAX_BATCH, MAX_ITERATIONS
from .technique_options import TECHNIQUE_KEYS, technique_options, uses_techniques


@click.command("estimate")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--profile", default="zedboard", show_default=True, help="bundled profile name or a profile YAML file")
@click.option("--precision", type=click.Choice(("fp32", "fp16", "int8", "int16")), default="fp32", show_default=True)
@click.option("--iterations", type=click.IntRange(min=1, max=MAX_ITERATIONS), default=None,
              help="override the schedule's iterations (e.g. those of a measured window)")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="override the workload's batch size")
@click.option("--scalesim-compat", is_flag=True, help="count as SCALE-Sim 3.0.0 does (CALC mode: no stalls)")
@click.option("--inference", is_flag=True,
              help="forward pass only: --iterations batches (default 1) of --batch-size images, no training")
@click.option("--sensitivity", is_flag=True,
              help="json: add 'sensitivity', each profile constant's elasticity d ln E / d ln c")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--detail", type=click.Choice(DETAILS), default=None,
              help="per-item rows summed by layer, pass or component, or every item (table: after the summary; "
                   "csv: the rows [default: item]; json: a 'detail' list)")
@technique_options
def estimate(workload, profile, precision, iterations, batch_size, scalesim_compat, inference, sensitivity, fmt,
             detail, **techniques) -> None:
    """Energy and time of a whole training run (or, with --inference, of forward passes) on a hardware
    profile.

    table: a summary in human units (energy in J/kJ/MJ and kWh, time, shares of each component and pass in
    %, savings in %); --detail adds per-item rows. csv: one row per layer x pass x component (mac, sram,
    dram, static) with energy_j, or the --detail level. json: totals in SI units (energy_j, time_s, cycles,
    breakdown_j, by_pass_j, the per-constant activity that calibrate reads), the baseline and the saving;
    with a calibrated profile also the band energy_j_low/high, time_s_low/high (saving_low/high beside
    every saving); --sensitivity adds each constant's elasticity.
    """
    from ..errors import E2simError
    from ..output import frame_to_text, to_json
    from ..summary import compare_text, detail_frame, detail_text, summary_text

    kw = dict(iterations=iterations, batch_size=batch_size, scalesim_compat=scalesim_compat)
    if sensitivity and fmt != "json":
        raise E2simError("--sensitivity: add --format json (it is a key of the JSON record)")
    if inference and uses_techniques(techniques):
        raise E2simError("--inference: not with techniques, --baseline or --compare (they describe training)")
    if techniques["compare"]:
        if detail:
            raise click.UsageError("--detail shows one configuration; drop --compare or --detail")
        from ..savings import (ASSUMED_PSG_FALLBACK, ASSUMED_SLU_SKIP, PAPER_SMD_RATE, compare, configure,
                               paper_techniques)

        chosen = configure(**{k: techniques[k] for k in TECHNIQUE_KEYS})
        assumed = not chosen.subsets()
        if assumed:
            chosen = paper_techniques()
        df = compare(workload, profile, precision, chosen, baseline=techniques["baseline"], **kw)
        if assumed:  # said once the comparison stands (a failing one leaves only its error line)
            click.echo(f"e2sim: --compare without techniques: SMD {PAPER_SMD_RATE} (official code), SLU skip "
                       f"{ASSUMED_SLU_SKIP} and PSG fallback {ASSUMED_PSG_FALLBACK} (assumed, as in "
                       f"validation/REPRODUCTION.md)", err=True)
        if fmt == "table":
            about = {"workload": workload, "profile": profile, "precision": precision}
            emit(compare_text(df.to_dict(orient="records"), about))
        else:
            emit(to_json(df.to_dict(orient="records")) + "\n" if fmt == "json" else frame_to_text(df, fmt))
        return
    if inference:
        from ..estimate import estimate as run

        result = run(workload, profile, precision, inference=True, **kw)
    elif fmt == "json" or uses_techniques(techniques):
        # json always carries the baseline (plain training at --precision by default) and the saving.
        from ..savings import configure, estimate_with_savings

        result = estimate_with_savings(workload, profile, precision,
                                       configure(**{k: techniques[k] for k in TECHNIQUE_KEYS}),
                                       baseline=techniques["baseline"], **kw)
    else:
        from ..estimate import estimate as run

        result = run(workload, profile, precision, **kw)
    if fmt == "json":
        d = result.to_dict()
        if sensitivity:
            d["sensitivity"] = getattr(result, "config", result).sensitivity()
        if detail:
            d["detail"] = detail_frame(result.to_frame(), detail).to_dict(orient="records")
        emit(to_json(d) + "\n")
    elif fmt == "csv":
        frame = result.to_frame()
        emit(frame_to_text(frame if detail in (None, "item") else detail_frame(frame, detail), fmt))
    else:
        text = summary_text(result.to_dict())
        if detail:
            text += "\n" + detail_text(detail_frame(result.to_frame(), detail), detail)
        emit(text)
