from __future__ import annotations

import click

from ..errors import E2simError
from ..output import FORMATS, emit, frame_to_text
from .params import FiniteRange

MAX_ARRAY = 4096  # PEs per side (a TPU v1 is 256 x 256)
MAX_SRAM_KB = 2**30  # 1 TB per buffer


def _array(value: str) -> tuple[int, int]:
    try:
        r, c = (int(x) for x in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not ROWSxCOLS (e.g. 16x16)", param_hint="--array") from None
    if not (1 <= r <= MAX_ARRAY and 1 <= c <= MAX_ARRAY):
        raise click.BadParameter(f"array dimensions must be in [1, {MAX_ARRAY}]", param_hint="--array")
    return r, c


def _sram(value: str) -> tuple[int, int, int]:
    try:
        kb = tuple(int(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not three integers I,F,O", param_hint="--sram-kb") from None
    if len(kb) != 3 or min(kb) < 1 or max(kb) > MAX_SRAM_KB:
        raise click.BadParameter(f"give three sizes in KB in [1, {MAX_SRAM_KB}]: IFMAP,FILTER,OFMAP",
                                 param_hint="--sram-kb")
    return kb  # type: ignore[return-value]


@click.command("cycles")
@click.option("--workload", default=None, help="bundled workload or YAML file (its forward conv/linear layers, batch 1)")
@click.option("--topology", type=click.Path(dir_okay=False), default=None, help="a SCALE-Sim topology CSV (padded IFMAP sizes)")
@click.option("--array", "array", default="16x16", show_default=True, help="PE array ROWSxCOLS")
@click.option("--dataflow", type=click.Choice(("os", "ws", "is")), default="os", show_default=True)
@click.option("--sram-kb", default="512,512,512", show_default=True, help="IFMAP,FILTER,OFMAP buffer sizes in KB")
@click.option("--dram-bw", type=FiniteRange(min=1e-6, max=1e6), default=None,
              help="DRAM words per cycle: adds stall cycles where transfers outlast compute")
@click.option("--scalesim-compat", is_flag=True, help="reproduce SCALE-Sim 3.0.0's counting conventions")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def cycles(workload, topology, array, dataflow, sram_kb, dram_bw, scalesim_compat, fmt) -> None:
    """Per-layer cycles, utilisation and SRAM/DRAM access counts, column by column as SCALE-Sim reports them."""
    from ..cycles import topology_frame
    from ..topology import from_workload, read_topology

    if (workload is None) == (topology is None):
        raise E2simError("cycles: give exactly one of --workload and --topology")
    if dram_bw is not None and scalesim_compat:
        raise E2simError("cycles: --dram-bw has no effect with --scalesim-compat (SCALE-Sim's CALC mode never stalls)")
    rows, cols = _array(array)
    kb = _sram(sram_kb)
    if workload is not None:
        from ..workload_files import load_workload

        topo = from_workload(load_workload(workload))
    else:
        topo = read_topology(topology)
    df = topology_frame(topo, rows=rows, cols=cols, dataflow=dataflow, sram_kb=kb, dram_words_per_cycle=dram_bw,
                        compat=scalesim_compat)
    emit(frame_to_text(df, fmt))
