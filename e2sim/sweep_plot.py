"""The sweep's plot: the energy saving over the swept settings, from a bounded slice of the grid.

Without an accuracy axis an energy/time scatter is a line (both scale with the same executed work), so the
plot shows what a sweep answers: the saving against the baseline as a heat map over the two settings with
the most values (the other settings held at their first value, named in the title), or as a curve over the
one swept setting. At most :data:`MAX_CELLS` values per axis are drawn (every k-th of the swept values),
evaluated from the precomputed tables: the plot never reads the dataset, whatever its size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .plotstyle import FONT_PT, MIN_FONT_PT, compose_title, finish, new_figure, style_axes
from .sweep import AXES, SweepSpec, Tables, evaluate_columns

MAX_CELLS = 60  # values per plotted axis
ANNOTATE_CELLS = 12  # write the saving in each cell when both axes have at most this many values

LABELS = {
    "precision": "precision",
    "psg_msb_bits": "PSG predictor input MSB width (bits)",
    "grad_bits": "PSG output-gradient width (bits)",
    "slu_skip": "SLU skip ratio (fraction of samples per block)",
    "psg_fallback": "PSG fallback fraction (of weight-gradient entries)",
    "smd": "SMD drop rate (fraction of iterations)",
}
SHORT = {"precision": "precision", "psg_msb_bits": "PSG MSB bits", "grad_bits": "PSG grad bits",
         "slu_skip": "SLU skip", "psg_fallback": "PSG fallback", "smd": "SMD"}


def _picks(n: int) -> np.ndarray:
    """Every k-th of n values, at most MAX_CELLS: an even stride keeps evenly spaced values even."""
    return np.arange(0, n, -(-n // MAX_CELLS))


def _fmt(v) -> str:
    return v if isinstance(v, str) else f"{v:g}"


def plotted_axes(spec: SweepSpec) -> list[str]:
    """The (at most two) swept settings the plot spans: those with the most values, in AXES order on ties."""
    swept = [a for a in AXES if spec.active(a) and len(getattr(spec, a)) > 1]
    return sorted(swept, key=lambda a: -len(getattr(spec, a)))[:2]


def saving_grid(spec: SweepSpec, tables: Tables, axes: list[str]):
    """(picked indices per plotted axis, saving in % shaped like them): the other axes at index 0."""
    picks = [_picks(len(getattr(spec, a))) for a in axes]
    index = [np.zeros(1, int) for _ in AXES]
    for a, p in zip(axes, picks):
        index[AXES.index(a)] = p
    mesh = np.meshgrid(*index, indexing="ij")
    ids = np.ravel_multi_index([m.reshape(-1) for m in mesh], spec.shape)
    saving = evaluate_columns(spec, tables, ids)["saving"] * 100
    order = [AXES.index(a) for a in axes]
    shaped = saving.reshape([len(i) for i in index])
    shaped = shaped.squeeze(axis=tuple(i for i in range(len(AXES)) if i not in order))
    if len(order) == 2 and order[0] > order[1]:
        shaped = shaped.T
    return picks, shaped


def title(spec: SweepSpec, tables: Tables, axes: list[str]) -> str:
    def first(a: str):  # the held value; a gradient width left to the precision is the one it resolves to
        v = getattr(spec, a)[0]
        return int(tables.grad_bits[0, 0]) if a == "grad_bits" and v is None else v

    held = [f"{SHORT[a]} {_fmt(first(a))}" for a in AXES if spec.active(a) and a not in axes]
    what = f"energy saving vs the {spec.baseline} baseline ({tables.baseline_energy_j / 3.6e6:.3g} kWh)"
    return compose_title(tables.workload_name or spec.workload, spec.profile,
                         what + ("; held at " + ", ".join(held) if held else ""))


def plot_saving(spec: SweepSpec, tables: Tables, path: Path) -> Path:
    axes = plotted_axes(spec)
    picks, saving = saving_grid(spec, tables, axes)
    fig, ax = new_figure(figsize=(7.5, 5.2))
    if len(axes) == 2:
        _heatmap(fig, ax, spec, axes, picks, saving)
    else:
        _curve(ax, spec, tables, axes, picks, saving)
    return finish(fig, path, title=title(spec, tables, axes))


def _ticks(values, picks, limit: int = 10):
    """Tick positions (cell indices) and labels: at most ``limit``, every k-th cell from the first (an even
    stride, so evenly spaced values get evenly spaced labels)."""
    pos = np.arange(0, len(picks), -(-len(picks) // limit))
    return pos, [_fmt(values[picks[i]]) for i in pos]


def _heatmap(fig, ax, spec, axes, picks, saving) -> None:
    xa, ya = axes  # the axis with the most values along x (the wider side)
    grid = saving.T  # rows: y values
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    for which, a, p in (("x", xa, picks[0]), ("y", ya, picks[1])):
        pos, labels = _ticks(getattr(spec, a), p)
        getattr(ax, f"set_{which}ticks")(pos, labels)
        getattr(ax, f"set_{which}label")(LABELS[a])
    if len(picks[0]) <= ANNOTATE_CELLS and len(picks[1]) <= ANNOTATE_CELLS:
        mid = np.nanmean(grid)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=MIN_FONT_PT,
                        color="white" if grid[i, j] < mid else "black")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("energy saving (%)", fontsize=FONT_PT)
    style_axes(cb.ax)


def _pct(values) -> list[str]:
    return [f"{v:.1f} %" for v in np.round(np.ravel(values), 1) + 0.0]  # + 0.0: no "-0.0 %"


def _curve(ax, spec, tables, axes, picks, saving) -> None:
    base = tables.baseline_energy_j / 3.6e6
    if not axes:  # a single configuration
        bars = ax.bar([0], saving, width=0.5)
        ax.bar_label(bars, labels=_pct(saving), fontsize=FONT_PT)
        ax.set_xticks([0], ["this configuration"])
    elif axes[0] == "precision":
        labels = [spec.precision[i] for i in picks[0]]
        bars = ax.bar(range(len(labels)), saving, width=0.6)
        ax.bar_label(bars, labels=_pct(saving), fontsize=FONT_PT)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(LABELS["precision"])
    else:
        x = np.asarray(getattr(spec, axes[0]), float)[picks[0]]
        ax.plot(x, saving, "o-", ms=3)
        ax.set_xlabel(LABELS[axes[0]])
    ax.set_ylabel("energy saving (%)")
    ax.axhline(0, color="0.5", lw=0.8)
    lo, hi = min(0.0, float(np.min(saving))), max(0.0, float(np.max(saving)))
    pad = max(5.0, 0.1 * (hi - lo))  # a flat or single value still gets a readable range
    ax.set_ylim(lo - pad, hi + pad)
    # The same values as energy: a twin axis whose limits are the saving limits mapped to kWh (linear).
    sec = ax.twinx()
    y0, y1 = ax.get_ylim()
    sec.set_ylim(base * (1 - y0 / 100), base * (1 - y1 / 100))
    sec.set_ylabel("training energy (kWh)", fontsize=FONT_PT)
    style_axes(sec)
    ax.grid(alpha=0.3)
