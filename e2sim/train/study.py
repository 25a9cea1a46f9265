"""A study: many training runs (a baseline plus named configurations, times seeds) executed on Dask
distributed, each an ordinary resumable run folder, aggregated into accuracy against energy.

    parse_configs(["smd=--smd 0.5", ...])   -> {name: train options}, checked like `e2sim train` checks them
    plan_runs(out, common, configs, seeds)  -> [StudyRun]; a folder holding another run's settings is an error
    execute(runs, ...)                      -> one summary row per run (finished runs are read, not rerun)
    summarize(rows, curves)                 -> per-config table with the baseline at equal energy
    write_study(out, ...)                   -> study.csv, summary.csv, study.png

The engine is Dask's (a LocalCluster of worker processes, or an existing scheduler): a run whose worker dies
is resubmitted by the scheduler once (``distributed.scheduler.allowed-failures``), then marked failed; the
study always returns.
"""
from __future__ import annotations

import json
import math
import re
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import E2simError
from ..output import write_atomic

BASELINE = "baseline"
RUNS_DIR = "runs"
STUDY_CSV, SUMMARY_CSV, STUDY_PNG = "study.csv", "summary.csv", "study.png"
STUDY_COLUMNS = ("config", "seed", "status", "iterations", "final_test_accuracy", "energy_j",
                 "executed_iterations_fraction", "slu_executed_fraction", "psg_fallback_fraction", "run_dir",
                 "error")
SUMMARY_COLUMNS = ("config", "runs", "accuracy_mean", "accuracy_stderr", "energy_j_mean", "energy_j_stderr",
                   "saving", "baseline_accuracy_at_equal_energy", "accuracy_difference")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
CONNECT_TIMEOUT_S = 5  # an unreachable --scheduler fails after this long, not after dask's 30 s default
ALLOWED_FAILURES = 1  # a run whose worker died is resubmitted once, then marked failed


class RunsFailed(E2simError):
    """Some runs of a study failed (not bad input): exit code 1; the tables hold the others."""

    exit_code = 1


@dataclass(frozen=True)
class StudyRun:
    config: str  # the configuration's name
    seed: int
    train: object  # TrainConfig
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.config}/seed{self.seed}"


def parse_configs(specs: Sequence[str]) -> dict[str, dict]:
    """``NAME=OPTIONS`` pairs -> {NAME: option values}; OPTIONS are `e2sim train`'s technique options."""
    import click

    from ..commands.train import technique_options, train_config

    @technique_options
    def _collect(**kw):
        return kw

    parser = click.Command("config", params=_collect.__click_params__, callback=_collect)
    configs: dict[str, dict] = {}
    for spec in specs:
        name, sep, opts = spec.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise E2simError(f"--config {spec!r}: expected NAME=\"train options\" with NAME made of letters, "
                             f"digits, '_', '-', '.'")
        if name == BASELINE or name in configs:
            raise E2simError(f"--config {name}: {'reserved for the plain run' if name == BASELINE else 'given twice'}")
        try:
            args = shlex.split(opts)
        except ValueError as exc:
            raise E2simError(f"--config {name}: {exc}") from None
        if not args:
            raise E2simError(f"--config {name}: no train options (the plain run is the baseline)")
        try:
            ctx = parser.make_context(name, args)
            values = parser.invoke(ctx)
        except click.ClickException as exc:
            raise E2simError(f"--config {name}: {exc.format_message()}".replace("\n", " ")) from None
        train_config(workload="resnet20_cifar10", **dict(values))  # consistency (e.g. --psg-lr needs --psg)
        configs[name] = {k: v for k, v in values.items()}
    return configs


def plan_runs(out: Path, common: dict, configs: dict[str, dict], seeds: int) -> list[StudyRun]:
    """Every (configuration, seed) run with its folder ``out/runs/NAME/seedK``; a folder that holds a run
    with other settings is an error (never overwritten)."""
    from ..commands.train import train_config
    from .loop import CONFIG_FILE, recorded_config, settings_differ

    runs = []
    # Seed-major: every configuration's seed 0 first, so a study cut short still covers every configuration.
    for seed in range(seeds):
        for name, opts in {BASELINE: {}, **configs}.items():
            try:
                cfg = train_config(**common, **opts, seed=seed)
            except ValueError as exc:  # pydantic: a common setting out of range
                raise E2simError(f"--config {name}: {exc}".replace("\n", " ")) from None
            run_dir = out / RUNS_DIR / name / f"seed{seed}"
            if (run_dir / CONFIG_FILE).is_file():
                recorded = recorded_config(run_dir)
                diff = settings_differ(recorded, cfg) or (
                    ["iterations"] if recorded.get("iterations") != cfg.iterations else [])
                if diff:
                    raise E2simError(f"{run_dir}: a run folder from other settings (differs in {', '.join(diff)}); "
                                     f"use another --out")
            runs.append(StudyRun(name, seed, cfg, run_dir))
    return runs


