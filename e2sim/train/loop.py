"""The training run: E2-Train's loop (SGD, step schedule, SMD, SLU, PSG) with resumable checkpoints.

A run directory holds ``config.json`` (the run's settings, seed, versions, config hash), ``curves.csv``
(one row per scheduled iteration), ``slu_stats.yaml`` / ``psg_stats.yaml`` (the statistics the estimate
consumes), ``checkpoint.pt`` and ``curves.png``. Every file is written atomically. ``curves.csv`` is written
before the checkpoint, so after a kill the CSV holds at least the checkpoint's rows; rows past the
checkpoint are dropped on resume and recomputed identically (all randomness is derived from
``(seed, iteration)``, see ``schedule.py``).

An SMD-dropped iteration takes its schedule slot (learning rate, data order) and does no forward, backward
or update. (The official code, under PyTorch 1.0, still applied a momentum/weight-decay step on zeroed
gradients there; that is not reproduced.)
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import E2simError
from ..output import write_atomic
from . import schedule
from .curves import CONFIG_FILE, CURVE_COLUMNS, CURVES_FILE, read_curves, read_run_record, write_curves

PSG_LR = 0.03  # paper setup for PSG runs (../shared/reference/e2train-paper.md §3): SignSGD prefers small lr
CHECKPOINT = "checkpoint.pt"


class TrainConfig(BaseModel):
    """Everything that determines a run's results (hashed into the config record)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str
    data: str = "digits"
    iterations: int = Field(500, ge=1)
    batch_size: int | None = Field(None, ge=1, description="None: the workload's batch size")
    smd: float = Field(0.0, ge=0.0, lt=1.0, description="probability that a mini-batch is dropped")
    slu: bool = False
    slu_target: float = Field(1.0, gt=0.0, le=1.0, description="fraction of gated blocks to execute")
    slu_beta: float = Field(1e-5, ge=0.0, allow_inf_nan=False)
    slu_skipped: Literal["charged", "free"] = Field(
        "charged", description="charged: a skipped block still runs forward for the straight-through gate "
                               "gradient (official code) and the energy counts it; free: it runs nothing")
    psg: bool = False
    psg_threshold: float = Field(5e-5, ge=-1.0, allow_inf_nan=False,
                                 description="official --threshold; negative: relative to max|g_msb|")
    psg_exact: bool = Field(False, description="exact integer PSG kernel instead of the float32 fast path")
    psg_lr: float | None = Field(None, gt=0, allow_inf_nan=False,
                                 description="initial lr of the sign-updated conv weights; None: 0.03 (paper)")
    lr: float | None = Field(None, gt=0, allow_inf_nan=False,
                             description="initial lr of the other parameters (BN, fc, gates); None: the workload's")
    momentum: float | None = Field(None, ge=0.0, lt=1.0, description="None: the workload's (0.9)")
    lr_schedule: Literal["paper", "official"] = Field(
        "paper", description="paper: decay at the workload's milestones (32k, 48k of 64k); official: one "
                             "decay at 42,666 of 64k, as main_all.py does")
    seed: int = Field(0, ge=0)
    profile: str = "zedboard"
    eval_every: int = Field(100, ge=1)
    checkpoint_every: int | None = Field(None, ge=1, description="None: at every evaluation")
    threads: int = Field(2, ge=1)

    def config_hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


# The official code decays the lr at int(32000 * 4 / 3) = 42,666 and at 64,000 (never reached with
# --iters 64000): one drop at 2/3 of the run (../shared/reference/e2train-paper.md §5).
OFFICIAL_MILESTONES = (42_666,)
OFFICIAL_ITERATIONS = 64_000


def lr_milestones(config: TrainConfig, sched) -> tuple[int, ...]:
    """The run's lr milestones, scaled to its iterations."""
    if config.lr_schedule == "official":
        return schedule.scaled_milestones(OFFICIAL_MILESTONES, OFFICIAL_ITERATIONS, config.iterations)
    return schedule.scaled_milestones(sched.lr_milestones, sched.iterations, config.iterations)


