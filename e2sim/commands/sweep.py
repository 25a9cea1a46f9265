from __future__ import annotations

import click


@click.command("sweep")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--profile", default="zedboard", show_default=True, help="bundled profile name or a profile YAML file")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="run directory for the table")
@click.option("--precision", default="fp32", show_default=True, help="list of precisions, e.g. fp32,int8")
@click.option("--smd", default="0", show_default=True, help="SMD drop rates: START:STOP:STEP or a list, in [0, 1)")
@click.option("--slu-skip", default=None, help="SLU skip ratios (turns SLU on): range or list, in [0, 1]")
@click.option("--psg", is_flag=True, help="PSG on (also implied by any --psg-* / --grad-bits option)")
@click.option("--psg-msb-bits", default=None, help="PSG predictor input MSB bits: range or list (default 4)")
@click.option("--grad-bits", default=None, help="PSG output-gradient bits: range or list (default 32)")
@click.option("--psg-fallback", default=None, help="PSG fallback fractions: range or list, in [0, 1] (default 0)")
@click.option("--seed", type=int, default=None, help="SMD: Binomial draw of executed iterations per rate")
@click.option("--baseline", type=click.Choice(("fp32", "int8", "signsgd", "stochastic-depth")), default="fp32",
              show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=50_000, show_default=True)
@click.option("--resume", is_flag=True, help="finish a sweep in --out without recomputing finished chunks")
@click.option("--executor", type=click.Choice(("local", "dask")), default="local", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress line on stderr")
def sweep(workload, profile, out, precision, smd, slu_skip, psg, psg_msb_bits, grad_bits, psg_fallback, seed,
          baseline, chunk_size, resume, executor, quiet) -> None:
    """Energy / time / saving over a grid of technique settings -> sweep.parquet, sweep.csv, tradeoff.png.

    Every combination of the listed values is one row (tidy). Prints the output paths and counts on stdout.
    """
    from ..errors import E2simError
    from ..output import emit, to_json
    from ..sweep import SweepSpec, parse_values, run_sweep

    def ints(text, what):
        vals = parse_values(text, what)
        if any(v != int(v) for v in vals):
            raise E2simError(f"{what}: bit-widths must be integers, got {text!r}")
        return tuple(int(v) for v in vals)

    precs = tuple(p.strip() for p in precision.split(",") if p.strip())
    if not precs:
        raise E2simError("--precision: empty list")
    psg_on = psg or any(x is not None for x in (psg_msb_bits, grad_bits, psg_fallback))
    spec = SweepSpec(
        workload=workload, profile=profile, precision=precs, psg=psg_on,
        psg_msb_bits=ints(psg_msb_bits, "--psg-msb-bits") if psg_msb_bits else (4,),
        grad_bits=ints(grad_bits, "--grad-bits") if grad_bits else (32,),
        slu=slu_skip is not None,
        slu_skip=parse_values(slu_skip, "--slu-skip") if slu_skip is not None else (0.0,),
        psg_fallback=parse_values(psg_fallback, "--psg-fallback") if psg_fallback else (0.0,),
        smd=parse_values(smd, "--smd"), seed=seed, baseline=baseline, chunk_size=chunk_size,
    )
    df = run_sweep(spec, out, resume=resume, executor=executor, progress=not quiet)
    emit(to_json({"out": out, "configurations": len(df), "spec_hash": spec.digest(),
                  "files": ["sweep.parquet", "sweep.csv", "tradeoff.png", "manifest.json"]}) + "\n")
