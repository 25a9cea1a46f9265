"""Every PNG e2sim writes, rendered on tiny inputs: readable at 100 % (plotstyle.problems finds no text under
8 pt, nothing outside the figure, no overlapping tick labels), titled with workload, profile and settings,
axes labelled with units; and each plot's own content (layers shown, legend names, trace scale)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from e2sim import plotstyle
from e2sim.train.curves import CURVE_COLUMNS
from e2sim.train.plots import plot_overlay, plot_run, technique_label
from e2sim.train.psg_probe import ProbeSettings, plot, plot_title
from e2sim.validation.compare import trace_png, trace_title
from e2sim.validation.estimate_file import EstimateRecord
from e2sim.workload_files import load_workload


def _render(fn, *args, **kw):
    with plotstyle.captured() as figs:
        out = fn(*args, **kw)
    (fig,) = figs
    assert plotstyle.problems(fig) == []
    return fig, out


def _labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


CONVS = [layer.name for layer in load_workload("resnet20_cifar10").layers if layer.kind == "conv"]


def _probe_table(msb, thr):
    rng = np.random.default_rng(1)
    return pd.DataFrame([dict(workload="resnet20_cifar10", step=s, layer=c, msb_bits=m, threshold=t,
                              sign_agreement=rng.uniform(0.5, 1), fallback_fraction=rng.uniform(0, 1))
                         for s in (10, 20) for c in CONVS for m in msb for t in thr])


@pytest.mark.parametrize("msb,thr", [((4,), (5e-5,)), ((2, 4), (0.0, -0.05)), ((2, 3, 4, 5, 6), (0.0, 5e-5, -0.05))])
def test_psg_accuracy_plot_shows_every_layer(msb, thr):
    table = _probe_table(msb, thr)
    settings = ProbeSettings(msb_bits=msb, thresholds=thr, steps=20, sample_every=10, batch_size=8)
    fig, png = _render(plot, table, plot_title("resnet20_cifar10", "digits", settings))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    title = fig.get_suptitle().replace("\n", " ")
    assert title.startswith("resnet20_cifar10 · data digits ·") and "batch=8" in title
    assert f"MSB bits={','.join(map(str, msb))}" in title
    data_axes = fig.axes[:2]  # the two panels; colorbars follow
    assert [t.get_text() for t in data_axes[0].get_yticklabels()] == CONVS  # each layer named, in model order
    assert all("(%)" in (x + " " + a.get_title() + " " + y) for a, (x, y) in zip(data_axes, _labels(fig)))
    # the plotted values are the per-layer means over the sampled steps, in %
    mean = table.groupby(["layer", "msb_bits", "threshold"]).sign_agreement.mean() * 100
    first = mean.loc[(CONVS[0], min(msb), min(thr))]
    if len(msb) * len(thr) == 1:
        assert data_axes[0].lines[0].get_xdata()[0] == pytest.approx(first)
    else:
        assert data_axes[0].images[0].get_array()[0, 0] == pytest.approx(first)
        assert all("(%)" in ax.get_ylabel() for ax in fig.axes[2:])  # colorbars


def _curve_rows(n=6, energy_per_it=1.5e3):
    rows = []
    for i in range(1, n + 1):
        row = dict.fromkeys(CURVE_COLUMNS, np.nan)
        row.update(iteration=i, smd_dropped=int(i % 3 == 0), loss=2.0 / i, lr=0.1, cumulative_energy_j=i * energy_per_it,
                   test_accuracy=0.1 * i if i % 2 == 0 else np.nan)
        rows.append(row)
    return rows


RECORD = {"config": {"workload": "resnet20_cifar10", "data": "digits", "iterations": 6, "smd": 0.5, "slu": True,
                     "slu_target": 0.5, "psg": False, "seed": 3, "profile": "zedboard", "lr": None},
          "batch_size": 128, "lr": 0.1}


def test_train_run_plot(tmp_path):
    fig, _ = _render(plot_run, _curve_rows(), tmp_path / "curves.png", RECORD)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    title = fig.get_suptitle().replace("\n", " ")
    assert title.startswith("resnet20_cifar10 · zedboard · SMD p=0.5 + SLU target 0.5;")
    assert "6 iterations" in title and "batch 128" in title and "seed 3" in title
    assert _labels(fig) == [("scheduled iteration (count)", "test accuracy (%)"),
                            ("scheduled iteration (count)", "training loss (cross-entropy, nats)"),
                            ("cumulative estimated energy (kJ)", "test accuracy (%)")]
    x, y = fig.axes[2].lines[0].get_data()
    assert list(x) == pytest.approx([3.0, 6.0, 9.0]) and list(y) == pytest.approx([20, 40, 60])


def test_technique_labels():
    assert technique_label({"smd": 0.0, "slu": False, "psg": False}) == "baseline (SGD)"
    assert technique_label({"smd": 0.5, "psg": True, "psg_threshold": -0.1}) == "SMD p=0.5 + PSG thr -0.1"


def test_curves_legend_names_the_techniques(tmp_path):
    base = {**RECORD["config"], "smd": 0.0, "slu": False}
    runs = [({"config": base}, pd.DataFrame(_curve_rows())),
            ({"config": {**base, "psg": True, "psg_threshold": 5e-5}}, pd.DataFrame(_curve_rows(energy_per_it=500))),
            ({"config": {**base, "smd": 0.5, "seed": 0}}, pd.DataFrame(_curve_rows(energy_per_it=800))),
            ({"config": {**base, "smd": 0.5, "seed": 1}}, pd.DataFrame(_curve_rows(energy_per_it=800)))]
    fig, _ = _render(plot_overlay, runs, tmp_path / "cmp.png")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["baseline (SGD)", "PSG thr 5e-05", "SMD p=0.5 (seed 0)", "SMD p=0.5 (seed 1)"]
    assert fig.get_suptitle().startswith("resnet20_cifar10 · zedboard · data digits, 6 iterations")
    assert _labels(fig) == [("cumulative estimated energy (kJ)", "test accuracy (%)")]


def _log_and_windows():
    t = np.arange(0, 20, 0.01)
    p = np.where((t >= 5) & (t < 15), 4.0, 2.5)
    log = pd.DataFrame({"timestamp_s": t, "rail": "5V", "power_W": p})
    windows = pd.DataFrame([{"mark": 1, "rail": "5V", "t_start_s": 5.0, "t_end_s": 15.0, "duration_s": 10.0,
                             "energy_j": 40.0, "idle_w": 2.5}])
    return log, windows


@pytest.mark.parametrize("energy_j,time_s,on_scale", [(4.086452e6, 1.88e6, True), (4.086452e6, 2.0, False)])
def test_validate_trace_is_scaled_to_the_window(energy_j, time_s, on_scale):
    log, windows = _log_and_windows()
    est = EstimateRecord(energy_j=energy_j, time_s=time_s, workload="resnet74_cifar10", profile="zedboard",
                         breakdown_j={"mac": 1, "sram": 1, "dram": 1, "static": 1}, configuration="SMD",
                         precision="fp32", iterations_scheduled=64000)
    fig, _ = _render(trace_png, log, windows, est, trace_title(est, "log.csv", "est.json"))
    ax = fig.axes[0]
    assert fig.get_suptitle().startswith("resnet74_cifar10 · zedboard · SMD, precision fp32, 64000 iterations")
    assert _labels(fig)[0][1] == "power (W)" and _labels(fig)[0][0].startswith("time (s)")
    lo, hi = ax.get_ylim()
    assert lo == 0 and 4.0 < hi < 5.0  # the measured 4 W fills the axis
    notes = " ".join(" ".join(t.get_text() for t in ax.texts).split())
    assert "estimate: 4.09 MJ" in notes and "mark 1: 40 J over 10.0 s, mean 4 W" in notes  # summary.fmt_time: 3 digits
    est_w = energy_j / time_s
    dashed = [c for c in ax.collections if c.get_label() == "estimate: mean power"]
    if on_scale:
        assert est_w == pytest.approx(2.17, rel=0.01) and "off this scale" not in notes
        assert dashed[0].get_segments()[0][0][1] == pytest.approx(est_w)
    else:
        assert not dashed and "mean 2.04 MW (off this scale)" in notes
