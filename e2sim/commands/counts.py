from __future__ import annotations

import click

from ..output import FORMATS, emit, frame_to_text
from ..workload import MAX_BATCH


@click.command("counts")
@click.option("--workload", "workload", required=True, help="bundled workload name or a workload YAML file")
@click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=None, help="override the workload's batch size")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def counts(workload: str, batch_size: int | None, fmt: str) -> None:
    """Per-layer, per-pass MACs, element operations and tensor elements read/written for one iteration."""
    from ..counts import count
    from ..workload_files import load_workload

    w = load_workload(workload)
    emit(frame_to_text(count(w, batch_size).to_frame(), fmt))
