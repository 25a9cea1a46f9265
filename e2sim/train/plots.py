"""PNG figures of training curves: one run (accuracy vs iteration and vs energy), or several overlaid on
accuracy-vs-energy axes."""
from __future__ import annotations

import io
from pathlib import Path

from ..output import write_atomic


def _evaluated(df):
    return df[df["test_accuracy"].notna()]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def _figure(ncols: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(5.5 * ncols, 4), squeeze=False)


def plot_run(rows: list[dict], path: Path, title: str) -> None:
    import pandas as pd

    ev = _evaluated(pd.DataFrame(rows))
    fig, axes = _figure(2)
    a, b = axes[0]
    a.plot(ev["iteration"], ev["test_accuracy"], marker="o")
    a.set_xlabel("scheduled iteration")
    b.plot(ev["cumulative_energy_j"], ev["test_accuracy"], marker="o")
    b.set_xlabel("cumulative estimated energy (J)")
    for ax in (a, b):
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_overlay(runs: list[tuple[str, object]], path: Path) -> None:
    """``runs``: (label, curves DataFrame) pairs, drawn on one accuracy-vs-energy axis."""
    fig, axes = _figure(1)
    ax = axes[0][0]
    for label, df in runs:
        ev = _evaluated(df)
        ax.plot(ev["cumulative_energy_j"], ev["test_accuracy"], marker="o", label=label)
    ax.set_xlabel("cumulative estimated energy (J)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
