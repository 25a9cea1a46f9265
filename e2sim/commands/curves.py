from __future__ import annotations

from pathlib import Path

import click


@click.command("curves")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="PNG file to write")
def curves(runs, out) -> None:
    """Overlay training runs on accuracy-vs-energy axes; the legend names each run's techniques (from its
    config.json)."""
    from ..train.curves import read_run_curves, read_run_record
    from ..train.plots import plot_overlay

    plot_overlay([(read_run_record(r), read_run_curves(r)) for r in runs], Path(out))
    click.echo(f"wrote {out}", err=True)
