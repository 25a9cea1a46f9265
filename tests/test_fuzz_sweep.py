"""Fuzzing the sweep's options (issue 15): generated lists, ranges, budgets, chunk sizes, seeds and flags
against ``e2sim sweep``, in-process. Every case ends in exit 2 with one ``e2sim: error:`` line, or exit 0
with a JSON summary of finite, non-negative numbers and a dataset holding each configuration exactly once
with finite, non-negative energy and time (tests/fuzzing.py holds the harness)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from fuzzing import CONTROL_TEXT, check, fresh_dir, fuzz_surface, invoke, json_ok

# Texts that broke or could break the range parser and the budgets (issue 15, classes 6-8).
NASTY_TEXT = ("nan", "inf", "-inf", "1e308", "-1e308", "1e-320", "-0", "0,-0", "", ",", " , ", ":", "::",
              "1:2", "0:1:0", "0:1:-0.1", "1:0:0.1", "nan:1:0.1", "0:1:inf", "0:inf:1", "0:1e308:1e-308",
              "0:0.9:1e-300", "0:0.9:1e-9", "0:0.9:1e-7", "0:0.9:1e-6", "0x10", "1_0", "a,b", "0.1,0.1",
              "16,16", "2.5", "1e3", "33", "0", "-1", "1", "0.5:0.5:1", "١٢", *CONTROL_TEXT)
FRACTIONS = st.sampled_from(("0", "0.5", "0.9", "1", "0.25"))
STEPS = st.sampled_from(("0.1", "0.25", "0.3", "0.05", "0.5"))


@st.composite
def axis_text(draw, elements: st.SearchStrategy) -> str:
    """A list, a range, or a nasty text for one axis."""
    kind = draw(st.sampled_from(("list", "list", "range", "nasty")))
    if kind == "nasty":
        return draw(st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=8)))
    if kind == "range":
        return f"{draw(elements)}:{draw(elements)}:{draw(STEPS)}"
    return ",".join(draw(st.lists(elements, min_size=1, max_size=4)))


BITS = st.sampled_from(("1", "2", "4", "6", "8", "16", "32"))
OPTIONS = {
    "--smd": axis_text(st.sampled_from(("0", "0.1", "0.5", "0.9", "0.99"))),
    "--slu-skip": axis_text(FRACTIONS),
    "--psg-fallback": axis_text(FRACTIONS),
    "--psg-msb-bits": axis_text(st.sampled_from(("1", "2", "4", "8"))),
    "--grad-bits": axis_text(BITS),
    "--precision": st.one_of(st.lists(st.sampled_from(("fp32", "int8", "fp16", "int16")), min_size=1, max_size=3)
                             .map(",".join), st.sampled_from(("", ",", "bf16", "FP32", "fp32,fp32", "int8 "))),
    "--seed": st.one_of(st.integers(0, 2**32), st.sampled_from(("-1", "2**64", "1.5", "", str(2**63), str(2**70)))),
    "--chunk-size": st.one_of(st.integers(1, 400), st.sampled_from(("0", "-5", "1e3", str(10**7), str(2**64)))),
    # small budgets keep every accepted grid small; the nasty ones must be refused
    "--max-configs": st.one_of(st.integers(1, 3000), st.sampled_from(("0", "-1", "inf", "nan", "1e3", ""))),
    "--baseline": st.sampled_from(("fp32", "int8", "signsgd", "stochastic-depth", "fp64", "")),
    "--executor": st.sampled_from(("local", "local", "local", "thread")),
}
FLAGS = ("--psg", "--csv", "--resume", "--force")


def dataset_ok(out):
    def validate(o) -> None:
        json_ok()(o)
        summary = json.loads(o.stdout)
        df = pd.read_parquet(out / "sweep.parquet")
        assert len(df) == summary["configurations"] and list(df.config_id) == list(range(len(df))), o.describe()
        for col in ("energy_j", "time_s", "iterations_executed", "baseline_energy_j",
                    *(c for c in df.columns if c.endswith("_energy_j"))):
            v = df[col].to_numpy(float)
            assert np.isfinite(v).all() and (v >= 0).all(), f"{col}: {v[:5]}\n{o.describe()}"
        assert np.isfinite(df.saving.to_numpy(float)).all() and (df.saving <= 1).all(), o.describe()

    return validate


@fuzz_surface(st.data())
def sweep_options(tmp_path_factory, data):
    out = fresh_dir(tmp_path_factory, "sweep") / "o"
    args = ["sweep", "--workload", "resnet20_cifar10", "--out", str(out), "--quiet", "--max-configs", "3000"]
    for opt, strategy in OPTIONS.items():
        if data.draw(st.integers(0, 2)) == 0:  # each option present in a third of the cases
            args += [opt, str(data.draw(strategy))]
    args += [f for f in FLAGS if data.draw(st.integers(0, 5)) == 0]
    if data.draw(st.integers(0, 249)):  # the plot only now and then (it costs ~1-2 s)
        args.append("--no-plot")
    o = invoke(args)
    check(o, dataset_ok(out))
    if o.code == 0 and data.draw(st.integers(0, 4)) == 0:
        # the same command again: refused without --resume / --force, else the same dataset
        again = data.draw(st.sampled_from(([], ["--resume"], ["--force"])))
        rest = [a for a in args if a not in FLAGS]
        o2 = invoke(rest + again)
        if not again:
            assert o2.code == 2 and "--force" in o2.stderr, o2.describe()
        check(o2, dataset_ok(out))
        if o2.code == 0:
            assert json.loads(o2.stdout)["configurations"] == json.loads(o.stdout)["configurations"]


def test_quick_set_covers_both_outcomes(tmp_path):
    """The generators reach both sides of the contract (not only refusals)."""
    ok = invoke(["sweep", "--workload", "resnet20_cifar10", "--out", tmp_path / "a", "--smd", "0:0.9:0.3",
                 "--psg-fallback", "0,1", "--quiet", "--no-plot"])
    check(ok, dataset_ok(tmp_path / "a"))
    assert ok.code == 0 and json.loads(ok.stdout)["configurations"] == 8
    bad = invoke(["sweep", "--workload", "resnet20_cifar10", "--out", tmp_path / "b", "--smd", "nan:1:0.1"])
    check(bad)
    assert bad.code == 2 and "finite" in bad.stderr
