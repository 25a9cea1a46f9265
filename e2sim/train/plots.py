"""PNG figures of training curves: one run (accuracy and loss vs iteration, accuracy vs energy), or several
runs overlaid on accuracy-vs-energy axes, each labelled with the techniques its recorded settings name."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .. import plotstyle


def technique_label(config: Mapping) -> str:
    """The techniques a run's recorded ``config`` turns on, e.g. ``"SMD p=0.5 + PSG thr 5e-05"``, or
    ``"baseline (SGD)"`` when none is."""
    parts = []
    if config.get("smd"):
        parts.append(f"SMD p={config['smd']:g}")
    if config.get("slu"):
        parts.append(f"SLU target {config.get('slu_target', 1.0):g}")
    if config.get("psg"):
        parts.append(f"PSG thr {config.get('psg_threshold', 5e-5):g}" + (" exact" if config.get("psg_exact") else ""))
    return " + ".join(parts) if parts else "baseline (SGD)"


def run_title(record: Mapping) -> str:
    """Workload, profile, techniques and schedule of one run, from its ``config.json`` record."""
    c = record["config"]
    lr = record.get("lr", c.get("lr"))
    settings = (f"{technique_label(c)}; data {c.get('data')}, {c.get('iterations')} iterations, "
                f"batch {record.get('batch_size', c.get('batch_size'))}, lr {plotstyle.format_value(lr)}, "
                f"seed {c.get('seed')}")
    return plotstyle.compose_title(c["workload"], c.get("profile"), settings)


def _evaluated(df):
    return df[df["test_accuracy"].notna()]


def plot_run(rows: list[dict], path: Path, record: Mapping) -> None:
    """``curves.png`` of one run: test accuracy and training loss against the scheduled iteration, and test
    accuracy against the cumulative estimated energy. ``record`` is the run's ``config.json`` content."""
    import pandas as pd

    df = pd.DataFrame(rows)
    ev = _evaluated(df)
    fig, (a, b, c) = plotstyle.new_figure(1, 3, figsize=(14, 4.4))
    a.plot(ev["iteration"], ev["test_accuracy"] * 100, marker="o")
    a.set_xlabel("scheduled iteration (count)")
    a.set_ylabel("test accuracy (%)")
    done = df[df["smd_dropped"] == 0]
    b.plot(done["iteration"], done["loss"], lw=0.8, color="tab:gray")
    b.set_xlabel("scheduled iteration (count)")
    b.set_ylabel("training loss (cross-entropy, nats)")
    factor, unit = plotstyle.si_scale(df["cumulative_energy_j"].max(), "J")
    c.plot(ev["cumulative_energy_j"] / factor, ev["test_accuracy"] * 100, marker="o")
    c.set_xlabel(f"cumulative estimated energy ({unit})")
    c.set_ylabel("test accuracy (%)")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
    plotstyle.finish(fig, path, title=run_title(record))


def _distinct_labels(records: list[Mapping]) -> list[str]:
    """Technique labels, extended by the settings that tell runs with equal techniques apart."""
    labels = [technique_label(r["config"]) for r in records]
    for i, lab in enumerate(labels):
        same = [j for j, other in enumerate(labels) if other == lab]
        if len(same) == 1:
            continue
        keys = sorted({k for j in same for k, v in records[j]["config"].items()
                       if v != records[same[0]]["config"].get(k)} - {"threads", "eval_every", "checkpoint_every"})
        for j in same:
            extra = ", ".join(f"{k} {plotstyle.format_value(records[j]['config'].get(k))}" for k in keys)
            labels[j] = f"{lab} ({extra})" if extra else f"{lab} (#{same.index(j) + 1})"
    return labels


def plot_overlay(runs: list[tuple[Mapping, object]], path: Path) -> None:
    """``runs``: (``config.json`` record, curves DataFrame) pairs, drawn on one accuracy-vs-energy axis; the
    legend names each run's techniques."""
    records = [r for r, _ in runs]
    factor, unit = plotstyle.si_scale(max(df["cumulative_energy_j"].max() for _, df in runs), "J")
    fig, ax = plotstyle.new_figure(1, 1, figsize=(8, 5))
    for label, (_, df) in zip(_distinct_labels(records), runs):
        ev = _evaluated(df)
        ax.plot(ev["cumulative_energy_j"] / factor, ev["test_accuracy"] * 100, marker="o", label=label)
    ax.set_xlabel(f"cumulative estimated energy ({unit})")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=plotstyle.FONT_PT - 1)

    def shared(key: str) -> str:
        vals = list(dict.fromkeys(str(r["config"].get(key)) for r in records))
        return ", ".join(vals)

    title = plotstyle.compose_title(shared("workload"), shared("profile"),
                                    f"data {shared('data')}, {shared('iterations')} iterations")
    plotstyle.finish(fig, path, title=title)
