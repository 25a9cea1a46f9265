from __future__ import annotations

import math
import sys

import click

from ..output import FORMATS, emit, frame_to_text
from ..train.psg_probe import ProbeSettings, run_probe
from ..workload import MAX_BATCH


class _CommaList(click.ParamType):
    """Comma-separated numbers, e.g. ``--msb-bits 2,4,6`` or ``--threshold 0,5e-5,-0.1``."""

    def __init__(self, kind: type, lo: float | None = None, hi: float | None = None):
        self.kind, self.lo, self.hi = kind, lo, hi
        self.name = f"{kind.__name__}[,...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        out = []
        for part in str(value).split(","):
            try:
                v = self.kind(part.strip())
            except ValueError:
                self.fail(f"{part.strip()!r} is not a valid {self.kind.__name__}", param, ctx)
            if isinstance(v, float) and math.isnan(v):
                self.fail("NaN is not a threshold", param, ctx)
            if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                self.fail(f"{v} is outside [{self.lo}, {self.hi}]", param, ctx)
            if v in out:
                self.fail(f"{v} is listed twice", param, ctx)
            out.append(v)
        return tuple(out)


def _grad_bits(ctx, param, value):
    if value != 32 and not 2 <= value <= 16:
        raise click.BadParameter("must be in [2, 16], or 32 for the unquantized fp32 gradient", ctx, param)
    return value


@click.command("psg-accuracy")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--data", "data", default=None, type=click.Path(file_okay=False),
              help="CIFAR-10/100 python-pickle folder (default: scikit-learn's bundled digits at 32x32x3)")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True, help="training steps")
@click.option("--sample-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="compare signs at every k-th step")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="default: the workload's")
@click.option("--bits", type=click.IntRange(2, 16), default=8, show_default=True, help="forward input bits")
@click.option("--msb-bits", type=_CommaList(int, 2, 16), default="4", show_default=True,
              help="predictor input MSB bits (comma list to sweep)")
@click.option("--grad-msb-bits", type=int, default=16, show_default=True, callback=_grad_bits,
              help="predictor output-gradient bits (32: fp32)")
@click.option("--threshold", type=_CommaList(float), default="5e-5", show_default=True,
              help="fallback threshold: absolute, or relative to the layer max when negative (comma list)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--out", "out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="folder in which a fresh run directory is created")
@click.option("--quiet", is_flag=True, help="no progress bar and no per-step messages on stderr")
def psg_accuracy(workload, data, steps, sample_every, batch_size, bits, msb_bits, grad_msb_bits, threshold, seed,
                 fmt, out, quiet):
    """How often PSG's predicted weight-gradient sign is right, per conv layer, on a short real training run.

    Writes psg_accuracy.csv, psg_deciles.csv, psg_accuracy.png and the PSG stats file(s) that
    `e2sim estimate --psg-stats` reads into a new run directory under --out.
    """
    from ..errors import E2simError
    from ..workload_files import load_workload

    if sample_every > steps:
        raise click.BadParameter(f"{sample_every} > --steps {steps}: no step would be sampled",
                                 param_hint="--sample-every")
    if max(msb_bits) > bits:
        raise click.BadParameter(f"{max(msb_bits)} exceeds --bits {bits}", param_hint="--msb-bits")
    w = load_workload(workload)
    from ..train.data import load_dataset

    if data is None:
        click.echo("e2sim: no --data given: using scikit-learn's bundled handwritten digits (1500 train images, "
                   "upscaled to 32x32x3) as a stand-in for CIFAR", err=True)
    ds = load_dataset(data)
    settings = ProbeSettings(bits=bits, msb_bits=msb_bits, grad_msb_bits=grad_msb_bits, thresholds=threshold,
                             steps=steps, sample_every=sample_every, batch_size=batch_size or w.batch_size,
                             seed=seed)
    if settings.batch_size > len(ds.y_train):
        raise E2simError(f"--batch-size {settings.batch_size} exceeds the {len(ds.y_train)} training images")
    model = _build_model(w, ds.classes)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    log = (lambda m: None) if quiet else (lambda m: click.echo(f"e2sim: {m}", err=True))
    table, deciles = run_probe(model, w, ds, settings, log=log, quiet=quiet)
    run_dir = _write_outputs(out, w.name, data, settings, table, deciles)
    click.echo(f"e2sim: wrote {run_dir}", err=True)
    emit(frame_to_text(table, fmt))


def _build_model(workload, classes: int):
    from ..errors import E2simError
    from ..train.models import build_model

    try:
        return build_model(workload.model, classes)
    except ValueError as exc:
        raise E2simError(f"workload {workload.name}: {exc}") from None


def _write_outputs(base, workload_name, data, settings: ProbeSettings, table, deciles):
    import json
    import platform
    import time

    import numba
    import numpy
    import torch

    from .. import __version__
    from ..output import new_run_dir, to_json, write_atomic
    from ..stats import PsgSettings, PsgStats, dump_stats
    from ..train.psg_probe import fallback_by_layer, plot, plot_title, settings_grid

    run_dir = new_run_dir(base, time.strftime("psg-accuracy-%Y%m%d-%H%M%S-"))
    write_atomic(run_dir / "psg_accuracy.csv", table.to_csv(index=False))
    write_atomic(run_dir / "psg_deciles.csv", deciles.to_csv(index=False))
    grid = settings_grid(settings)
    data_name = "digits" if data is None else str(data)
    write_atomic(run_dir / "psg_accuracy.png", plot(table, plot_title(workload_name, data_name, settings)))
    for m, t in grid:
        stats = PsgStats(workload=workload_name, fallback_fraction=fallback_by_layer(table, m, t),
                         settings=PsgSettings(bits=settings.bits, msb_bits=m, grad_msb_bits=settings.grad_msb_bits,
                                              threshold=t, steps=settings.steps, sample_every=settings.sample_every,
                                              batch_size=settings.batch_size, data=data_name, seed=settings.seed))
        name = "psg_stats.yaml" if len(grid) == 1 else f"psg_stats_msb{m}_thr{t:g}.yaml"
        write_atomic(run_dir / name, dump_stats(stats))
    record = dict(command="psg-accuracy", workload=workload_name, data=data_name, settings=vars(settings),
                  versions=dict(e2sim=__version__, python=platform.python_version(), numpy=numpy.__version__,
                                torch=torch.__version__, numba=numba.__version__),
                  argv=sys.argv)
    write_atomic(run_dir / "run.json", to_json(json.loads(to_json(record))) + "\n")
    return run_dir
