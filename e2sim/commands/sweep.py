from __future__ import annotations

import click

from ..sweep import DEFAULT_CHUNK, MAX_CHUNK, MAX_CONFIGS


@click.command("sweep")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--profile", default="zedboard", show_default=True, help="bundled profile name or a profile YAML file")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="run directory for the results")
@click.option("--precision", default="fp32", show_default=True, help="list of precisions, e.g. fp32,int8")
@click.option("--smd", default="0", show_default=True, help="SMD drop rates: START:STOP:STEP or a list, in [0, 1)")
@click.option("--slu-skip", default=None, help="SLU skip ratios (turns SLU on): range or list, in [0, 1]")
@click.option("--psg", is_flag=True, help="PSG on (also implied by any --psg-* / --grad-bits option)")
@click.option("--psg-msb-bits", default=None, help="PSG predictor input MSB bits: range or list in 1..8 (default 4)")
@click.option("--grad-bits", default=None, help="PSG output-gradient bits: range or list in 1..32 (default: the precision's, 32 at fp32)")
@click.option("--psg-fallback", default=None, help="PSG fallback fractions: range or list, in [0, 1] (default 0)")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="SMD: Binomial draw of executed iterations per rate")
@click.option("--baseline", type=click.Choice(("fp32", "fp16", "int8", "int16", "int8-banner", "signsgd",
                                               "stochastic-depth")), default="fp32", show_default=True)
@click.option("--max-configs", type=click.IntRange(min=1), default=MAX_CONFIGS, show_default=True,
              help="refuse grids with more configurations than this")
@click.option("--chunk-size", type=click.IntRange(1, MAX_CHUNK), default=DEFAULT_CHUNK, show_default=True,
              help="configurations per Parquet part")
@click.option("--csv", "csv", is_flag=True, help="also write sweep.csv (streamed from the parts)")
@click.option("--plot/--no-plot", default=True, show_default=True, help="draw saving.png")
@click.option("--resume", is_flag=True, help="finish the sweep in --out: verify its parts, compute the rest")
@click.option("--force", is_flag=True, help="replace the sweep outputs already in --out")
@click.option("--executor", type=click.Choice(("local", "dask")), default="local", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bar on stderr")
def sweep(workload, profile, out, precision, smd, slu_skip, psg, psg_msb_bits, grad_bits, psg_fallback, seed,
          baseline, max_configs, chunk_size, csv, plot, resume, force, executor, quiet) -> None:
    """Energy / time / saving over a grid of technique settings -> a Parquet dataset and saving.png.

    Every combination of the listed values is one row (tidy), written in parts to OUT/sweep.parquet/.
    Prints a JSON summary (paths, counts, sizes in bytes) on stdout.
    """
    from ..errors import E2simError
    from ..output import emit, to_json
    from ..sweep import SweepSpec, axis_size, check_budget, parse_values
    from ..sweep_run import run_sweep

    precs = tuple(p.strip() for p in precision.split(",") if p.strip())
    if not precs:
        raise E2simError("--precision: empty list")
    psg_on = psg or any(x is not None for x in (psg_msb_bits, grad_bits, psg_fallback))
    texts = {"psg_msb_bits": psg_msb_bits or "4", "grad_bits": grad_bits or "",
             "slu_skip": slu_skip if slu_skip is not None else "0", "psg_fallback": psg_fallback or "0",
             "smd": smd}
    opt = {k: "--" + k.replace("_", "-") for k in texts}
    # The grid's size from the texts alone: an oversized range is refused before it is materialised.
    if not grad_bits:  # the precision's own gradient width
        del texts["grad_bits"]
    check_budget({"precision": len(precs), **{k: axis_size(t, opt[k]) for k, t in texts.items()}}, max_configs)
    vals = {k: parse_values(t, opt[k], axis=k) for k, t in texts.items()}
    spec = SweepSpec(workload=workload, profile=profile, precision=precs, psg=psg_on, slu=slu_skip is not None,
                     seed=seed, baseline=baseline, chunk_size=chunk_size, **vals)
    res = run_sweep(spec, out, resume=resume, force=force, executor=executor, quiet=quiet,
                    max_configs=max_configs, csv=csv, plot=plot)
    emit(to_json(res.to_dict()) + "\n")