def _versions() -> dict[str, str]:
    import torch

    from .. import __version__ as e2sim_version

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "e2sim": e2sim_version}


class _Stats:
    """Running sums behind slu_stats (per-block skipped samples) and psg_stats (per-layer fallback)."""

    def __init__(self, blocks: list[str], psg_layers: list[str]):
        import torch

        self.blocks, self.psg_layers = blocks, psg_layers
        self.skipped = torch.zeros(len(blocks), dtype=torch.float64)
        self.samples = torch.zeros((), dtype=torch.float64)
        self.fallback = torch.zeros(len(psg_layers), dtype=torch.float64)
        self.psg_steps = torch.zeros((), dtype=torch.float64)

    def state(self) -> dict:
        return {"skipped": self.skipped, "samples": self.samples, "fallback": self.fallback,
                "psg_steps": self.psg_steps}

    def load(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v.clone())


CHECKPOINT_KEYS = ("iteration", "model", "optimizer", "stats", "energy_j")


def read_checkpoint(path: Path, iterations: int) -> dict:
    """The checkpoint at ``path``, checked before any work starts: read with torch's restricted unpickler
    (tensors and plain containers, never code); anything that is not a checkpoint of a run of
    ``iterations`` (garbage, truncated, empty, other keys, an out-of-range iteration or energy) is an
    E2simError naming the file."""
    import torch

    try:
        ckpt = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle untrusted bytes is a bad file
        text = str(exc)
        # torch's refusal explains weights_only at length; its last sentence says what was found
        text = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
        first = (text.strip().splitlines() or [""])[0][:120]
        raise _not_checkpoint(path, f"unreadable: {type(exc).__name__}{': ' + first if first else ''}") from None
    if not isinstance(ckpt, dict) or set(ckpt) != set(CHECKPOINT_KEYS):
        keys = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise _not_checkpoint(path, f"holds {keys}, expected keys {list(CHECKPOINT_KEYS)}")
    it, energy_j = ckpt["iteration"], ckpt["energy_j"]
    if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it <= iterations:
        raise _not_checkpoint(path, f"iteration {_brief(it)} is not an integer in [0, {iterations}]")
    if isinstance(energy_j, bool) or not isinstance(energy_j, (int, float)) or not 0 <= energy_j < math.inf:
        raise _not_checkpoint(path, f"energy_j {_brief(energy_j)} is not a finite number >= 0")
    if not all(isinstance(ckpt[k], dict) for k in ("model", "optimizer", "stats")):
        raise _not_checkpoint(path, "model, optimizer and stats must be mappings")
    return ckpt


def restore_checkpoint(ckpt: dict, path: Path, model, optimizer, stats: _Stats) -> tuple[int, float]:
    """Load a read checkpoint into model, optimizer and statistics; (iteration, cumulative energy_j)."""
    import torch

    want, got = stats.state(), ckpt["stats"]
    if set(got) != set(want) or any(not isinstance(got[k], torch.Tensor) or got[k].shape != v.shape
                                    for k, v in want.items()):
        raise _not_checkpoint(path, "statistics of other blocks or layers")
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise _not_checkpoint(path, f"model or optimizer state does not fit: {first}") from None
    stats.load(got)
    return int(ckpt["iteration"]), float(ckpt["energy_j"])


def _brief(value) -> str:
    """A checkpoint value as an error message shows it: numbers as they are, anything else (a tensor, whose
    repr spans lines) by its type."""
    return repr(value) if isinstance(value, (int, float, str, type(None))) else type(value).__name__


def _not_checkpoint(path: Path, why: str) -> E2simError:
    return E2simError(f"{path}: not a checkpoint of this run ({why}); start again in a new --out")


def _resume_rows(path: Path, upto: int) -> list[dict]:
    """The checkpoint's rows of curves.csv; rows a killed run wrote past its checkpoint are dropped."""
    df = read_curves(path)
    df = df[df["iteration"] <= upto]
    if len(df) != upto or not (df["iteration"].to_numpy() == np.arange(1, upto + 1)).all():
        raise E2simError(f"{path}: holds {len(df)} rows up to the checkpoint's iteration {upto}; the run "
                         f"directory is inconsistent")
    return df.to_dict(orient="records")


