from __future__ import annotations

import sys

import click

from ..workload import MAX_BATCH, MAX_ITERATIONS


@click.command("study")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--data", default="digits", show_default=True, help="as for e2sim train")
@click.option("--iterations", type=click.IntRange(min=1, max=MAX_ITERATIONS), default=500, show_default=True,
              help="scheduled iterations of every run")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="default: the workload's")
@click.option("--config", "configs", multiple=True, metavar='NAME="OPTIONS"',
              help='a configuration beside the baseline: a name and `e2sim train` technique options, e.g. '
                   'smd="--smd 0.5" (repeatable)')
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="runs per configuration (seeds 0..N-1)")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="worker processes of the local Dask cluster (one run each at a time)")
@click.option("--scheduler", default=None, help="address of an existing Dask scheduler (instead of a local cluster)")
@click.option("--profile", default="zedboard", show_default=True, help="hardware profile for the energy axis")
@click.option("--eval-every", type=click.IntRange(min=1), default=None,
              help="evaluation interval of every run (default: a tenth of --iterations)")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch CPU threads per run")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="study directory")
@click.option("--quiet", is_flag=True, help="no progress bar and no progress lines on stderr")
def study(workload, data, iterations, batch_size, configs, seeds, workers, scheduler, profile, eval_every, threads,
          out, quiet) -> None:
    """Train a baseline and named configurations over seeds on Dask; writes study.csv (one row per run),
    summary.csv (per configuration, with the baseline's accuracy at equal energy) and study.png into --out.
    A rerun resumes unfinished runs and reuses finished ones."""
    from pathlib import Path

    from ..plotstyle import compose_title
    from ..train.study import (STUDY_PNG, RunsFailed, execute, parse_configs, plan_runs, plot_study, summarize,
                               write_tables)
    from ..workload_files import load_workload

    w = load_workload(workload)
    parsed = parse_configs(configs)
    out = Path(out)
    common = dict(workload=workload, data=data, iterations=iterations, batch_size=batch_size, profile=profile,
                  eval_every=eval_every or max(1, iterations // 10), threads=threads)
    runs = plan_runs(out, common, parsed, seeds)
    log = (lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rows = execute(runs, workers=workers, scheduler=scheduler, quiet=quiet, log=log)
    table, summary, curve = summarize(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_tables(out, table, summary)
    title = compose_title(w.name, profile, {"data": data, "iterations": iterations,
                                            "batch": batch_size or w.batch_size, "seeds": seeds})
    plot_study(summary, curve, out / STUDY_PNG, title)
    failed = table[table["status"] != "ok"]
    if len(failed):
        raise RunsFailed(f"{len(failed)} of {len(table)} runs failed ({', '.join(failed['config'] + '/seed' + failed['seed'].astype(str))}); "
                         f"see {out / 'study.csv'}; rerun to retry them")
