"""Fuzzing the CLI's input surfaces (issue 15): generated workload and profile YAML, CLI options, topology
CSV, power logs, calibrate sidecars, stats files and checkpoints. Every case must end in exit 2 with one
``e2sim: error:`` line, or exit 0 with finite, non-negative results (tests/fuzzing.py holds the harness)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import yaml
from hypothesis import strategies as st

from e2sim.workload_files import WORKLOAD_DIR

from fuzzing import (check, csv_ok, fresh_dir, fuzz_surface, invoke, json_ok, nasty_values, write_text,
                     yaml_documents)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_WORKLOAD = yaml.safe_load((WORKLOAD_DIR / "resnet20_cifar10.yaml").read_text())
CUSTOM_WORKLOAD = {
    "schema_version": 1, "name": "tiny", "model": "custom",
    "dataset": {"name": "tiny", "classes": 4, "train_images": 100, "test_images": 20, "image_shape": [3, 8, 8]},
    "batch_size": 8,
    "schedule": {"iterations": 100, "lr": 0.1, "lr_milestones": [50], "lr_decay": 0.1, "momentum": 0.9,
                 "weight_decay": 0.0001},
    "layers": [
        {"name": "conv1", "kind": "conv", "in_shape": [3, 8, 8], "out_shape": [4, 8, 8], "kernel": [3, 3],
         "padding": [1, 1], "needs_input_grad": False, "role": "stem"},
        {"name": "relu", "kind": "relu", "in_shape": [4, 8, 8], "out_shape": [4, 8, 8], "role": "stem"},
        {"name": "pool", "kind": "avgpool", "in_shape": [4, 8, 8], "out_shape": [4, 1, 1], "kernel": [8, 8],
         "stride": [8, 8], "role": "head"},
        {"name": "fc", "kind": "linear", "in_shape": [4, 1, 1], "out_shape": [4, 1, 1], "bias": True,
         "role": "head"},
    ],
}
ESTIMATE_JSON = json_ok()


@fuzz_surface(st.data())
def workload_yaml(tmp_path_factory, data):
    base = data.draw(st.sampled_from([BUNDLED_WORKLOAD, CUSTOM_WORKLOAD]))
    path = write_text(fresh_dir(tmp_path_factory, "w"), "w.yaml", data.draw(yaml_documents(base)))
    if base is CUSTOM_WORKLOAD and data.draw(st.booleans()):
        check(invoke(["counts", "--workload", path, "--format", "json"]), json_ok())
    elif data.draw(st.booleans()):
        check(invoke(["estimate", "--workload", path, "--format", "csv"]), csv_ok())
    else:
        check(invoke(["estimate", "--workload", path, "--format", "json"]), ESTIMATE_JSON)


# ------------------------------------------------------------------------------------------ profiles
PROFILE_MIN = ROOT / "tests" / "data" / "profile_min.yaml"
BASE_PROFILE = yaml.safe_load(PROFILE_MIN.read_text())
TINY_WORKLOAD_FILE = None  # written once per session by _tiny_workload


def _tiny_workload(tmp_path_factory) -> Path:
    global TINY_WORKLOAD_FILE
    if TINY_WORKLOAD_FILE is None:
        TINY_WORKLOAD_FILE = write_text(tmp_path_factory.mktemp("tiny"), "tiny.yaml", yaml.safe_dump(CUSTOM_WORKLOAD))
    return TINY_WORKLOAD_FILE


@fuzz_surface(st.data())
def profile_yaml(tmp_path_factory, data):
    path = write_text(fresh_dir(tmp_path_factory, "p"), "p.yaml", data.draw(yaml_documents(BASE_PROFILE)))
    precision = data.draw(st.sampled_from(["fp32", "int8", "fp16", "int16"]))
    if data.draw(st.integers(0, 99)) == 0:  # 1 in 100: the comparison fits leave-one-out models (slow)
        # the published comparison reads profiles through the same validated loader
        check(invoke(["validate", "--published", "--profile", path, "--output-format", "json"]),
              json_ok(nullable=_PUBLISHED_NULLABLE))
    else:
        check(invoke(["estimate", "--workload", _tiny_workload(tmp_path_factory), "--profile", path,
                      "--precision", precision, "--format", "csv"]), csv_ok())


# rows the published model cannot predict carry null predictions, by design (their `reason` says why)
_PUBLISHED_NULLABLE = ("predicted_pj_per_op", "predicted_power_w", "published_pj_per_op", "published_power_w",
                       "throughput_gops", "peak_gops", "error_rel", "loo_error_rel", "loo_pj_per_op",
                       "fit_scale", "fit_static_power_w", "fit_mac_scale")  # one model's fit columns per row


# ------------------------------------------------------------------------------------------ CSV files
NASTY_CELLS = ("", " ", "nan", "NaN", "inf", "-inf", "-1", "0", "1e308", "-1e308", "1e-320", "9" * 30, "abc",
               "1,5", "\x1b[31m", "\u2028", "2024-13-45 25:61:61", "1970-01-01", "true", "0x10", "1_000")


@st.composite
def csv_texts(draw, text: str, sep: str = ",") -> str:
    """A CSV file with 0..4 of: a cell replaced (nasty or a scaled number), a row deleted / duplicated /
    swapped, a column dropped, a header cell renamed, the file truncated."""
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#"))
    rows = [ln.split(sep) for ln in lines]
    for _ in range(draw(st.integers(0, 4))):
        if len(rows) <= head or not rows[head]:
            break
        body = list(range(head + 1, len(rows)))
        op = draw(st.sampled_from(("cell", "cell", "cell", "scale", "drop_row", "dup_row", "swap", "drop_col",
                                   "header", "truncate")))
        if op in ("cell", "scale") and body:
            r = draw(st.sampled_from(body))
            if not rows[r]:
                continue
            c = draw(st.integers(0, len(rows[r]) - 1))
            if op == "cell":
                rows[r][c] = draw(st.sampled_from(NASTY_CELLS))
            else:
                try:
                    rows[r][c] = repr(float(rows[r][c]) * draw(st.sampled_from([-1.0, 0.0, 1e3, 1e12, 1e300, 1e-300])))
                except ValueError:
                    rows[r][c] = draw(st.sampled_from(NASTY_CELLS))
        elif op == "drop_row" and body:
            rows.pop(draw(st.sampled_from(body)))
        elif op == "dup_row" and body:
            r = draw(st.sampled_from(body))
            rows.insert(r, list(rows[r]))
        elif op == "swap" and len(body) > 1:
            a, b = draw(st.sampled_from(body)), draw(st.sampled_from(body))
            rows[a], rows[b] = rows[b], rows[a]
        elif op == "drop_col" and len(rows[head]) > 1:
            c = draw(st.integers(0, len(rows[head]) - 1))
            rows = [r[:c] + r[c + 1:] if i >= head else r for i, r in enumerate(rows)]
        elif op == "header":
            c = draw(st.integers(0, len(rows[head]) - 1))
            rows[head][c] = draw(st.sampled_from(("", "Mark", "x_power", "t", "Time[h]", "Current[kA]", "P_mW", "rail",
                                                  rows[head][c] + "[furlong]")))
        elif op == "truncate":
            rows = rows[: draw(st.integers(0, len(rows)))]
    return "\n".join(sep.join(r) for r in rows) + "\n"


TOPOLOGY_TEXT = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "conv1,34,34,3,3,3,16,1,\nconv2,33,33,3,3,16,32,2,\nfc,1,1,1,1,64,10,1,\n")


@fuzz_surface(st.data())
def topology_csv(tmp_path_factory, data):
    path = write_text(fresh_dir(tmp_path_factory, "t"), "t.csv", data.draw(csv_texts(TOPOLOGY_TEXT)))
    dataflow = data.draw(st.sampled_from(["os", "ws", "is"]))
    extra = data.draw(st.sampled_from([[], ["--scalesim-compat"], ["--dram-bw", "0.5"], ["--array", "4x8"]]))
    check(invoke(["cycles", "--topology", path, "--dataflow", dataflow, *extra, "--format", "csv"]), csv_ok())


# ------------------------------------------------------------------------------------------ power logs
LOGS = ROOT / "tests" / "data" / "logs"
LOG_BASES = {"pynq": ((LOGS / "pynq.csv").read_text(), ","), "ina": ((LOGS / "ina.csv").read_text(), ","),
             "usb": ((LOGS / "usb.csv").read_text(), ";"), "csv": ((LOGS / "generic.csv").read_text(), ",")}
ESTIMATE_RECORD = {"energy_j": 1.0, "time_s": 1.0, "breakdown_j": {"mac": 0.1, "sram": 0.1, "dram": 0.1, "static": 0.7}}


@fuzz_surface(st.data())
def power_log(tmp_path_factory, data):
    """The log through everything `validate` computes before drawing its PNG (1-2 s a case, so not run for
    each of 1,000 cases): read, window energies, comparison. Bad logs go through the CLI as well (they fail
    before the PNG) and must give exit 2 with one line; good ones must give finite, non-negative energies."""
    from e2sim.errors import E2simError
    from e2sim.validation.compare import compare
    from e2sim.validation.estimate_file import EstimateRecord
    from e2sim.validation.integrate import window_energy
    from e2sim.validation.logs import LogChecks, read_log

    fmt = data.draw(st.sampled_from(sorted(LOG_BASES)))
    text, sep = LOG_BASES[fmt]
    folder = fresh_dir(tmp_path_factory, "l")
    path = write_text(folder, "log.csv", data.draw(csv_texts(text, sep)))
    idle = data.draw(st.sampled_from([[], ["--idle-mark", "0"], ["--idle-w", "0.5"], ["--idle-w", "1e5"]]))
    checks = data.draw(st.sampled_from([[], ["--sort"], ["--allow-negative"], ["--max-gap-s", "1e6"]]))
    try:
        log = read_log(path, fmt, checks=LogChecks(sort="--sort" in checks, allow_negative="--allow-negative" in checks,
                                                   max_gap_s=1e6 if "--max-gap-s" in checks else None))
        kw = {"idle_mark": 0} if "--idle-mark" in idle else {"idle_w": float(idle[1])} if idle else {}
        table = window_energy(log, None, **kw)
        result = compare(table, EstimateRecord.model_validate(ESTIMATE_RECORD))
    except E2simError as exc:
        assert "\n" not in str(exc)
        if data.draw(st.integers(0, 2)) == 0:  # a third of the bad logs also through the CLI (time budget)
            est = write_text(folder, "est.json", json.dumps(ESTIMATE_RECORD))
            check(invoke(["validate", "--log", path, "--format", fmt, "--against", est, *idle, *checks,
                          "--run-dir", folder / "run"]), allow_ok=False)
        return
    # (voltage / current are NaN where a log has only power; idle and dynamic columns where no baseline)
    assert np.isfinite(log[["timestamp_s", "power_W"]].to_numpy()).all()
    for frame in (table, result):
        num = frame.select_dtypes("number")
        assert np.isfinite(num.drop(columns=[c for c in num if c.startswith(("idle", "dynamic", "error"))]).to_numpy()).all()
    assert (table["duration_s"] > 0).all()
    if "--allow-negative" not in checks:  # negative readings kept on request may integrate below zero
        # (a dynamic energy may dip below zero within its sampling bound; beyond it validate refuses)
        assert (table["energy_j"] >= 0).all() and (result.loc[result["component"] != "dynamic", "measured_j"] >= 0).all()
        dyn = result[result["component"] == "dynamic"]
        assert (dyn["measured_j"] >= -dyn["measured_unc_j"]).all()


# ------------------------------------------------------------------------------------------ sidecars
def _small_log() -> str:
    """A PYNQ log of 4 windows (idle, then three loads of different mixes), 1 kHz, 20 samples each."""
    lines = [",Mark,5V_power,5V_voltage,5V_current"]
    powers = (2.0, 3.0, 4.5, 3.5)
    for m, p in enumerate(powers):
        for i in range(20):
            t = m * 0.02 + i * 0.001
            lines.append(f"{t:.3f},{m},{p},5.0,{p / 5}")
    return "\n".join(lines) + "\n"


SMALL_LOG = _small_log()
SIDECAR = {"format": "pynq", "rails": ["5V"], "windows": [
    {"mark": 0, "idle": True},
    {"mark": 1, "activity": {"static_power_w": 0.019, "compute.mac_fp32_pj": 2.0e9}},
    {"mark": 2, "activity": {"static_power_w": 0.019, "compute.mac_fp32_pj": 5.0e9, "dram.read_pj_per_bit": 1e8}},
    {"mark": 3, "activity": {"static_power_w": 0.019, "compute.mac_fp32_pj": 3.0e9, "dram.read_pj_per_bit": 2e8}},
]}


@fuzz_surface(st.data())
def calibrate_sidecar(tmp_path_factory, data):
    folder = fresh_dir(tmp_path_factory, "s")
    log = write_text(folder, "log.csv", SMALL_LOG if data.draw(st.integers(0, 3)) else data.draw(csv_texts(SMALL_LOG)))
    write_text(folder, "log.windows.yaml", data.draw(yaml_documents(SIDECAR)))
    fit = data.draw(st.sampled_from(["static_power_w", "static_power_w,compute.mac_fp32_pj",
                                     "compute.mac_fp32_pj,dram.read_pj_per_bit"]))
    o = invoke(["calibrate", "--logs", log, "--profile", PROFILE_MIN, "--fit", fit, "--out", folder / "new.yaml",
                "--output-format", "json"])
    check(o, json_ok(nullable=("ratio",)))
    if o.code == 0 and data.draw(st.integers(0, 9)) == 0:  # the written profile loads (validated loader)
        from e2sim.profile import load_profile

        load_profile(folder / "new.yaml")


# ------------------------------------------------------------------------------------------ stats files
PSG_STATS = {"schema_version": 1, "kind": "psg", "workload": "tiny",
             "settings": {"bits": 8, "msb_bits": 4, "grad_msb_bits": 16, "threshold": 5e-5, "steps": 4,
                          "sample_every": 2, "batch_size": 8, "data": "digits", "seed": 0},
             "fallback_fraction": {"conv1": 0.25}}
SLU_STATS = {"schema_version": 1, "kind": "slu", "workload": "resnet20_cifar10",
             "skip_ratio": {f"layer{s}.{i}": 0.4 for s in (1, 2, 3) for i in range(3) if (s, i) != (1, 0)}}


@fuzz_surface(st.data())
def stats_file(tmp_path_factory, data):
    folder = fresh_dir(tmp_path_factory, "st")
    if data.draw(st.booleans()):
        path = write_text(folder, "psg.yaml", data.draw(yaml_documents(PSG_STATS)))
        args = ["--workload", _tiny_workload(tmp_path_factory), "--psg", "--psg-stats", path]
    else:
        path = write_text(folder, "slu.yaml", data.draw(yaml_documents(SLU_STATS)))
        args = ["--workload", "resnet20_cifar10", "--slu-stats", path]
    check(invoke(["estimate", *args, "--format", "json"]), ESTIMATE_JSON)


# ------------------------------------------------------------------------------------------ checkpoints
@functools.cache
def _checkpoint_parts():
    """A small model, its optimizer and statistics (built once: a restore overwrites their state)."""
    import torch

    from e2sim.train.loop import _Stats

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(2, 3, 8, 8)).sum().backward()
    opt.step()
    return model, opt, _Stats(["layer1.1"], ["0"])


@functools.cache
def _tensor_like():  # one strategy object (see nasty_values)
    import torch

    return st.sampled_from([torch.zeros(()), torch.zeros(1), torch.zeros(7, 7), torch.tensor([float("nan")]),
                            torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.float64)])


@functools.cache
def _base_checkpoint() -> dict:
    import copy

    model, opt, stats = _checkpoint_parts()
    return copy.deepcopy({"iteration": 3, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "stats": stats.state(), "energy_j": 1.5})


@st.composite
def checkpoint_bytes(draw) -> bytes:
    """A real checkpoint of the small model, then: bytes damaged / truncated / replaced, or the dict with
    keys dropped, added or values swapped for nasty ones (tensors of other shapes, numbers, strings)."""
    import io

    import torch

    from e2sim.train.loop import CHECKPOINT_KEYS

    ckpt = _base_checkpoint()
    kind = draw(st.sampled_from(("dict", "dict", "dict", "bytes", "other")))
    if kind == "other":
        obj = draw(st.one_of(nasty_values(), _tensor_like(), st.just([ckpt["model"]])))
    else:
        obj = dict(ckpt)
        for _ in range(draw(st.integers(0 if kind == "dict" else 0, 3))):
            op = draw(st.sampled_from(("drop", "add", "value", "inner")))
            key = draw(st.sampled_from(CHECKPOINT_KEYS))
            if op == "drop":
                obj.pop(key, None)
            elif op == "add":
                obj[draw(st.sampled_from(("rng", "iteration_", "x")))] = 0
            elif op == "value":
                obj[key] = draw(st.one_of(nasty_values(), _tensor_like()))
            elif op == "inner" and isinstance(obj.get(key), dict) and obj[key]:
                inner = dict(obj[key])
                k = draw(st.sampled_from(sorted(map(str, inner))))
                inner[k] = draw(st.one_of(_tensor_like(), nasty_values()))
                obj[key] = inner
    buf = io.BytesIO()
    torch.save(obj, buf)
    raw = buf.getvalue()
    if kind == "bytes":
        op = draw(st.sampled_from(("truncate", "flip", "empty", "garbage", "pickle")))
        if op == "truncate":
            raw = raw[: draw(st.integers(0, len(raw) - 1))]
        elif op == "flip":
            i = draw(st.integers(0, len(raw) - 1))
            raw = raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
        elif op == "empty":
            raw = b""
        elif op == "garbage":
            raw = draw(st.binary(max_size=256))
        else:  # a pickle that would run code if unpickled without restriction
            raw = b"cos\nsystem\n(S'echo pwned > /dev/null'\ntR."
    return raw


@fuzz_surface(st.data())
def checkpoint(tmp_path_factory, data):
    """train --resume's checkpoint loader on generated files: E2simError with one line, or a restored state
    with a finite, non-negative energy and an iteration within the run."""
    from e2sim.errors import E2simError
    from e2sim.train.loop import read_checkpoint, restore_checkpoint

    raw = data.draw(checkpoint_bytes())
    path = write_text(fresh_dir(tmp_path_factory, "c"), "checkpoint.pt", raw)
    model, opt, stats = _checkpoint_parts()
    try:
        it, energy_j = restore_checkpoint(read_checkpoint(path, 10), path, model, opt, stats)
    except E2simError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert 0 <= it <= 10 and 0 <= energy_j < float("inf")


def test_train_resume_bad_checkpoints_are_one_line(tmp_path):
    """The CLI end of it: garbage, wrong keys, an empty file (once exit 130 'aborted')."""
    import io

    import torch

    from e2sim.train.loop import CONFIG_FILE, TrainConfig

    cfg = TrainConfig(workload="resnet20_cifar10", data="synthetic", iterations=4, eval_every=2)
    args = ["train", "--workload", "resnet20_cifar10", "--data", "synthetic", "--iterations", "4", "--eval-every",
            "2", "--resume", "--out"]
    buf = io.BytesIO()
    torch.save({"x": 1}, buf)
    for name, raw, why in (("garbage", b"\x80\x02garbage" * 20, "unreadable"), ("keys", buf.getvalue(), "holds ['x']"),
                           ("empty", b"", "unreadable: EOFError")):
        run = tmp_path / name
        run.mkdir()
        (run / CONFIG_FILE).write_text(json.dumps({"config": json.loads(cfg.model_dump_json())}))
        (run / "checkpoint.pt").write_bytes(raw)
        o = invoke([*args, run])
        check(o, allow_ok=False)
        assert "not a checkpoint of this run" in o.stderr and why in o.stderr, o.describe()


# ------------------------------------------------------------------------------------------ CLI options
NASTY_ARGS = ("", " ", "nan", "inf", "-inf", "-1", "0", "1", "1e308", "1e-320", "9" * 30, "0.5", "abc", "1,2",
              "1:2:3", "--", "-x", "\x1b[2J", "\u2028", "16x16", "0x0", "4x", "1,1,1", "fp32", "int8", "=", "a=b")


def _value(*valid: str) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(valid), st.sampled_from(NASTY_ARGS)) if valid else st.sampled_from(NASTY_ARGS)


def _options(spec: dict[str, st.SearchStrategy | None]) -> st.SearchStrategy:
    """A random subset of a command's options, each with a drawn value (None: a flag), in random order."""

    @st.composite
    def draw_opts(draw):
        names = draw(st.lists(st.sampled_from(sorted(spec)), max_size=5, unique=True))
        out: list[str] = []
        for n in names:
            out.append(n)
            if spec[n] is not None:
                out.append(draw(spec[n]))
        if draw(st.integers(0, 19)) == 0:
            out.append(draw(st.sampled_from(("--bogus", "extra", "-h", "--format=", "--help"))))
        return out

    return draw_opts()