def run_summary(run_dir: Path, iterations: int) -> dict:
    """A finished run's study row values, from its curves.csv."""
    from .curves import read_run_curves

    return curves_summary(read_run_curves(run_dir), iterations)


def curves_summary(df, iterations: int) -> dict:
    """Study row values of a run's curves (rows up to its last one; the last evaluation's accuracy)."""
    ran = df[df["smd_dropped"] == 0]
    evaluated = df[df["test_accuracy"].notna()]

    def mean(col):
        v = ran[col].dropna()
        return float(v.mean()) if len(v) else math.nan

    return {"iterations": iterations, "final_test_accuracy": float(evaluated["test_accuracy"].iloc[-1]),
            "energy_j": float(df["cumulative_energy_j"].iloc[-1]),
            "executed_iterations_fraction": len(ran) / len(df),
            "slu_executed_fraction": mean("slu_executed_fraction"),
            "psg_fallback_fraction": mean("psg_fallback_fraction")}


def is_finished(run: StudyRun) -> bool:
    from .curves import CURVES_FILE
    from .loop import CONFIG_FILE, recorded_config
    from .run_estimate import ESTIMATE_FILE

    d = run.run_dir
    if not ((d / ESTIMATE_FILE).is_file() and (d / CURVES_FILE).is_file() and (d / CONFIG_FILE).is_file()):
        return False
    if recorded_config(d) != json.loads(run.train.model_dump_json()):
        return False
    # estimate.json is written last, after the final checkpoint: its schedule says the run got to the end
    try:
        return json.loads((d / ESTIMATE_FILE).read_text())["iterations_scheduled"] == run.train.iterations
    except (ValueError, KeyError):
        return False


def run_one(config_json: str, run_dir: str) -> dict:
    """Runs (or resumes) one training run; executed on a Dask worker. Returns its study row values."""
    from .loop import CHECKPOINT, TrainConfig, train

    cfg = TrainConfig.model_validate_json(config_json)
    d = Path(run_dir)
    # A finished run is only read. Dask recomputes a result that was held by a worker that died before the
    # client fetched it; the recomputation must not redo the run's plot and estimate in a fresh worker.
    if is_finished(StudyRun("", 0, cfg, d)):
        return run_summary(d, cfg.iterations)
    resume = (d / CHECKPOINT).is_file()
    if not resume and d.exists():
        shutil.rmtree(d)  # killed before its first checkpoint: nothing to keep (its settings were checked)
    train(cfg, d, resume=resume, quiet=True)
    return run_summary(d, cfg.iterations)


