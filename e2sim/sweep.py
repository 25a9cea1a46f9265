"""Trade-off sweeps: the estimate evaluated over a grid of technique settings at once.

Decomposition (exact). An item's per-iteration cost depends only on its own columns (layer, pass, samples,
bit-widths, tensor widths) and is linear in ``scale``; a run's totals are the per-iteration sums times the
executed iterations (cost.py, estimate.py). The grid axes split accordingly:
- discrete: precision x PSG input-MSB bits x gradient bits (a "bit configuration": one Plan each, built by
  the real technique transforms) x SLU skip ratio (changes the samples of the gated blocks' main items;
  cycles are NOT linear in samples: folds round up, buffers fit or not, stalls are a max, so every distinct
  skip ratio is priced exactly as its own set of items);
- continuous and exactly linear: the PSG fallback fraction F (the ``scale`` of the fallback items) and the
  SMD drop rate P (executed iterations (1 - P) x I).
So for every discrete point d the sweep needs two per-iteration sums, A_d over all items but the fallback
and B_d over the fallback items at F = 1, and then energy = iterations(P) x (A_d + F x B_d) (the same for
each energy component and for cycles). The items of all discrete points are de-duplicated (most items do
not depend on most axes) and priced in ONE call of the hardware stage (``estimate_plan``) on the stacked,
unique items. Agreement with one-at-a-time ``estimate_plan`` is tested on random configurations.

Output (a run directory): ``parts/part-NNNNN.parquet`` (one per chunk of consecutive configurations, written
atomically), ``manifest.json`` (the spec, its hash, the chunks done), and once complete ``sweep.parquet``,
``sweep.csv`` and ``tradeoff.png``. ``resume=True`` skips the chunks the manifest lists and whose part
exists; a spec that differs from the manifest's is refused.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from itertools import product
from pathlib import Path

import numpy as np

from .counts import count
from .energy import COMPONENTS
from .errors import E2simError
from .estimate import estimate_plan
from .output import write_atomic
from .plan import PRECISIONS, Plan, base_plan
from .profile import load_profile
from .techniques import PSG, PSGBits, baseline_plan
from .techniques.psg import check_bits, check_fraction
from .techniques.slu import add_gates, check_ratio, keep_per_layer, skipped_items
from .techniques.smd import check_rate, executed_iterations
from .workload import load_workload

ITEM_COLS = ("layer", "pass_", "samples", "scale", "a_bits", "b_bits", "is_float", "tensor_bits", "tag")
AXES = ("precision", "psg_msb_bits", "grad_bits", "slu_skip", "psg_fallback", "smd")
DEFAULT_CHUNK = 50_000


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """``start:stop:step`` (inclusive stop) or a comma list; one-line errors naming the option."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise E2simError(f"{what}: a range is START:STOP:STEP, got {text!r}")
        try:
            a, b, s = (float(x) for x in parts)
        except ValueError:
            raise E2simError(f"{what}: range bounds must be numbers, got {text!r}") from None
        if not s > 0 or b < a:
            raise E2simError(f"{what}: empty range {text!r} (need STEP > 0 and STOP >= START)")
        n = int(np.floor((b - a) / s + 1e-9)) + 1
        return tuple(float(v) for v in np.round(a + s * np.arange(n), 12))
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise E2simError(f"{what}: empty list")
    try:
        return tuple(float(x) for x in items)
    except ValueError:
        raise E2simError(f"{what}: expected numbers, got {text!r}") from None