_FORMATS = _value("table", "csv", "json")
COMMAND_OPTIONS: dict[str, dict] = {
    "estimate": {"--profile": _value("zedboard", "asic45nm"), "--precision": _value("fp32", "fp16", "int8", "int16"),
                 "--iterations": _value("10", "64000", "1000000000", "1000000001"),
                 "--batch-size": _value("1", "128", "16384", "16385"), "--scalesim-compat": None,
                 "--format": _FORMATS, "--smd": _value("0", "0.5", "0.99", "1"), "--seed": _value("0", "7"),
                 "--slu-skip": _value("0", "0.4", "1"), "--psg": None,
                 "--psg-bits": _value("act=8,weight=8", "msb_grad=16", "act=0", "bogus=1", "act=8,act=4"),
                 "--psg-fallback": _value("0", "0.1", "1"), "--baseline": _value("fp32", "int8", "signsgd"),
                 "--compare": None},
    "counts": {"--batch-size": _value("1", "64", "16385"), "--format": _FORMATS},
    "cycles": {"--array": _value("16x16", "1x1", "4096x4096", "4097x1", "8x"), "--dataflow": _value("os", "ws", "is"),
               "--sram-kb": _value("512,512,512", "1,1,1", "1073741825,1,1"), "--dram-bw": _value("0.5", "1e6", "1e7"),
               "--scalesim-compat": None, "--format": _FORMATS},
    "validate": {"--window": _value("1", "0"), "--idle-mark": _value("0", "5"), "--idle-w": _value("0.5", "1e5"),
                 "--column-map": _value("time=t_s,power=P_mW:mW", "time=x", "bogus=1", "time=t_s,time=t_s"),
                 "--rail": _value("total", "5V"), "--max-gap-s": _value("1", "1e9", "1e10"), "--sort": None,
                 "--allow-negative": None, "--output-format": _FORMATS, "--format": _value("pynq", "ina", "usb", "csv")},
    "calibrate": {"--fit": _value("static_power_w", "compute.mac_fp32_pj", "static_power_w,static_power_w", "x.y"),
                  "--force": None, "--output-format": _FORMATS},
}


