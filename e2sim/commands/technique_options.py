"""Technique and baseline options shared by ``e2sim estimate`` (and reused by ``e2sim sweep`` for the
single-valued ones), kept here so the estimate command only gains one decorator and one call."""
from __future__ import annotations

import click

from ..savings import ASSUMED_PSG_FALLBACK, ASSUMED_SLU_SKIP, PAPER_SMD_RATE
from ..techniques.baselines import BASELINES


class Rate(click.ParamType):
    """A float in [lo, hi) or [lo, hi] with a one-line message naming the option."""

    name = "float"

    def __init__(self, lo: float, hi: float, hi_open: bool):
        self.lo, self.hi, self.hi_open = lo, hi, hi_open

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        ok = self.lo <= v < self.hi if self.hi_open else self.lo <= v <= self.hi
        if not ok:
            br = ")" if self.hi_open else "]"
            self.fail(f"{v:g} is outside [{self.lo:g}, {self.hi:g}{br}", param, ctx)
        return v


def technique_options(f):
    opts = [
        click.option("--smd", type=Rate(0, 1, True), default=None,
                     help="SMD: drop each iteration's mini-batch with this probability, in [0, 1)"),
        click.option("--seed", type=int, default=None,
                     help="SMD: draw the executed iteration count (Binomial) with this seed instead of the mean"),
        click.option("--slu-skip", type=Rate(0, 1, False), default=None,
                     help="SLU: skip ratio of every gated block, in [0, 1] (gates are always paid)"),
        click.option("--slu-stats", type=str, default=None, help="SLU: per-block skip ratios (stats file)"),
        click.option("--psg", is_flag=True, help="PSG: predictive sign gradient on every conv"),
        click.option("--psg-bits", type=str, default=None,
                     help="PSG bit-widths NAME=BITS,... (defaults: act=8, weight=8, grad= the --precision's "
                          "gradient width (fp32: 32), msb_act=4, msb_weight=4, msb_grad=min(16, grad))"),
        click.option("--psg-fallback", type=Rate(0, 1, False), default=None,
                     help="PSG: fraction of weight-gradient entries recomputed at full precision"),
        click.option("--psg-stats", type=str, default=None, help="PSG: per-layer fallback fractions (stats file)"),
        click.option("--baseline", type=click.Choice(BASELINES), default=None,
                     help="what the saving is measured against [default: plain SGD at --precision]; "
                          "int8-banner: Banner et al. 8-bit training; signsgd / stochastic-depth at --precision"),
        click.option("--compare", is_flag=True,
                     help="one row per technique alone and combined (SMD, SLU, PSG, SMD+SLU, all three); "
                          f"without a technique option: SMD {PAPER_SMD_RATE}, SLU skip {ASSUMED_SLU_SKIP}, PSG "
                          f"fallback {ASSUMED_PSG_FALLBACK} (said on stderr)"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


TECHNIQUE_KEYS = ("smd", "seed", "slu_skip", "slu_stats", "psg", "psg_bits", "psg_fallback", "psg_stats")


def uses_techniques(opts: dict) -> bool:
    """Whether any technique, a non-default baseline or --compare was asked for."""
    return any(opts[k] not in (None, False) for k in TECHNIQUE_KEYS) or opts["compare"] or opts["baseline"] is not None
