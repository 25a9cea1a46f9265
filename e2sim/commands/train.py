from __future__ import annotations

import click

from ..workload import MAX_BATCH, MAX_ITERATIONS
from .params import FiniteRange


# Options that change what is trained (a study's --config takes these); the others say where and how.
TECHNIQUE_OPTIONS = [
    click.option("--smd", type=FiniteRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
                 help="stochastic mini-batch dropping: probability that an iteration's batch is dropped"),
    click.option("--slu", is_flag=True, help="selective layer update: gated blocks with the energy regulariser"),
    click.option("--slu-target", type=FiniteRange(0.0, 1.0, min_open=True), default=None,
                 help="fraction of gated blocks to execute (needs --slu; default 1)"),
    click.option("--slu-beta", type=FiniteRange(min=0.0, max=1e3), default=1e-5, show_default=True,
                 help="weight of the SLU regulariser (official code: 1e-5)"),
    click.option("--slu-skipped", type=click.Choice(("charged", "free")), default=None,
                 help="charged (default): a skipped block still runs forward for the straight-through gate "
                      "gradient (official code) and the energy counts it; free: it runs nothing (needs --slu)"),
    click.option("--psg", is_flag=True, help="predictive sign gradient descent on every conv"),
    click.option("--psg-exact", is_flag=True,
                 help="PSG weight gradients from the exact integer kernel (10-20x slower than the float32 path)"),
    click.option("--psg-lr", type=FiniteRange(min=0.0, min_open=True, max=10.0), default=None,
                 help="initial lr of the sign-updated conv weights (needs --psg; default 0.03, the paper's)"),
    click.option("--psg-threshold", type=FiniteRange(min=-1.0, max=1e3), default=None,
                 help="PSG threshold: absolute (default 5e-5, official), or relative to the layer's largest "
                      "prediction when negative, in [-1, 0) (needs --psg)"),
    click.option("--lr", type=FiniteRange(min=0.0, min_open=True, max=10.0), default=None,
                 help="initial lr of the parameters with ordinary gradients (BN, fc, gates; every parameter "
                      "without --psg); default: the workload's (0.1)"),
    click.option("--momentum", type=FiniteRange(0.0, 1.0, max_open=True), default=None,
                 help="SGD momentum of every parameter group; default: the workload's (0.9)"),
    click.option("--lr-schedule", type=click.Choice(("paper", "official")), default="paper", show_default=True,
                 help="paper: lr / 10 at 1/2 and 3/4 of the run (32k, 48k of 64k); official: one / 10 at 2/3 "
                      "(42,666 of 64k, main_all.py)"),
]


def technique_options(f):
    for o in reversed(TECHNIQUE_OPTIONS):
        f = o(f)
    return f


def train_config(**opts):
    """A TrainConfig from the train command's option values; inconsistent combinations are errors."""
    from ..errors import E2simError
    from ..train.loop import TrainConfig

    needs = [("slu_target", "slu", "--slu-target needs --slu"), ("slu_skipped", "slu", "--slu-skipped needs --slu"),
             ("psg_exact", "psg", "--psg-exact needs --psg"), ("psg_lr", "psg", "--psg-lr needs --psg"),
             ("psg_threshold", "psg", "--psg-threshold needs --psg")]
    for opt, flag, msg in needs:
        if opts.get(opt) not in (None, False) and not opts.get(flag):
            raise E2simError(msg)
    for k, default in (("slu_target", 1.0), ("slu_skipped", "charged"), ("psg_threshold", 5e-5)):
        if opts.get(k) is None:
            opts[k] = default
    return TrainConfig(**opts)


@click.command("train")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--data", default="digits", show_default=True,
              help="'digits' (bundled scikit-learn digits), 'synthetic' (speed tests), or a CIFAR-10/100 "
                   "directory in the python-pickle layout")
@click.option("--iterations", type=click.IntRange(min=1, max=MAX_ITERATIONS), default=500, show_default=True,
              help="scheduled iterations (SMD-dropped ones count); with --resume, a larger value extends a run")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="default: the workload's")
@technique_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--profile", default="zedboard", show_default=True, help="hardware profile for the energy axis")
@click.option("--eval-every", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="default: at every evaluation")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="torch CPU threads")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="run directory")
@click.option("--resume", is_flag=True,
              help="continue the run in --out from its last checkpoint (or extend it to more --iterations)")
@click.option("--quiet", is_flag=True, help="no progress bar and no progress lines on stderr")
def train(out, resume, quiet, **opts) -> None:
    """Train a workload's model with SMD / SLU / PSG; writes curves, statistics, checkpoints and the run's
    estimate.json into --out."""
    from ..train.loop import train as run

    run(train_config(**opts), out, resume=resume, quiet=quiet)
