"""Measure PSG sign prediction on a real training run (torch, CPU).

A plain fp32 model (``e2sim.train.models``) trains for a few SGD steps. At each sampled step, every conv
layer's input and output gradient are captured and, for each PSG setting, the PSG direction
(``e2sim.kernels.psg``) is compared entry by entry with

* ``sign_agreement``: the sign of the full-precision gradient PSG falls back to -- the layer's
  ``bits``-bit input with the fp32 output gradient, summed exactly (the official ``grad_q_weight``). With
  ``msb_bits == bits`` and ``grad_msb_bits == 32`` the prediction equals it, so the agreement is 1.
* ``sign_agreement_fp32``: the sign of the exact fp32 gradient of the unquantized layer (torch's
  ``weight.grad``), which also includes the forward quantization error.
"""
from __future__ import annotations

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
              progress: Callable[[str], None] = lambda s: None):
    """Train ``model`` for ``settings.steps`` steps; returns (per-layer rows, per-decile rows) as DataFrames."""
    import pandas as pd
    import torch
    from torch import nn

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
                progress(f"step {step}/{settings.steps}: loss {loss.item():.4f}, comparing {len(convs)} conv layers")
                for name, conv in convs:
                    c = captured[name]
                    r, d = compare_layer(c["x"], c["gy"], conv.weight.grad.numpy(), conv, settings,
                                         x_signed=roles[name] == "stem")
                    base = dict(workload=workload.name, step=step, layer=name, bits=settings.bits,
                                grad_msb_bits=settings.grad_msb_bits)
                    rows += [{**base, **x} for x in r]
                    dec_rows += [{**base, **x} for x in d]
            opt.step()
    finally:
        for h in handles:
            h.remove()
    cols = ["workload", "step", "layer", "bits", "msb_bits", "grad_msb_bits", "threshold"]
    table = pd.DataFrame(rows)
    table = table[cols + [c for c in table.columns if c not in cols]]
    deciles = pd.DataFrame(dec_rows)
    deciles = deciles[cols + [c for c in deciles.columns if c not in cols]]
    return table, deciles


def plot(table, path, msb_swept: bool, thr_swept: bool) -> bytes:
    """PNG: mean sign agreement and fallback fraction vs the swept setting (per layer when none is)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if msb_swept or thr_swept:
        xkey, lkey = ("msb_bits", "threshold") if msb_swept else ("threshold", "msb_bits")
        mean = table.groupby([lkey, xkey])[["sign_agreement", "fallback_fraction"]].mean().reset_index()
        for lval, grp in mean.groupby(lkey):
            xs = grp[xkey].to_numpy()
            xpos = xs if xkey == "msb_bits" else np.arange(len(xs))
            for ax, col in zip(axes, ("sign_agreement", "fallback_fraction")):
                ax.plot(xpos, grp[col], marker="o", label=f"{lkey}={lval:g}")
                if xkey == "threshold":
                    ax.set_xticks(xpos, [f"{v:g}" for v in xs])
        for ax in axes:
            ax.set_xlabel(xkey)
            ax.legend(fontsize=7)
    else:
        mean = table.groupby("layer", sort=False)[["sign_agreement", "fallback_fraction"]].mean()
        for ax, col in zip(axes, ("sign_agreement", "fallback_fraction")):
            ax.bar(np.arange(len(mean)), mean[col])
            ax.set_xticks(np.arange(len(mean)), mean.index, rotation=90, fontsize=6)
    axes[0].set_ylabel("sign agreement (mean over layers and steps)")
    axes[1].set_ylabel("fallback fraction")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def fallback_by_layer(table, msb_bits: int, threshold: float) -> dict[str, float]:
    sel = table[(table.msb_bits == msb_bits) & (table.threshold == threshold)]
    return {k: float(v) for k, v in sel.groupby("layer", sort=False)["fallback_fraction"].mean().items()}


def settings_grid(settings: ProbeSettings) -> Sequence[tuple[int, float]]:
    return [(m, t) for m in settings.msb_bits for t in settings.thresholds]