def _client(workers: int, scheduler: str | None):
    import logging

    import dask
    from dask.distributed import Client, LocalCluster

    # worker-saturation 1.0: a worker holds only the run it executes, the others wait on the scheduler. Dask
    # counts a worker's death against every task the scheduler has sent to it, so with its default (1.1: two
    # tasks on a one-thread worker) a run merely queued beside a dying one would be marked failed with it.
    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                     "distributed.scheduler.worker-saturation": 1.0})
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise E2simError(f"--scheduler {scheduler}: cannot connect ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.CRITICAL)
    return Client(cluster), cluster


def execute(runs: Sequence[StudyRun], *, workers: int = 2, scheduler: str | None = None, quiet: bool = False,
            log: Callable[[str], None] = lambda _m: None, fn: Callable[[str, str], dict] = run_one) -> list[dict]:
    """Runs the unfinished runs on Dask (finished ones are only read); one row per run, in input order."""
    from .. import progress

    results: dict[int, dict] = {}
    todo = []
    for i, r in enumerate(runs):
        if is_finished(r):
            results[i] = {"status": "ok", **run_summary(r.run_dir, r.train.iterations)}
        else:
            todo.append(i)
    bar = progress.bar(total=len(runs), initial=len(results), desc="study", unit="run", quiet=quiet)
    if todo:
        from dask.distributed import as_completed

        client, cluster = _client(workers, scheduler)
        try:
            futures = {client.submit(fn, runs[i].train.model_dump_json(), str(runs[i].run_dir), pure=False,
                                     key=f"e2sim-study-{runs[i].config}-seed{runs[i].seed}-{runs[i].train.config_hash()}"): i
                       for i in todo}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = {"status": "ok", **fut.result()}
                    log(f"{runs[i].label}: done, test accuracy {results[i]['final_test_accuracy']:.4f}, "
                        f"energy {results[i]['energy_j']:.4g} J")
                except Exception as exc:  # noqa: BLE001 - a run's failure is reported, the study goes on
                    msg = _failure(exc)
                    results[i] = {"status": "failed", "error": msg}
                    log(f"{runs[i].label}: failed ({msg})")
                bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    bar.close()
    rows = []
    for i, r in enumerate(runs):
        row = dict.fromkeys(STUDY_COLUMNS, math.nan)
        row.update(config=r.config, seed=r.seed, iterations=r.train.iterations, run_dir=str(r.run_dir), error="")
        row.update(results[i])
        rows.append(row)
    return rows


def _failure(exc: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return f"its worker died {ALLOWED_FAILURES + 1} times (KilledWorker)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def baseline_curve(baseline_dirs: Sequence[Path]):
    """(energy_j, mean test accuracy) at the baseline runs' evaluations, averaged over seeds per iteration."""
    import pandas as pd

    from .curves import read_run_curves

    frames = [read_run_curves(d).dropna(subset=["test_accuracy"]) for d in baseline_dirs]
    if not frames:
        return np.array([]), np.array([])
    g = pd.concat(frames).groupby("iteration")[["cumulative_energy_j", "test_accuracy"]].mean().sort_values(
        "cumulative_energy_j")
    return g["cumulative_energy_j"].to_numpy(), g["test_accuracy"].to_numpy()


def accuracy_at_energy(curve, energy_j: float) -> float:
    """The baseline curve's accuracy at ``energy_j`` (linear between evaluations); NaN outside the curve
    (no extrapolation)."""
    e, a = curve
    if len(e) == 0 or not (e[0] <= energy_j <= e[-1]):
        return math.nan
    return float(np.interp(energy_j, e, a))


def _stderr(v: np.ndarray) -> float:
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def summarize(rows: list[dict]):
    """One row per configuration (baseline first) over its finished runs."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(STUDY_COLUMNS))
    ok = df[df["status"] == "ok"]
    curve = baseline_curve([Path(d) for d in ok[ok["config"] == BASELINE]["run_dir"]])
    base = ok[ok["config"] == BASELINE]
    base_energy = float(base["energy_j"].mean()) if len(base) else math.nan
    out = []
    for name in dict.fromkeys(df["config"]):
        g = ok[ok["config"] == name]
        acc, en = g["final_test_accuracy"].to_numpy(float), g["energy_j"].to_numpy(float)
        e_mean = float(en.mean()) if len(en) else math.nan
        a_mean = float(acc.mean()) if len(acc) else math.nan
        at_equal = accuracy_at_energy(curve, e_mean)
        out.append({"config": name, "runs": len(g), "accuracy_mean": a_mean, "accuracy_stderr": _stderr(acc),
                    "energy_j_mean": e_mean, "energy_j_stderr": _stderr(en),
                    "saving": 1.0 - e_mean / base_energy if base_energy > 0 else math.nan,
                    "baseline_accuracy_at_equal_energy": at_equal, "accuracy_difference": a_mean - at_equal})
    return df, pd.DataFrame(out, columns=list(SUMMARY_COLUMNS)), curve


def plot_study(summary, curve, path: Path, title: str) -> None:
    from ..plotstyle import finish, new_figure

    fig, axes = new_figure()
    ax = axes
    if len(curve[0]):
        ax.plot(curve[0], curve[1], color="0.45", marker=".", label="baseline during training (mean over seeds)")
    for k, r in enumerate(summary.itertuples()):
        if r.runs == 0:
            continue
        ax.errorbar(r.energy_j_mean, r.accuracy_mean,
                    xerr=0 if math.isnan(r.energy_j_stderr) else r.energy_j_stderr,
                    yerr=0 if math.isnan(r.accuracy_stderr) else r.accuracy_stderr,
                    fmt="o" if r.config == BASELINE else "s", capsize=4, color=f"C{k}",
                    label=f"{r.config} (n={r.runs}, final)")
    ax.set_xlabel("estimated training energy (J)")
    ax.set_ylabel("test accuracy (fraction)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    finish(fig, path, title=title)


def write_tables(out: Path, study, summary) -> None:
    import io

    for df, name in ((study, STUDY_CSV), (summary, SUMMARY_CSV)):
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        write_atomic(out / name, buf.getvalue())
