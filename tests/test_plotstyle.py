"""The shared plot style: its readability check catches small and cut-off text, titles are composed and
wrapped, and figures are written as PNG."""
from __future__ import annotations

import pytest

from e2sim import plotstyle


def _fig():
    fig, ax = plotstyle.new_figure()
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("power (W)")
    return fig, ax


def test_a_plain_figure_has_no_problems_and_is_written(tmp_path):
    fig, _ = _fig()
    with plotstyle.captured() as figs:
        path = plotstyle.finish(fig, tmp_path / "a.png", title="resnet20_cifar10 · zedboard")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figs == [fig] and fig.get_suptitle() == "resnet20_cifar10 · zedboard"
    assert plotstyle.problems(fig) == []


def test_small_text_is_reported():
    fig, ax = _fig()
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    ax.tick_params(labelsize=5)
    found = plotstyle.problems(fig)
    assert any("'tiny': 6 pt" in p for p in found)
    assert any("5 pt" in p for p in found)  # tick labels


def test_text_outside_the_figure_is_reported():
    fig, ax = _fig()
    fig.text(0.98, 0.5, "cut off at the right edge")
    found = plotstyle.problems(fig)
    assert any("'cut off at the right edge': extends outside" in p for p in found)


def test_axis_label_cut_off_without_layout_is_reported():
    # the psg-accuracy bug: a long y-label on a figure with no layout engine loses its left part
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.set_position([0.02, 0.1, 0.9, 0.8])
    ax.set_ylabel("a long label that cannot fit left of the axes (W)")
    found = plotstyle.problems(fig)
    plt.close(fig)
    assert any("decorations extend outside" in p for p in found)


def test_compose_title():
    t = plotstyle.compose_title("resnet74_cifar10", "zedboard", {"bits": 8, "threshold": 5e-5, "psg": True,
                                                                 "msb_bits": (2, 4), "seed": None})
    assert t == "resnet74_cifar10 · zedboard · bits=8, threshold=5e-05, psg=on, msb_bits=2,4"
    assert plotstyle.compose_title("w", None, "SMD p=0.5") == "w · SMD p=0.5"


def test_long_titles_wrap_to_fit():
    fig, _ = _fig()
    long = plotstyle.compose_title("resnet110_cifar100", "zedboard", {f"setting_{i}": i for i in range(20)})
    with plotstyle.captured() as figs:
        plotstyle.to_png(fig, title=long)
    assert "\n" in figs[0].get_suptitle()
    assert plotstyle.problems(figs[0]) == []


def test_a_title_is_required():
    fig, _ = _fig()
    with pytest.raises(ValueError):
        plotstyle.to_png(fig, title="")


def test_overlapping_tick_labels_are_reported():
    fig, ax = plotstyle.new_figure(figsize=(3, 3))
    ax.set_xticks(range(12), [f"setting number {i}" for i in range(12)])
    assert any("overlap" in p for p in plotstyle.problems(fig))
    ax.set_xticks(range(12), [f"setting number {i}" for i in range(12)], rotation=90)
    assert not any("overlap" in p for p in plotstyle.problems(fig))


@pytest.mark.parametrize("largest,unit,factor,label", [
    (4.086452e6, "J", 1e6, "MJ"), (999.0, "J", 1.0, "J"), (1000.0, "J", 1e3, "kJ"), (0.0, "W", 1.0, "W"),
    (2.5e-3, "W", 1e-3, "mW"), (-3e9, "J", 1e9, "GJ")])
def test_si_scale(largest, unit, factor, label):
    assert plotstyle.si_scale(largest, unit) == (factor, label)


def test_every_png_goes_through_plotstyle():
    # a figure saved elsewhere would skip the title, sizes and layout that this module enforces
    from pathlib import Path

    pkg = Path(plotstyle.__file__).parent
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                 if p.name != "plotstyle.py" and ".savefig(" in p.read_text()]
    assert offenders == []
