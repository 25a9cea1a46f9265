"""Option types shared by the commands."""
from __future__ import annotations

import math

import click


class FiniteRange(click.FloatRange):
    """click.FloatRange that also refuses NaN (which compares false with both bounds and so passes it)
    and infinities (the bounds default to finite ones)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{rv} is not a finite number", param, ctx)
        return rv
