from __future__ import annotations

import click

from ..workload import MAX_BATCH, MAX_ITERATIONS
from .params import FiniteRange


@click.command("train")
@click.option("--workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--data", default="digits", show_default=True,
              help="'digits' (bundled scikit-learn digits), 'synthetic' (speed tests), or a CIFAR-10/100 "
                   "directory in the python-pickle layout")
@click.option("--iterations", type=click.IntRange(min=1, max=MAX_ITERATIONS), default=500, show_default=True,
              help="scheduled iterations (SMD-dropped ones count)")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="default: the workload's")
@click.option("--smd", type=FiniteRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="stochastic mini-batch dropping: probability that an iteration's batch is dropped")
@click.option("--slu", is_flag=True, help="selective layer update: gated blocks with the energy regulariser")
@click.option("--slu-target", type=FiniteRange(0.0, 1.0, min_open=True), default=None,
              help="fraction of gated blocks to execute (needs --slu)")
@click.option("--slu-beta", type=FiniteRange(min=0.0, max=1e3), default=1e-5, show_default=True,
              help="weight of the SLU regulariser (official code: 1e-5)")
@click.option("--psg", is_flag=True, help="predictive sign gradient descent on every conv (lr 0.03)")
@click.option("--psg-exact", is_flag=True,
              help="PSG weight gradients from the exact integer kernel (10-20x slower than the float32 path)")
@click.option("--lr", type=FiniteRange(min=0.0, min_open=True, max=10.0), default=None,
              help="initial learning rate (default: the workload's, 0.03 with --psg as in the paper)")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--profile", default="zedboard", show_default=True, help="hardware profile for the energy axis")
@click.option("--eval-every", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="default: at every evaluation")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="torch CPU threads")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="run directory")
@click.option("--resume", is_flag=True, help="continue the run in --out from its last checkpoint")
def train(workload, data, iterations, batch_size, smd, slu, slu_target, slu_beta, psg, psg_exact, lr, seed, profile,
          eval_every, checkpoint_every, threads, out, resume) -> None:
    """Train a workload's model with SMD / SLU / PSG; writes curves, statistics and checkpoints into --out."""
    from ..errors import E2simError
    from ..train.loop import TrainConfig, train as run

    if slu_target is not None and not slu:
        raise E2simError("--slu-target needs --slu")
    if psg_exact and not psg:
        raise E2simError("--psg-exact needs --psg")
    config = TrainConfig(workload=workload, data=data, iterations=iterations, batch_size=batch_size, smd=smd,
                         slu=slu, slu_target=1.0 if slu_target is None else slu_target, slu_beta=slu_beta,
                         psg=psg, psg_exact=psg_exact, lr=lr, seed=seed, profile=profile, eval_every=eval_every,
                         checkpoint_every=checkpoint_every, threads=threads)
    run(config, out, resume=resume)
