from __future__ import annotations

import click

from ..output import FORMATS, emit, frame_to_text


@click.command("workloads")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def workloads(fmt: str) -> None:
    """List the bundled workloads."""
    import pandas as pd

    from ..workload_files import bundled_workloads, load_workload

    rows = []
    for name in bundled_workloads():
        w = load_workload(name)
        rows.append({
            "workload": name, "model": w.model, "dataset": w.dataset.name, "layers": len(w.layers),
            "gated_blocks": len(w.gated_blocks), "batch_size": w.batch_size,
            "iterations": w.schedule.iterations, "fwd_macs_per_sample": w.forward_macs_per_sample(),
        })
    emit(frame_to_text(pd.DataFrame(rows), fmt))
