"""The shared look of every PNG e2sim writes: sizes, layout, the title, and a check that nothing is cut off.

Every plot goes through :func:`new_figure` and :func:`finish` (or :func:`to_png`), so all figures have
readable text at 100 % (nothing below :data:`MIN_FONT_PT`), a layout that keeps labels inside the figure,
and a title that says what was computed (workload, profile, settings; see :func:`compose_title`).
:func:`problems` lists what breaks those rules; tests call it on each figure. matplotlib is imported
lazily (the estimate path never pays for it) and always with the non-interactive Agg backend.
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MIN_FONT_PT = 8.0  # the smallest text readable at 100 % on a 96-110 dpi screen
FONT_PT = 10.0  # axis labels, legends, annotations
TICK_PT = 9.0
TITLE_PT = 11.0
DPI = 110
SEPARATOR = " · "

_captures: list[list] = []


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **subplots_kw):
    """``(fig, axes)`` as :func:`matplotlib.pyplot.subplots` returns them, with constrained layout (labels
    never cut off) and e2sim's tick and label sizes. ``figsize`` in inches; default 5.5 x 4 per panel."""
    plt = _plt()
    if figsize is None:
        figsize = (max(6.0, 5.5 * ncols), 1.0 + 3.6 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, dpi=DPI, layout="constrained", **subplots_kw)
    for ax in fig.axes:
        style_axes(ax)
    return fig, axes


def style_axes(ax) -> None:
    """e2sim's sizes on one axes (for axes added after :func:`new_figure`, e.g. a colorbar's)."""
    ax.tick_params(labelsize=TICK_PT)
    ax.xaxis.label.set_fontsize(FONT_PT)
    ax.yaxis.label.set_fontsize(FONT_PT)
    ax.title.set_fontsize(FONT_PT)


def colors() -> list[str]:
    """The colour cycle every figure uses (matplotlib's default)."""
    return _plt().rcParams["axes.prop_cycle"].by_key()["color"]


def format_value(v: Any) -> str:
    """A setting's value as a title shows it: floats short (``5e-05``), flags on/off, lists comma-joined."""
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(format_value(x) for x in v)
    return str(v)


def compose_title(workload: str | None, profile: str | None = None,
                  settings: Mapping[str, Any] | str | None = None) -> str:
    """``"resnet20_cifar10 · zedboard · bits=8, msb_bits=4"``: what the figure shows, in one line.

    ``settings`` is a mapping (``None`` values are left out) or ready text."""
    parts = [p for p in (workload, profile) if p]
    if isinstance(settings, Mapping):
        settings = ", ".join(f"{k}={format_value(v)}" for k, v in settings.items() if v is not None)
    if settings:
        parts.append(settings)
    return SEPARATOR.join(parts)


_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
             (1e-12, "p"))


def si_scale(largest: float, unit: str) -> tuple[float, str]:
    """``(factor, prefixed unit)`` so that ``values / factor`` reads in plain numbers: ``si_scale(4e6, "J")``
    is ``(1e6, "MJ")``. ``largest`` is the largest magnitude to show."""
    import math

    largest = abs(largest)
    if not math.isfinite(largest) or largest == 0:
        return 1.0, unit
    for factor, prefix in _PREFIXES:
        if largest >= factor:
            return factor, prefix + unit
    return _PREFIXES[-1][0], _PREFIXES[-1][1] + unit


def _wrap(text: str, fig) -> str:
    """Break a long title into lines that fit the figure width (about 0.6 em per character)."""
    width_chars = max(20, int(fig.get_figwidth() * 72 / (0.6 * TITLE_PT)))
    return "\n".join(textwrap.fill(line, width_chars) for line in text.splitlines())


def to_png(fig, *, title: str) -> bytes:
    """The figure as PNG bytes, with ``title`` (wrapped to the figure width) on top; the figure is closed."""
    plt = _plt()
    if not title:
        raise ValueError("every e2sim figure needs a title")
    fig.suptitle(_wrap(title, fig), fontsize=TITLE_PT)
    for c in _captures:
        c.append(fig)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return buf.getvalue()


def finish(fig, path: str | Path, *, title: str) -> Path:
    """Title the figure, write it to ``path`` as PNG atomically, close it; returns ``path``."""
    from .output import write_atomic

    return write_atomic(path, to_png(fig, title=title))


def _overlaps(ax, axis, labels, renderer) -> list[str]:
    """Tick labels of one axis, drawn within the axes' span, that overlap their neighbour."""
    span = ax.get_window_extent(renderer)
    horizontal = axis is ax.xaxis
    drawn = []
    for t in labels:
        if not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        c = (bb.x0 + bb.x1) / 2 if horizontal else (bb.y0 + bb.y1) / 2
        lo, hi = (span.x0, span.x1) if horizontal else (span.y0, span.y1)
        if lo - 1 <= c <= hi + 1:
            drawn.append((c, bb, t.get_text()))
    drawn.sort(key=lambda d: d[0])
    out = []
    for (_, a, ta), (_, b, tb) in zip(drawn, drawn[1:]):
        gap = b.x0 - a.x1 if horizontal else b.y0 - a.y1
        if gap < -1.0 and a.overlaps(b):
            out.append(f"tick labels {ta[:30]!r} and {tb[:30]!r} overlap")
    return out


@contextmanager
def captured() -> Iterator[list]:
    """For tests: the list of figures that :func:`to_png` / :func:`finish` render inside the block (closed,
    but still holding their artists; pass them to :func:`problems`)."""
    figs: list = []
    _captures.append(figs)
    try:
        yield figs
    finally:
        _captures.remove(figs)


def problems(fig, min_font_pt: float = MIN_FONT_PT) -> list[str]:
    """What makes ``fig`` hard to read at 100 %: visible text smaller than ``min_font_pt``, text or axes
    decorations (tick labels, axis labels) whose extent leaves the figure, and tick labels that overlap
    their neighbours. Empty when all is well.

    Draws the figure again; works on figures :func:`captured` collected."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    if not isinstance(fig.canvas, FigureCanvasAgg):  # a closed figure keeps only a bare canvas
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    tol = 1.0  # pixels: rounding of the extents

    def outside(bb) -> bool:
        return bb.x0 < box.x0 - tol or bb.y0 < box.y0 - tol or bb.x1 > box.x1 + tol or bb.y1 > box.y1 + tol

    out = []
    tick_labels = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels(which="both")
            tick_labels.update(id(t) for t in labels)
            out += _overlaps(ax, axis, labels, renderer)
        bb = ax.get_tightbbox(renderer)
        if bb is not None and outside(bb):
            out.append(f"axes {ax.get_label() or ax.get_title() or id(ax)}: decorations extend outside the figure "
                       f"({bb} vs {box})")
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        if t.get_fontsize() < min_font_pt:
            out.append(f"text {t.get_text()[:40]!r}: {t.get_fontsize():g} pt < {min_font_pt:g} pt")
        # tick labels are checked through their axes' tight box (those outside the view are not drawn)
        if id(t) not in tick_labels and outside(t.get_window_extent(renderer)):
            out.append(f"text {t.get_text()[:40]!r}: extends outside the figure")
    return out
