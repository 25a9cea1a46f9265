from __future__ import annotations

import click

from ..output import FORMATS, emit, frame_to_text


@click.command("profiles")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def profiles(fmt: str) -> None:
    """List the bundled hardware profiles (hardware_profiles/*.yaml)."""
    import pandas as pd

    from ..profile import bundled_profiles, load_profile

    rows = []
    for name in bundled_profiles():
        p = load_profile(name)
        a = p.array
        rows.append({
            "profile": name, "array": f"{a.rows_count.value}x{a.cols_count.value}", "dataflow": a.dataflow.value,
            "clock_hz": a.clock_hz.value,
            "buffer_bytes": sum(getattr(p.buffers, b).size_bytes.value for b in ("ifmap", "filter", "ofmap")),
            "dram_bandwidth_bytes_per_s": p.dram.bandwidth_bytes_per_s.value,
            "static_power_w": p.static_w, "calibrated": p.calibration is not None, "description": p.description,
        })
    emit(frame_to_text(pd.DataFrame(rows), fmt))
