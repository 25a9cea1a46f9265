from __future__ import annotations

import os
import time
from pathlib import Path

import click

from ..errors import E2simError
from ..output import FORMATS, emit, frame_to_text
from .params import FiniteRange

LOG_FORMATS = ("pynq", "ina", "usb", "csv")
MAX_IDLE_W = 1e5  # the profiles' bound on a power (W): a board idling above 100 kW is a typo


def _run_dir(given: str | None) -> Path:
    """The given folder, or a fresh runs/validate-<UTC time>-<pid> that no concurrent run can share."""
    if given:
        p = Path(given)
        if p.exists() and not p.is_dir():
            raise E2simError(f"--run-dir {p}: exists and is not a folder")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise E2simError(f"--run-dir {p}: cannot create the folder ({exc.strerror or exc})") from None
        return p
    p = Path("runs") / f"validate-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    p.mkdir(parents=True, exist_ok=False)
    return p


@click.command("validate")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="power log file")
@click.option("--format", "log_format", type=click.Choice(LOG_FORMATS), help="power log format")
@click.option("--against", help="estimate JSON (e2sim estimate --format json) or a run directory with estimate.json")
@click.option("--window", "windows", type=int, multiple=True, help="window mark to compare (repeat; default: all but idle)")
@click.option("--idle-mark", type=int, default=None, help="mark of an idle window: its mean power is the baseline")
@click.option("--idle-w", type=FiniteRange(min=0, max=MAX_IDLE_W), default=None,
              help="board idle power in W (instead of --idle-mark)")
@click.option("--column-map", default=None, help="csv only: ROLE=COLUMN[:UNIT],... roles time, power, voltage, current, rail, mark")
@click.option("--rail", "rails", multiple=True, help="rails to sum as the board (repeat; default: all)")
@click.option("--max-gap-s", type=FiniteRange(min=0, min_open=True, max=1e9), default=None,
              help="largest accepted gap between samples (default: 10 x the median interval)")
@click.option("--sort", is_flag=True, help="sort unsorted timestamps instead of failing")
@click.option("--allow-negative", is_flag=True, help="keep negative current/power readings instead of failing")
@click.option("--run-dir", default=None, help="folder for trace.png and the tables (default: a new runs/validate-...)")
@click.option("--published", is_flag=True,
              help="predict the published FPGA designs (validation/published/designs.csv) with the profile instead")
@click.option("--profile", default="zedboard", show_default=True, help="fpga profile for --published (name or YAML)")
@click.option("--rows", "rows", default=None, type=click.Path(dir_okay=False),
              help="--published: also predict the designs of this CSV (the columns of designs.csv), no refit")
@click.option("--output-format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def validate(log_path, log_format, against, windows, idle_mark, idle_w, column_map, rails, max_gap_s, sort,
             allow_negative, run_dir, published, profile, rows, fmt) -> None:
    """Measured vs estimated energy per marked window of a power log (total, idle/static, dynamic), with a
    PNG of the trace; or, with --published, the board power and throughput of published FPGA designs
    predicted with the profile (the estimate code, forward only), with the leave-one-out error of its
    calibration."""
    if published:
        if log_path or against:
            raise E2simError("--published compares with published data: it takes no --log or --against")
        return _published(profile, fmt, rows)
    if rows:
        raise E2simError("--rows applies to --published only")
    for name, val in (("--log", log_path), ("--format", log_format), ("--against", against)):
        if not val:
            raise E2simError(f"missing option {name} (or use --published)")
    from ..output import write_atomic
    from ..validation.compare import compare, duration_mismatch, trace_png, trace_title
    from ..validation.estimate_file import load_estimate
    from ..validation.integrate import window_energy
    from ..validation.logs import LogChecks, read_log

    if idle_mark is not None and idle_mark in windows:
        raise E2simError(f"--window {idle_mark} is also the --idle-mark")
    est = load_estimate(against)
    log = read_log(log_path, log_format, column_map=column_map,
                   checks=LogChecks(max_gap_s=max_gap_s, sort=sort, allow_negative=allow_negative))
    if rails:
        missing = sorted(set(rails) - set(log["rail"]))
        if missing:
            raise E2simError(f"--rail {', '.join(missing)}: not in the log (rails: {', '.join(sorted(set(log['rail'])))})")
        log = log[log["rail"].isin(rails)]
    table = window_energy(log, list(windows) or None, idle_mark=idle_mark, idle_w=idle_w)
    result = compare(table, est)
    mismatch = duration_mismatch(table, est)
    if mismatch:
        click.echo(f"e2sim: warning: {mismatch}", err=True)
    out = _run_dir(run_dir)
    write_atomic(out / "comparison.csv", result.to_csv(index=False))
    write_atomic(out / "windows.csv", table.to_csv(index=False))
    write_atomic(out / "trace.png", trace_png(log, table, est, trace_title(est, Path(log_path).name, Path(against).name)))
    click.echo(f"e2sim: wrote {out}/trace.png, comparison.csv, windows.csv", err=True)
    emit(frame_to_text(result, fmt))


ROW_KEYS = ("id", "design", "device", "network", "precision", "confidence", "published_power_w",
            "predicted_power_w", "error_rel", "loo_error_rel", "published_throughput_gops",
            "predicted_throughput_gops", "used_in_fit", "reason", "source_file")


def _published(profile: str, fmt: str, rows: str | None) -> None:
    from ..validation.published import published_report

    rep = published_report(profile, rows)
    table = rep["rows"][list(ROW_KEYS)]
    if fmt == "json":
        from ..output import to_json

        emit(to_json({"profile": rep["profile"], "fitted_groups": rep["fitted_groups"],
                      "rows": table.to_dict(orient="records"), "summary": rep["summary"]}) + "\n")
        return
    emit(frame_to_text(table, fmt))
    if fmt == "table":
        emit("\n" + "\n".join(f"{k}: {v}" for k, v in rep["summary"].items()) + "\n")
