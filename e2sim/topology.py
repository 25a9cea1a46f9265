"""SCALE-Sim topology tables: build one from a workload's forward GEMM layers, read and write the CSV.

SCALE-Sim has no padding parameter: its ofmap size is ceil((H - R + s) / s), so the IFMAP size it is given
must be the padded size that yields the PyTorch ofmap, (E - 1) * s + R (34 for a 3x3 / pad 1 / stride 1 conv
on 32x32, 33 for stride 2, 31 for a 1x1 stride-2 projection; shared/reference/scalesim.md §3). A linear
layer is a 1x1 conv on a 1x1 IFMAP (on a steps x 1 IFMAP when it is applied at several positions). SCALE-Sim
has no dilation: a dilated conv is given its effective kernel, (k - 1) * d + 1, the dense filter with zeros
between the taps that SCALE-Sim would need (its MACs then count the zeros). Transposed convs, matmuls between
activations and recurrent layers have no topology row. Rows end with a trailing comma: SCALE-Sim's parser
drops the last field.

Depthwise rows: as SCALE-Sim's ``topology_utils.load_arrays_conv`` does, a row whose name contains ``DP`` is
read as one layer per channel, named ``<name>Channel_<i>``, each with 1 channel and the row's filter count; a
workload's depthwise conv (groups = in = out channels) becomes the same per-channel rows. Other grouped convs
have no row.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import E2simError
from .workload import MAX_DIM, MAX_LAYER_ELEMS, MAX_LAYER_MACS, Workload

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"


@dataclass(frozen=True)
class Topology:
    """Columns of a SCALE-Sim topology (batch 1), arrays of equal length."""

    names: tuple[str, ...]
    ifmap_h: np.ndarray  # padded
    ifmap_w: np.ndarray
    filter_h: np.ndarray
    filter_w: np.ndarray
    channels: np.ndarray
    num_filter: np.ndarray
    stride: np.ndarray

    @property
    def ofmap_h(self) -> np.ndarray:
        return np.ceil((self.ifmap_h - self.filter_h + self.stride) / self.stride).astype(np.int64)

    @property
    def ofmap_w(self) -> np.ndarray:
        return np.ceil((self.ifmap_w - self.filter_w + self.stride) / self.stride).astype(np.int64)

    def gemms(self):
        """(M, N, K, distinct ifmap elements) of each layer as SCALE-Sim maps it."""
        e, f = self.ofmap_h, self.ofmap_w
        m = e * f
        k = self.filter_h * self.filter_w * self.channels
        n = self.num_filter

        def touched(out, r, s):
            return np.where(r < s, out * r, (out - 1) * s + r)

        a_unique = touched(e, self.filter_h, self.stride) * touched(f, self.filter_w, self.stride) * self.channels
        return m, n, k, a_unique

    def to_csv(self) -> str:
        cols = (self.ifmap_h, self.ifmap_w, self.filter_h, self.filter_w, self.channels, self.num_filter,
                self.stride)
        lines = [HEADER] + [
            ",".join([name] + [str(int(c[i])) for c in cols]) + "," for i, name in enumerate(self.names)
        ]
        return "\n".join(lines) + "\n"


def from_workload(workload: Workload) -> Topology:
    """The forward conv and linear layers of a workload as a SCALE-Sim topology."""
    rows = []
    for L in workload.layers:
        if L.kind == "conv":
            depthwise = L.groups == L.in_shape[0] == L.out_shape[0]
            if L.groups != 1 and not depthwise:
                raise E2simError(f"layer {L.name}: grouped convs have no SCALE-Sim topology row (use GEMM mode)")
            if L.stride[0] != L.stride[1]:
                raise E2simError(f"layer {L.name}: SCALE-Sim takes one stride for both dimensions")
            if L.steps != 1:
                raise E2simError(f"layer {L.name}: runs {L.steps} times per sample; SCALE-Sim topologies "
                                 f"have batch 1")
            _, ho, wo = L.out_shape
            (r, s), st = L.effective_kernel, L.stride[0]
            row = ((ho - 1) * st + r, (wo - 1) * st + s, r, s)
            if depthwise:  # SCALE-Sim's model of a DP row: one single-channel, single-filter layer per channel
                rows.extend((f"{L.name}Channel_{c}", *row, 1, 1, st) for c in range(L.groups))
            else:
                rows.append((L.name, *row, L.in_shape[0], L.out_shape[0], st))
        elif L.kind == "linear":
            rows.append((L.name, L.steps, 1, 1, 1, L.in_shape[0], L.out_shape[0], 1))
        elif L.kind in ("conv_transpose", "matmul", "lstm", "gru"):
            raise E2simError(f"layer {L.name}: a {L.kind} layer has no SCALE-Sim topology row (the estimate "
                             f"path maps it)")
    if not rows:
        raise E2simError(f"workload {workload.name}: no conv or linear layers")
    return _from_rows(rows)


def _from_rows(rows) -> Topology:
    names = tuple(r[0] for r in rows)
    cols = np.array([r[1:] for r in rows], dtype=np.int64).T
    return Topology(names, *cols)


COLUMNS = tuple(c.strip() for c in HEADER.split(",")[1:-1])


def _check_size(p: Path, lineno: int, ih: int, iw: int, fh: int, fw: int, ch: int, nf: int, st: int) -> None:
    """The workload's per-layer bounds (e2sim.workload), so that every count of the layer fits int64."""
    oh, ow = -(-(ih - fh + st) // st), -(-(iw - fw + st) // st)
    checks = (("IFMAP elements", ih * iw * ch, MAX_LAYER_ELEMS), ("OFMAP elements", oh * ow * nf, MAX_LAYER_ELEMS),
              ("filter weights", fh * fw * ch * nf, MAX_LAYER_ELEMS), ("MACs", oh * ow * fh * fw * ch * nf, MAX_LAYER_MACS))
    for what, n, cap in checks:
        if n > cap:
            raise E2simError(f"{p}: line {lineno}: {n:,} {what} (at most 2^{cap.bit_length() - 1})")


def read_topology(path: str | Path) -> Topology:
    """Read a SCALE-Sim topology CSV (header line, then name and 7 integers per row, trailing comma optional)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise E2simError(f"{p}: cannot read topology ({exc})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines()[1:], start=2):
        fields = [f.strip() for f in line.split(",")]
        if fields and fields[-1] == "":
            fields = fields[:-1]
        if not fields:
            continue
        if len(fields) != 8:
            raise E2simError(f"{p}: line {lineno}: expected a name and 7 integers, got {len(fields)} fields")
        try:
            vals = [int(v) for v in fields[1:]]
        except ValueError:
            raise E2simError(f"{p}: line {lineno}: non-integer field") from None
        if min(vals) < 1:
            raise E2simError(f"{p}: line {lineno}: sizes must be positive")
        if max(vals) > MAX_DIM:
            col = COLUMNS[vals.index(max(vals))]
            raise E2simError(f"{p}: line {lineno}: {col} {max(vals)} exceeds {MAX_DIM} (2^20)")
        if vals[2] > vals[0] or vals[3] > vals[1]:
            raise E2simError(f"{p}: line {lineno}: filter larger than the IFMAP")
        _check_size(p, lineno, *vals)
        if "DP" in fields[0]:  # depthwise: one single-channel layer per channel, as SCALE-Sim expands it
            rows.extend((f"{fields[0]}Channel_{c}", *vals[:4], 1, *vals[5:]) for c in range(vals[4]))
        else:
            rows.append((fields[0], *vals))
    if not rows:
        raise E2simError(f"{p}: topology has no layers")
    return _from_rows(rows)