@dataclass(frozen=True)
class SweepSpec:
    workload: str
    profile: str = "zedboard"
    precision: tuple[str, ...] = ("fp32",)
    psg: bool = False
    psg_msb_bits: tuple[int, ...] = (4,)
    grad_bits: tuple[int, ...] = (32,)
    slu: bool = False
    slu_skip: tuple[float, ...] = (0.0,)
    psg_fallback: tuple[float, ...] = (0.0,)
    smd: tuple[float, ...] = (0.0,)
    seed: int | None = None
    baseline: str = "fp32"
    chunk_size: int = DEFAULT_CHUNK
    batch_size: int | None = None
    iterations: int | None = None

    def __post_init__(self):
        for name in AXES:
            if len(getattr(self, name)) == 0:
                raise E2simError(f"--{name.replace('_', '-')}: empty list")
        for p in self.precision:
            if p not in PRECISIONS:
                raise E2simError(f"--precision: unknown precision {p!r} (known: {', '.join(PRECISIONS)})")
        for b in self.psg_msb_bits:
            check_bits(b, "--psg-msb-bits")
        for b in self.grad_bits:
            check_bits(b, "--grad-bits")
        for r in self.slu_skip:
            check_ratio(r, "--slu-skip")
        for f in self.psg_fallback:
            check_fraction(f, "--psg-fallback")
        for r in self.smd:
            check_rate(r, "--smd")
        if self.chunk_size < 1:
            raise E2simError("--chunk-size: must be at least 1")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(getattr(self, a)) for a in AXES)

    @property
    def n_configs(self) -> int:
        return int(np.prod(self.shape))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Tables:
    """Per discrete point (precision, msb, grad, skip): per-iteration sums A (all but fallback) and B
    (fallback at F = 1), per energy component and for cycles; plus the executed iterations per SMD rate."""

    energy_a: np.ndarray  # [np, nm, ng, nr, C]
    energy_b: np.ndarray
    cycles_a: np.ndarray  # [np, nm, ng, nr]
    cycles_b: np.ndarray
    iterations: np.ndarray  # [n_smd]
    clock_hz: float
    baseline_energy_j: float
    baseline_time_s: float
    n_unique_items: int = 0
    timings_s: dict = field(default_factory=dict)


def bit_plans(spec: SweepSpec):
    """The workload (with gates if SLU) and one plan per bit configuration, at F = 1, no skipping."""
    base_w = w = load_workload(spec.workload)
    if spec.slu:
        w = add_gates(w)
    counts = count(w, spec.batch_size)
    plans = {}
    for prec, msb, grad in product(spec.precision, spec.psg_msb_bits, spec.grad_bits):
        plan = base_plan(counts, prec, 1)
        if spec.psg:
            bits = PSGBits(msb_act=int(msb), grad=int(grad), msb_grad=min(PSGBits.msb_grad, int(grad)))
            plan = PSG(bits, fallback=1.0).apply(plan, w)
        plans[(prec, msb, grad)] = plan
    return base_w, w, plans


def _row_keys(plan: Plan) -> np.ndarray:
    """[N, 7 + T] float key of everything that prices an item (scale excluded: priced at 1)."""
    return np.column_stack([plan.layer, plan.pass_, plan.samples, plan.a_bits, plan.b_bits,
                            plan.is_float, plan.tensor_bits]).astype(float)