def recorded_config(out: Path) -> dict:
    """The settings a run directory was started with (its config.json)."""
    try:
        return json.loads((out / CONFIG_FILE).read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise E2simError(f"{out / CONFIG_FILE}: unreadable run record ({exc})") from None


def settings_differ(recorded: dict, config: TrainConfig) -> list[str]:
    """Settings in which ``config`` differs from a recorded run; ``iterations`` may grow (an extension)."""
    mine = json.loads(config.model_dump_json())
    diff = sorted(k for k in set(recorded) | set(mine) if recorded.get(k) != mine.get(k))
    if "iterations" in diff and isinstance(recorded.get("iterations"), int) \
            and config.iterations >= recorded["iterations"]:
        diff.remove("iterations")
    return diff


def check_run_dir(out: Path, config: TrainConfig, resume: bool) -> None:
    """A new run needs a new (or empty) directory; a resumed one its checkpoint and the same settings (more
    iterations extend it)."""
    if not resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise E2simError(f"{out}: already exists; pass --resume to continue it, or choose another --out")
        return
    if not (out / CHECKPOINT).is_file():
        raise E2simError(f"{out}: no {CHECKPOINT} to resume from")
    recorded = recorded_config(out)
    if isinstance(recorded.get("iterations"), int) and config.iterations < recorded["iterations"]:
        raise E2simError(f"{out}: has {recorded['iterations']} iterations; --iterations can only grow")
    diff = settings_differ(recorded, config)
    if diff:
        raise E2simError(f"{out}: was started with other settings (differs in {', '.join(diff)}); resume it "
                         f"with the same options")


def set_threads(threads: int, psg: bool) -> None:
    """torch's intra-op threads for a run, and numba's for the PSG kernels. The two take turns; more of them
    than ``threads`` oversubscribes the cores (10x slower steps on a busy 2-core machine; in a 2-worker
    study, 4 busy threads on 2 cores). Launching numba's OpenMP pool (its first set_num_threads in a process)
    sets the calling thread's OpenMP thread count to NUMBA_NUM_THREADS (all cores), which torch then reads as
    its own: so numba first, torch after."""
    import torch

    if psg:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(threads)


def _psg_weight_ids(model, psg_layers: list[str]) -> set[int]:
    modules = dict(model.named_modules())
    return {id(modules[n].weight) for n in psg_layers}


def train(config: TrainConfig, out: str | Path, *, resume: bool = False,
          stop_after: int | None = None, log: Callable[[str], None] | None = None,
          quiet: bool = False) -> list[dict]:
    """Run (or resume, or extend) training; returns the curve rows. ``stop_after`` stops after that many
    scheduled iterations as if the process were killed there (used to test resuming). ``quiet``: no progress
    bar and no log lines."""
    import torch
    import torch.nn.functional as F

    from .. import progress
    from .datasource import load_data
    from .energy import iteration_energy_model
    from .models import build_model
    from .plots import plot_run
    from .run_estimate import write_run_estimate
    from .stats_io import write_stats
    from ..workload_files import load_workload

    default_log = log is None and not quiet
    if quiet:
        log = lambda _msg: None  # noqa: E731
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out)
    workload = load_workload(config.workload)
    if config.slu and not workload.model.startswith("resnet"):
        raise E2simError(f"--slu: gated blocks are built for the CIFAR ResNets only, not {workload.model!r}")
    check_run_dir(out, config, resume)
    ckpt = read_checkpoint(out / CHECKPOINT, config.iterations) if resume else None  # before any work
    data = load_data(config.data, seed=config.seed, log=log)
    if data.classes > workload.dataset.classes:
        raise E2simError(f"--data: {data.classes} classes do not fit workload {workload.name!r} "
                         f"({workload.dataset.classes} classes)")
    out.mkdir(parents=True, exist_ok=True)

    set_threads(config.threads, config.psg)
    torch.manual_seed(schedule.torch_seed(config.seed, schedule.STREAM_INIT, 0))
    batch = config.batch_size or workload.batch_size
    sched = workload.schedule
    lr0 = config.lr or sched.lr
    psg_lr0 = (config.psg_lr or PSG_LR) if config.psg else None
    momentum = sched.momentum if config.momentum is None else config.momentum
    milestones = lr_milestones(config, sched)

    if config.slu:
        from .gated import GatedCifarResNet

        model = GatedCifarResNet(int(workload.model[6:]), workload.dataset.classes,
                                 skipped_forward=config.slu_skipped == "charged")
    else:
        model = build_model(workload.model, workload.dataset.classes)
    psg_layers: list[str] = []
    if config.psg:
        from .psg import convert_to_psg

        psg_layers = convert_to_psg(model, threshold=config.psg_threshold, exact=config.psg_exact)
    blocks = list(getattr(model, "gated_blocks", []))
    stats = _Stats(blocks, psg_layers)
    # Two parameter groups: the sign-updated PSG conv weights (psg_lr) and everything else (lr).
    signed = _psg_weight_ids(model, psg_layers)
    groups = [{"params": [p for p in model.parameters() if id(p) not in signed], "lr": lr0, "lr0": lr0}]
    if signed:
        groups.append({"params": [p for p in model.parameters() if id(p) in signed], "lr": psg_lr0,
                       "lr0": psg_lr0})
    optimizer = torch.optim.SGD(groups, lr=lr0, momentum=momentum, weight_decay=sched.weight_decay)
    charged = config.slu and config.slu_skipped == "charged"
    energy_of = iteration_energy_model(workload, config.profile, batch, psg=config.psg, gated_blocks=blocks,
                                       psg_layers=psg_layers, charge_skipped_forward=charged)
    psg_sizes = np.array([dict(model.named_modules())[n].weight.numel() for n in psg_layers], float)

    rows: list[dict] = []
    start, energy_j = 0, 0.0
    if resume:
        start, energy_j = restore_checkpoint(ckpt, out / CHECKPOINT, model, optimizer, stats)
        rows = _resume_rows(out / CURVES_FILE, start)
        record = json.loads((out / CONFIG_FILE).read_text())
        if record["config"]["iterations"] != config.iterations:
            # An extension: the record keeps what the run was before; the lr schedule of the iterations
            # still to run follows the new length (the ones already run keep the lr they had).
            log(f"extending {out} from {record['config']['iterations']} to {config.iterations} iterations")
            record.setdefault("extended_from", []).append(record["config"]["iterations"])
            record["config"] = json.loads(config.model_dump_json())
            record["config_hash"] = config.config_hash()
            record["lr_milestones"] = list(milestones)
            write_atomic(out / CONFIG_FILE, json.dumps(record, indent=2) + "\n")
        log(f"resuming {out} at iteration {start}")
    else:
        record = {"config": json.loads(config.model_dump_json()), "config_hash": config.config_hash(),
                  "seed": config.seed, "versions": _versions(), "batch_size": batch, "lr": lr0,
                  "psg_lr": psg_lr0, "momentum": momentum, "lr_milestones": list(milestones),
                  "data": data.description, "started_unix_s": time.time()}
        write_atomic(out / CONFIG_FILE, json.dumps(record, indent=2) + "\n")

    test_x = torch.from_numpy(data.test_x)
    test_y = torch.from_numpy(data.test_y)
    n_train = len(data.train_y)
    perms: dict[int, np.ndarray] = {}
    ckpt_every = config.checkpoint_every or config.eval_every
    end = config.iterations if stop_after is None else min(stop_after, config.iterations)
    t0 = time.perf_counter()
    bar = progress.bar(total=config.iterations, initial=start, desc=f"train {out.name}", quiet=quiet)
    if default_log and progress.enabled(quiet):
        log = lambda msg: bar.write(msg, file=sys.stderr)  # noqa: E731 - lines above the bar, not through it

    def evaluate(iteration: int) -> float:
        model.eval()
        torch.manual_seed(schedule.torch_seed(config.seed, schedule.STREAM_EVAL, iteration))
        correct = 0
        with torch.no_grad():
            for s in range(0, len(test_y), 500):
                logits = model(test_x[s:s + 500])
                logits = logits[0] if isinstance(logits, tuple) else logits
                correct += int((logits.argmax(1) == test_y[s:s + 500]).sum())
        model.train()
        return correct / len(test_y)

    def save(iteration: int) -> None:
        write_curves(rows, out / CURVES_FILE)
        write_stats(out, workload, stats, config, batch)
        buf = io.BytesIO()
        torch.save({"iteration": iteration, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "stats": stats.state(), "energy_j": energy_j}, buf)
        write_atomic(out / CHECKPOINT, buf.getvalue())

    model.train()
    for i in range(start, end):
        it = i + 1
        decay = schedule.lr_at(i, 1.0, milestones, sched.lr_decay)
        for g in optimizer.param_groups:
            g["lr"] = g["lr0"] * decay
        row = dict.fromkeys(CURVE_COLUMNS, math.nan)
        row.update(iteration=it, smd_dropped=1, lr=lr0 * decay,
                   psg_lr=math.nan if psg_lr0 is None else psg_lr0 * decay)
        if not schedule.smd_dropped(config.seed, i, config.smd):
            pos = i * batch + np.arange(batch)
            epochs = pos // n_train
            # One batch spans at most two epochs; each keeps its own permutation.
            idx = np.concatenate([_epoch_perm(config.seed, int(e), n_train, perms)[pos[epochs == e] % n_train]
                                  for e in np.unique(epochs)])
            x = torch.from_numpy(data.augment(idx, schedule.rng(config.seed, schedule.STREAM_AUGMENT, i)))
            y = torch.from_numpy(data.train_y[idx])
            torch.manual_seed(schedule.torch_seed(config.seed, schedule.STREAM_TORCH, i))
            out_ = model(x)
            if config.slu:
                from .slu import executed_fraction, slu_regulariser

                logits, masks, _ = out_
                loss = F.cross_entropy(logits, y)
                total = loss + slu_regulariser(masks, config.slu_target, config.slu_beta)
                block_exec = torch.stack([m.detach() for m in masks]).mean(1)
                stats.skipped += (1.0 - block_exec.double()) * batch
                stats.samples += batch
                row["slu_executed_fraction"] = executed_fraction(masks)
            else:
                logits = out_
                loss = total = F.cross_entropy(logits, y)
                block_exec = None
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            fallback = None
            if config.psg:
                from .psg import collect_fallback

                fallback = np.array(collect_fallback(model, psg_layers))
                stats.fallback += torch.from_numpy(fallback)
                stats.psg_steps += 1
                row["psg_fallback_fraction"] = float((fallback * psg_sizes).sum() / psg_sizes.sum())
            energy_j += energy_of(None if block_exec is None else block_exec.numpy(), fallback)
            row.update(smd_dropped=0, loss=float(loss.detach()),
                       train_accuracy=float((logits.argmax(1) == y).float().mean()))
        row["cumulative_energy_j"] = energy_j
        if it % config.eval_every == 0 or it == config.iterations:
            row["test_accuracy"] = evaluate(it)
            step = "dropped (SMD)" if row["smd_dropped"] else f"loss {row['loss']:.4f}"
            log(f"iteration {it}/{config.iterations}: {step}, test accuracy {row['test_accuracy']:.4f}, "
                f"energy {energy_j:.4g} J ({time.perf_counter() - t0:.1f} s)")
        rows.append(row)
        bar.update(1)
        if it % ckpt_every == 0 or it == config.iterations:
            save(it)
    bar.close()
    if end == config.iterations:
        plot_run(rows, out / "curves.png", read_run_record(out))
        write_run_estimate(out, workload, config, batch, rows)
        log(f"done: {out}")
    return rows


def _epoch_perm(seed: int, epoch: int, n: int, cache: dict[int, np.ndarray]) -> np.ndarray:
    if epoch not in cache:
        for old in [k for k in cache if k < epoch - 1]:
            del cache[old]
        cache[epoch] = schedule.rng(seed, schedule.STREAM_SHUFFLE, epoch).permutation(n)
    return cache[epoch]