@fuzz_surface(st.data())
def cli_options(tmp_path_factory, data):
    """Options of the non-sweep commands that compute without training: generated values (valid, out of
    range, non-numeric, NaN / inf, control characters, unknown options) in random subsets."""
    command = data.draw(st.sampled_from(sorted(COMMAND_OPTIONS)))
    opts = data.draw(_options(COMMAND_OPTIONS[command]))
    folder = fresh_dir(tmp_path_factory, "o")
    tiny = _tiny_workload(tmp_path_factory)
    if command in ("estimate", "counts", "cycles"):
        base = ["--workload", data.draw(st.sampled_from([str(tiny), "resnet20_cifar10"]))]
    elif command == "validate":
        # a log whose windows integrate; a missing --format / --against is part of the fuzz
        est = write_text(folder, "est.json", json.dumps(ESTIMATE_RECORD))
        base = ["--log", LOGS / "generic.csv", "--against", est, "--run-dir", folder / "run"]
        if "--format" not in opts and data.draw(st.booleans()):
            base += ["--format", "csv"]
        if data.draw(st.integers(0, 9)):  # the trace PNG takes 1-2 s: most cases must fail before it
            base += ["--idle-w", "1e5"] if "--idle-w" not in opts else ["--window", "99"]
    else:
        log = write_text(folder, "log.csv", SMALL_LOG)
        write_text(folder, "log.windows.yaml", yaml.safe_dump(SIDECAR))
        base = ["--logs", log, "--profile", PROFILE_MIN, "--out", folder / "new.yaml"]
        if "--fit" not in opts:
            base += ["--fit", "static_power_w"]
    args = [command, *base, *opts]
    fmt = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--format", "--output-format")
                and command != "validate" or a == "--output-format"), "table")
    ok = json_ok(nullable=("ratio", "saving", "saving_low", "saving_high")) if fmt == "json" else (
        csv_ok(("ratio", "saving")) if fmt == "csv" else None)
    o = invoke(args)
    if "--help" in opts or "-h" in opts:
        assert o.code in (0, 2), o.describe()
        return
    check(o, ok)
