"""Measure PSG sign prediction on a real training run (torch, CPU).

A plain fp32 model (``e2sim.train.models``) trains for a few SGD steps. At each sampled step, every conv
layer's input and output gradient are captured and, for each PSG setting, the PSG direction
(``e2sim.kernels.psg``) is compared entry by entry with

* ``sign_agreement``: the sign of the full-precision gradient PSG falls back to -- the layer's
  ``bits``-bit input with the fp32 output gradient, summed exactly (the official ``grad_q_weight``). With
  ``msb_bits == bits`` and ``grad_msb_bits == 32`` the prediction equals it, so the agreement is 1.
* ``sign_agreement_fp32``: the sign of the exact fp32 gradient of the unquantized layer (torch's
  ``weight.grad``), which also includes the forward quantization error.

Input codes are unsigned (post-ReLU activations, as the official ``input_signed=False``) except for the stem
conv, whose input is the normalised image: it is quantized signed here, where the official code would clamp
its negative half to zero. The model itself trains in fp32 with plain SGD (no PSG updates), so the statistics
describe PSG's prediction along an ordinary training trajectory.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DECILES = 10


@dataclass(frozen=True)
class ProbeSettings:
    bits: int = 8
    msb_bits: tuple[int, ...] = (4,)
    grad_msb_bits: int = 16
    thresholds: tuple[float, ...] = (5e-5,)
    steps: int = 20
    sample_every: int = 10
    batch_size: int = 128
    lr: float = 0.1  # plain SGD of the baseline schedule (reference §6): momentum 0.9, weight decay 1e-4
    seed: int = 0


def _decile_index(magnitude: np.ndarray) -> np.ndarray:
    """Equal-count magnitude deciles (0 = smallest) by rank, so ties cannot empty a bin."""
    order = np.argsort(magnitude, kind="stable")
    idx = np.empty(magnitude.size, dtype=np.int64)
    idx[order] = np.arange(magnitude.size) * DECILES // magnitude.size
    return idx


def compare_layer(x, gy, grad_fp32, conv, settings: ProbeSettings, x_signed: bool):
    """Rows (one per setting) and decile rows for one conv layer at one step."""
    from ..kernels.psg import psg_weight_grad

    kw = dict(stride=conv.stride, padding=conv.padding, groups=conv.groups, bits=settings.bits, x_signed=x_signed)
    w_shape = tuple(conv.weight.shape)
    ref = psg_weight_grad(x, gy, w_shape, msb_bits=settings.bits, grad_msb_bits=32, threshold=np.inf, **kw)
    ref_sign = ref.sign.reshape(-1)
    fp32_sign = np.sign(grad_fp32).astype(np.int8).reshape(-1)
    dec = _decile_index(np.abs(ref.full).reshape(-1))
    rows, dec_rows = [], []
    for m in settings.msb_bits:
        for t in settings.thresholds:
            r = psg_weight_grad(x, gy, w_shape, msb_bits=m, grad_msb_bits=settings.grad_msb_bits, threshold=t, **kw)
            s = r.sign.reshape(-1)
            fb = r.fallback.reshape(-1)
            agree = s == ref_sign
            key = dict(msb_bits=m, threshold=t)
            rows.append(dict(**key, tau=r.tau, weights=s.size, sign_agreement=agree.mean(),
                             sign_agreement_kept=agree[~fb].mean() if (~fb).any() else np.nan,
                             fallback_fraction=fb.mean(), sign_agreement_fp32=(s == fp32_sign).mean()))
            for d in range(DECILES):
                sel = dec == d
                dec_rows.append(dict(**key, decile=d + 1, weights=int(sel.sum()), sign_agreement=agree[sel].mean(),
                                     fallback_fraction=fb[sel].mean()))
    return rows, dec_rows


def run_probe(model, workload, dataset, settings: ProbeSettings,
              log: Callable[[str], None] = lambda s: None, quiet: bool = True):
    """Train ``model`` for ``settings.steps`` steps; returns (per-layer rows, per-decile rows) as DataFrames.

    Unless ``quiet``, a progress bar on stderr (when it is a terminal) counts training steps and layer
    comparisons (the slow part), so its remaining time holds; ``log`` lines are printed above it."""
    import pandas as pd
    import torch
    from torch import nn

    from .. import progress
    from .data import batches

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    roles = {layer.name: layer.role for layer in workload.layers}
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    unknown = [name for name, _ in convs if name not in roles]
    if unknown:
        from ..errors import E2simError

        raise E2simError(f"model conv layers {unknown[:3]} are not layers of workload {workload.name}")
    captured: dict[str, dict[str, np.ndarray]] = {}
    capture = [False]

    def hook(name):
        def fwd(module, inputs, output):
            if capture[0]:
                captured[name] = {"x": inputs[0].detach().numpy().copy()}
                output.register_hook(lambda g: captured[name].__setitem__("gy", g.detach().numpy().copy()))
        return fwd

    handles = [m.register_forward_hook(hook(name)) for name, m in convs]
    opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    it = batches(dataset.x_train, dataset.y_train, settings.batch_size, rng)
    rows, dec_rows = [], []
    sampled = settings.steps // settings.sample_every
    bar = progress.bar(total=settings.steps + sampled * len(convs), desc="psg-accuracy (steps + layer comparisons)",
                       unit="task", quiet=quiet)
    if progress.enabled(quiet):
        plain_log = log

        def log(msg: str) -> None:  # lift the bar, print the line, redraw the bar below it
            with bar.external_write_mode(file=sys.stderr):
                plain_log(msg)
    model.train()
    try:
        for step in range(1, settings.steps + 1):
            xb, yb = next(it)
            capture[0] = step % settings.sample_every == 0
            captured.clear()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            if capture[0]:
                log(f"step {step}/{settings.steps}: loss {loss.item():.4f}, comparing {len(convs)} conv layers")
                for name, conv in convs:
                    c = captured[name]
                    r, d = compare_layer(c["x"], c["gy"], conv.weight.grad.numpy(), conv, settings,
                                         x_signed=roles[name] == "stem")
                    base = dict(workload=workload.name, step=step, layer=name, bits=settings.bits,
                                grad_msb_bits=settings.grad_msb_bits)
                    rows += [{**base, **x} for x in r]
                    dec_rows += [{**base, **x} for x in d]
                    bar.update()
            opt.step()
            bar.update()
    finally:
        bar.close()
        for h in handles:
            h.remove()
    cols = ["workload", "step", "layer", "bits", "msb_bits", "grad_msb_bits", "threshold"]
    table = pd.DataFrame(rows)
    table = table[cols + [c for c in table.columns if c not in cols]]
    deciles = pd.DataFrame(dec_rows)
    deciles = deciles[cols + [c for c in deciles.columns if c not in cols]]
    return table, deciles


def _layer_means(table):
    """Per layer (rows, in model order) x setting (columns ``(msb_bits, threshold)``): mean over the sampled
    steps of sign agreement and fallback fraction, in %."""
    mean = table.groupby(["layer", "msb_bits", "threshold"], sort=False)[
        ["sign_agreement", "fallback_fraction"]].mean() * 100
    layers = list(dict.fromkeys(table["layer"]))
    return {col: mean[col].unstack(["msb_bits", "threshold"]).reindex(layers).sort_index(axis=1)
            for col in ("sign_agreement", "fallback_fraction")}


def plot_title(workload: str, data: str, settings: ProbeSettings) -> str:
    from ..plotstyle import compose_title

    return compose_title(workload, f"data {data}", {
        "steps": settings.steps, "sampled every": settings.sample_every, "batch": settings.batch_size,
        "input bits": settings.bits, "MSB bits": settings.msb_bits, "grad MSB bits": settings.grad_msb_bits,
        "threshold": settings.thresholds, "seed": settings.seed})


def plot(table, title: str) -> bytes:
    """PNG: each conv layer's mean sign agreement and fallback fraction (%), one row per layer.

    One setting: a dot per layer on a zoomed axis. Several (a sweep of MSB bits or thresholds): heat maps with a
    column per setting, each cell annotated, the column label giving the mean over layers."""
    from .. import plotstyle

    grids = _layer_means(table)
    agree, fall = grids["sign_agreement"], grids["fallback_fraction"]
    layers = list(agree.index)
    settings = list(agree.columns)
    # one text line per layer at the tick size: about 0.16 in a row
    height = 1.6 + 0.16 * len(layers)
    ypos = np.arange(len(layers))
    if len(settings) == 1:
        # dot plots on a zoomed axis: agreements of 93-98 % or fallbacks under 2 % must stay distinguishable
        fig, axes = plotstyle.new_figure(1, 2, figsize=(10, height), sharey=True)
        for ax, grid, name, color in ((axes[0], agree, "sign agreement", "tab:blue"),
                                      (axes[1], fall, "fallback fraction", "tab:orange")):
            vals = grid.iloc[:, 0].to_numpy()
            ax.plot(vals, ypos, "o", color=color, ms=5, clip_on=False)
            m = np.nanmean(vals)
            ax.axvline(m, color="k", lw=1, ls="--")
            ax.set_title(f"mean over layers {m:.2f} % (dashed)")
            ax.set_xlabel(f"{name} (%)")
            ax.margins(x=0.08)
            lo, hi = ax.get_xlim()
            ax.set_xlim(max(0.0, lo), min(100.0, hi) if hi > lo else lo + 1)
            ax.grid(alpha=0.3)
        axes[0].set_yticks(ypos, layers)
        axes[0].set_ylim(len(layers) - 0.5, -0.5)  # first layer on top, no empty margin
        axes[0].set_ylabel("conv layer (model order)")
        return plotstyle.to_png(fig, title=title)
    # few settings: three-line column labels, horizontal; many: one line each, vertical
    vertical = len(settings) > 6
    width = 3.5 + 2 * (0.28 if vertical else 0.8) * len(settings)
    fig, axes = plotstyle.new_figure(1, 2, figsize=(width, height + (1.6 if vertical else 0.4)), sharey=True)
    sep = ", " if vertical else "\n"
    labels = [f"msb {m}{sep}thr {t:g}" for m, t in settings]
    annotate = len(settings) <= 12
    for ax, grid, name, cmap in ((axes[0], agree, "sign agreement", "viridis"),
                                 (axes[1], fall, "fallback fraction", "magma")):
        vals = grid.to_numpy()
        # colours span the data, not 0-100 %: agreements of 93-98 % must not all look alike
        lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        im = ax.imshow(vals, aspect="auto", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        digits = 1 if hi - lo < 10 else 0
        means = np.nanmean(vals, axis=0)
        ax.set_xticks(np.arange(len(settings)), [f"{lab}{sep}mean {v:.1f}" for lab, v in zip(labels, means)],
                      rotation=90 if vertical else 0)
        ax.set_xlabel("setting (MSB input bits, threshold)")
        cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
        cb.set_label(f"{name} (%)")
        plotstyle.style_axes(cb.ax)
        if annotate:
            for (i, j), v in np.ndenumerate(vals):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.{digits}f}", ha="center", va="center", fontsize=plotstyle.MIN_FONT_PT,
                            color="white" if (v - lo) / (hi - lo) < 0.55 else "black")  # both maps: dark to light
        ax.set_title(f"{name} (%)")
    axes[0].set_yticks(ypos, layers)
    axes[0].set_ylabel("conv layer (model order)")
    return plotstyle.to_png(fig, title=title)


def fallback_by_layer(table, msb_bits: int, threshold: float) -> dict[str, float]:
    sel = table[(table.msb_bits == msb_bits) & (table.threshold == threshold)]
    return {k: float(v) for k, v in sel.groupby("layer", sort=False)["fallback_fraction"].mean().items()}


def settings_grid(settings: ProbeSettings) -> Sequence[tuple[int, float]]:
    return [(m, t) for m in settings.msb_bits for t in settings.thresholds]