def _unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First index of each distinct row and the inverse map, by a hash then an exact check."""
    import pandas as pd

    x = np.ascontiguousarray(keys).view(np.uint64)
    h = np.zeros(len(keys), np.uint64)
    with np.errstate(over="ignore"):
        for j in range(x.shape[1]):  # murmur3's 64-bit finaliser per column, folded in (a fast row hash)
            v = x[:, j] ^ (x[:, j] >> np.uint64(33))
            v = v * np.uint64(0xFF51AFD7ED558CCD)
            v ^= v >> np.uint64(33)
            h = (h ^ v) * np.uint64(0x9E3779B97F4A7C15)
    inv, _ = pd.factorize(h)
    first = np.full(inv.max() + 1, -1, np.int64)
    first[inv[::-1]] = np.arange(len(inv))[::-1]
    if not np.array_equal(keys[first[inv]], keys):  # a hash collision: fall back to sorting
        _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
    return first, inv


def precompute(spec: SweepSpec) -> Tables:
    t0 = time.perf_counter()
    base_w, w, plans = bit_plans(spec)
    prof = load_profile(spec.profile)
    first_plan = next(iter(plans.values()))
    counts = first_plan.counts
    gated = [b.name for b in w.gated_blocks] if spec.slu else []
    skips = spec.slu_skip if spec.slu else (0.0,)
    # Stack items of every (bit configuration, skip ratio) with scale 1 (F enters linearly later).
    stacked, fb_flags, sizes = [], [], []
    keeps = [keep_per_layer(counts, {b: r for b in gated}) for r in skips]
    for plan in plans.values():
        if not all(np.array_equal(getattr(plan.counts, a), getattr(counts, a))
                   for a in ("ops_fixed", "reads_fixed", "writes_fixed")):
            raise AssertionError("bit configurations changed the counts")
        is_fb = plan.tag == "psg_fallback"
        unit = np.where(is_fb, 1.0, plan.scale)
        for keep in keeps:
            mask = skipped_items(plan, keep)
            samples = plan.samples.copy()
            samples[mask] = plan.samples[mask] * keep[plan.layer[mask]]  # as slu.skip_blocks
            stacked.append(replace(plan, samples=samples, scale=unit))
            fb_flags.append(is_fb)
            sizes.append(plan.n_items)
    keys = np.concatenate([_row_keys(p) for p in stacked])
    scale_all = np.concatenate([p.scale for p in stacked])
    first, inv = _unique_rows(keys)
    t1 = time.perf_counter()
    big = stacked[0]
    cols = {k: np.concatenate([getattr(p, k) for p in stacked])[first] for k in ITEM_COLS}
    cols["scale"] = np.ones(len(first))
    unique_plan = replace(big, counts=counts, **cols)
    est = estimate_plan(unique_plan, w, prof)
    t2 = time.perf_counter()
    e_unit = est.energy_per_iteration_j[inv] * scale_all[:, None]  # [rows, C]
    c_unit = est.costs.cycles[inv] * scale_all
    fb = np.concatenate(fb_flags)
    seg = np.repeat(np.arange(len(stacked)), sizes)
    nd = len(stacked)
    ea = np.stack([np.bincount(seg, e_unit[:, k] * ~fb, nd) for k in range(len(COMPONENTS))], 1)
    eb = np.stack([np.bincount(seg, e_unit[:, k] * fb, nd) for k in range(len(COMPONENTS))], 1)
    ca, cb = np.bincount(seg, c_unit * ~fb, nd), np.bincount(seg, c_unit * fb, nd)
    shape4 = (len(spec.precision), len(spec.psg_msb_bits), len(spec.grad_bits), len(skips))
    iters = spec.iterations if spec.iterations is not None else base_w.schedule.iterations
    base = estimate_plan(baseline_plan(base_w, spec.baseline, iters, spec.batch_size), base_w, prof)
    its = np.array([float(executed_iterations(iters, p, spec.seed)) for p in spec.smd])
    t3 = time.perf_counter()
    return Tables(
        energy_a=ea.reshape(*shape4, -1), energy_b=eb.reshape(*shape4, -1),
        cycles_a=ca.reshape(shape4), cycles_b=cb.reshape(shape4), iterations=its,
        clock_hz=prof.array.clock_hz.value, baseline_energy_j=base.energy_j, baseline_time_s=base.time_s,
        n_unique_items=len(first),
        timings_s={"plans_s": t1 - t0, "price_s": t2 - t1, "reduce_s": t3 - t2},
    )


def evaluate(spec: SweepSpec, tables: Tables, ids: np.ndarray):
    """The tidy rows (a DataFrame) of the configurations with flat indices ``ids`` (C order over AXES)."""
    import pandas as pd

    ip, im, ig, ir, iF, iP = np.unravel_index(ids, spec.shape)
    F = np.asarray(spec.psg_fallback)[iF] if spec.psg else np.zeros(len(ids))
    its = tables.iterations[iP]
    ir_t = ir if spec.slu else np.zeros_like(ir)
    comp = its[:, None] * (tables.energy_a[ip, im, ig, ir_t] + F[:, None] * tables.energy_b[ip, im, ig, ir_t])
    energy = its * (tables.energy_a[ip, im, ig, ir_t].sum(1) + F * tables.energy_b[ip, im, ig, ir_t].sum(1))
    cycles = its * (tables.cycles_a[ip, im, ig, ir_t] + F * tables.cycles_b[ip, im, ig, ir_t])
    nan = np.full(len(ids), np.nan)
    df = pd.DataFrame({
        "config_id": ids.astype(np.int64),
        "precision": np.asarray(spec.precision, dtype=object)[ip],
        "psg_msb_bits": np.asarray(spec.psg_msb_bits, float)[im] if spec.psg else nan,
        "grad_bits": np.asarray(spec.grad_bits, float)[ig] if spec.psg else nan,
        "slu_skip": np.asarray(spec.slu_skip, float)[ir] if spec.slu else nan,
        "psg_fallback": F if spec.psg else nan,
        "smd": np.asarray(spec.smd, float)[iP],
        "iterations_executed": its,
        "energy_j": energy,
        "time_s": cycles / tables.clock_hz,
    })
    for k, c in enumerate(COMPONENTS):
        df[f"{c}_energy_j"] = comp[:, k]
    df["baseline_energy_j"] = tables.baseline_energy_j
    df["saving"] = 1.0 - energy / tables.baseline_energy_j
    return df


# --- chunked, resumable runs ------------------------------------------------------------------------

def _progress(done: int, total: int, configs: int, t0: float) -> None:
    rate = configs / max(time.perf_counter() - t0, 1e-9)
    sys.stderr.write(f"\rsweep: {done}/{total} chunks, {configs} configurations ({rate:,.0f}/s)")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _part(out: Path, k: int) -> Path:
    return out / "parts" / f"part-{k:05d}.parquet"


def _eval_and_write(spec: SweepSpec, tables: Tables, out: Path, k: int) -> int:
    lo = k * spec.chunk_size
    ids = np.arange(lo, min(lo + spec.chunk_size, spec.n_configs))
    df = evaluate(spec, tables, ids)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_atomic(_part(out, k), buf.getvalue())
    return len(ids)


def _load_manifest(out: Path, spec: SweepSpec, resume: bool) -> dict:
    path = out / "manifest.json"
    fresh = {"spec": asdict(spec), "spec_hash": spec.digest(), "n_configs": spec.n_configs,
             "chunk_size": spec.chunk_size, "chunks_done": [], "complete": False}
    if not path.exists():
        return fresh
    if not resume:
        raise E2simError(f"--out: {out} already holds a sweep (manifest.json); use --resume or a new directory")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise E2simError(f"{path}: unreadable manifest ({exc})") from None
    if m.get("spec_hash") != spec.digest():
        raise E2simError(f"{path}: the sweep in {out} was run with other settings; use a new --out directory")
    return m


def _executor_map(executor: str, fn, ks):
    if executor == "local":
        for k in ks:
            yield k, fn(k)
        return
    if executor == "dask":
        try:
            import dask
        except ImportError:
            raise E2simError("--executor dask: dask is not installed (pip install 'e2sim[dask]')") from None
        tasks = [dask.delayed(fn)(k) for k in ks]
        for k, n in zip(ks, dask.compute(*tasks)):
            yield k, n
        return
    raise E2simError(f"--executor: unknown executor {executor!r} (known: local, dask)")


def run_sweep(spec: SweepSpec, out: str | Path, *, resume: bool = False, executor: str = "local",
              progress: bool = True, _stop_after_chunks: int | None = None):
    """Run (or finish) a sweep into ``out``; returns the full table once complete (None if stopped).
    ``_stop_after_chunks`` simulates a kill after that many chunks (tests)."""
    import pandas as pd

    out = Path(out)
    if executor == "dask":  # fail fast, before any work
        list(_executor_map("dask", lambda k: 0, []))
    manifest = _load_manifest(out, spec, resume)
    n_chunks = -(-spec.n_configs // spec.chunk_size)
    done = {k for k in manifest["chunks_done"] if _part(out, k).exists()}
    todo = [k for k in range(n_chunks) if k not in done]
    tables = precompute(spec) if todo else None
    t0 = time.perf_counter()
    configs = 0
    for i, (k, n) in enumerate(_executor_map(executor, lambda k: _eval_and_write(spec, tables, out, k), todo)):
        done.add(k)
        configs += n
        manifest["chunks_done"] = sorted(done)
        write_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
        if progress:
            _progress(len(done), n_chunks, configs, t0)
        if _stop_after_chunks is not None and i + 1 >= _stop_after_chunks and len(done) < n_chunks:
            return None
    df = pd.concat([pd.read_parquet(_part(out, k)) for k in range(n_chunks)], ignore_index=True)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_atomic(out / "sweep.parquet", buf.getvalue())
    write_atomic(out / "sweep.csv", df.to_csv(index=False))
    plot_tradeoff(df, out / "tradeoff.png")
    manifest["complete"] = True
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return df


def pareto_mask(energy: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """Configurations no other beats in both energy and time (minimising both)."""
    order = np.lexsort((time_s, energy))
    best = np.inf
    keep = np.zeros(len(energy), bool)
    for i in order:
        if time_s[i] < best:
            keep[i] = True
            best = time_s[i]
    return keep


def plot_tradeoff(df, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e, t = df["energy_j"].to_numpy(), df["time_s"].to_numpy()
    front = pareto_mask(e, t)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    n = len(df)
    sel = np.linspace(0, n - 1, min(n, 20_000)).astype(int)  # thin the cloud; the front is always drawn
    ax.scatter(t[sel] / 3600, e[sel] / 3.6e6, s=3, alpha=0.3, label="configurations", color="tab:blue")
    fo = np.argsort(e[front])
    ax.plot(t[front][fo] / 3600, e[front][fo] / 3.6e6, "o-", color="tab:red", ms=3, label="Pareto front")
    ax.set_xlabel("training time (h)")
    ax.set_ylabel("training energy (kWh)")
    ax.set_title("energy / time trade-off")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
