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

Budgets. A grid's size is known from the option texts before any value is materialised
(:func:`axis_size`), so an oversized grid is refused at once (``--max-configs``). The discrete points are
the costly part (each is priced item by item), so their items have a budget of their own
(:data:`MAX_PRICED_ITEMS`). Range steps on the [0, 1] axes finer than :data:`MIN_STEP` are refused: they
resolve less than one iteration of a 64k-iteration schedule and make grids of millions of near-equal rows.

The chunked, resumable run that writes the results is in ``sweep_run.py``; the plot in ``sweep_plot.py``.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from itertools import product

import numpy as np

from .counts import count
from .energy import COMPONENTS
from .errors import E2simError
from .estimate import estimate_plan
from .plan import PRECISIONS, Plan, base_plan
from .profile import load_profile
from .techniques import PSG, PSGBits, baseline_plan
from .techniques._plan_ops import UPD
from .techniques.psg import check_bits, check_fraction
from .techniques.slu import add_gates, check_ratio, keep_per_layer
from .techniques.smd import check_rate, check_seed, executed_iterations
from .workload_files import load_workload

ITEM_COLS = ("layer", "pass_", "samples", "scale", "a_bits", "b_bits", "is_float", "tensor_bits", "tag")
AXES = ("precision", "psg_msb_bits", "grad_bits", "slu_skip", "psg_fallback", "smd")
DISCRETE_AXES = AXES[:4]
DEFAULT_CHUNK = 50_000
MAX_CHUNK = 1_000_000  # rows evaluated and held at once (~0.3 GB at the widest)
MAX_CONFIGS = 10_000_000  # default --max-configs
MAX_PRICED_ITEMS = 5_000_000  # discrete points x plan items stacked for pricing (~1 GB at the peak)
MIN_STEP = 1e-6  # finest range step on the [0, 1] axes (SMD, SLU skip, PSG fallback)


def _option(axis: str) -> str:
    return "--" + axis.replace("_", "-")


def _check_axis(axis: str, values) -> None:
    """Domain of each axis, checked with the techniques' own validators (one-line messages)."""
    what = _option(axis)
    if axis == "precision":
        for p in values:
            if p not in PRECISIONS:
                raise E2simError(f"--precision: unknown precision {p!r} (known: {', '.join(PRECISIONS)})")
        return
    if axis == "grad_bits" and tuple(values) == (None,):  # the precision's own width
        return
    if any(x is None or isinstance(x, (bool, str)) for x in values):
        raise E2simError(f"{what}: expected numbers, got {list(values)!r}")
    v = np.asarray(values, dtype=float)
    bad = v[~np.isfinite(v)]
    if bad.size:
        raise E2simError(f"{what}: values must be finite numbers, got {bad[0]:g}")
    if axis in ("psg_msb_bits", "grad_bits"):
        if not np.all(v == np.round(v)):
            raise E2simError(f"{what}: bit-widths must be integers, got {v[v != np.round(v)][0]:g}")
        outside = v[(v < 1) | (v > 32)]
        if outside.size:
            check_bits(float(outside[0]), what)
        if axis == "psg_msb_bits" and (v > PSGBits.act).any():
            raise E2simError(f"{what}: the predictor's input MSB part is at most the {PSGBits.act}-bit "
                             f"activation width, got {v[v > PSGBits.act][0]:g}")
        return
    check = {"smd": check_rate, "slu_skip": check_ratio, "psg_fallback": check_fraction}[axis]
    inside = (v >= 0) & ((v < 1) if axis == "smd" else (v <= 1))
    if not inside.all():
        check(float(v[~inside][0]), what)


def _check_unique(axis: str, values) -> None:
    seen = set()
    for x in values:
        if x in seen:
            shown = x if isinstance(x, str) else f"{x:g}"
            raise E2simError(f"{_option(axis)}: {shown} is listed twice (give each value once)")
        seen.add(x)


def _split(text: str, what: str):
    """A comma list -> ('list', floats); ``START:STOP:STEP`` -> ('range', start, step, n) with n counted,
    not materialised (n may be a huge float: the caller's budget refuses it)."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise E2simError(f"{what}: a range is START:STOP:STEP, got {text!r}")
        try:
            a, b, s = (float(x) for x in parts)
        except ValueError:
            raise E2simError(f"{what}: range bounds must be numbers, got {text!r}") from None
        if not all(math.isfinite(x) for x in (a, b, s)):
            raise E2simError(f"{what}: range bounds must be finite numbers, got {text!r}")
        if not s > 0 or b < a:
            raise E2simError(f"{what}: empty range {text!r} (need STEP > 0 and STOP >= START)")
        q = (b - a) / s  # inf when it overflows: refused as too many values
        n = math.floor(q + 1e-9) + 1 if q < 1e18 else q
        return "range", a, s, n
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise E2simError(f"{what}: empty list")
    try:
        vals = tuple(float(x) for x in items)
    except ValueError:
        raise E2simError(f"{what}: expected numbers, got {text!r}") from None
    return "list", vals


def axis_size(text: str, what: str) -> int | float:
    """How many values ``text`` names, without materialising a range (a float when astronomically many)."""
    parsed = _split(text, what)
    return len(parsed[1]) if parsed[0] == "list" else parsed[3]


def parse_values(text: str, what: str, *, axis: str | None = None,
                 min_step: float = MIN_STEP) -> tuple[float, ...]:
    """``START:STOP:STEP`` (inclusive stop, values rounded to 12 decimals) or a comma list; one-line
    errors naming the option. Call :func:`check_budget` on :func:`axis_size` first for user input. With
    ``axis`` (one of AXES), a range's first and last values are checked against the axis' domain before
    the range is materialised."""
    parsed = _split(text, what)
    if parsed[0] == "list":
        return parsed[1]
    _, a, s, n = parsed
    if s < min_step * (1 - 1e-9):
        raise E2simError(f"{what}: step {s:g} is finer than the {min_step:g} resolution of sweep values")
    if not n <= MAX_CONFIGS * 100:  # a safety net; budgets refuse far smaller grids first
        raise E2simError(f"{what}: the range has {_count(n)} values")
    if axis is not None:
        _check_axis(axis, (a, round(a + s * (n - 1), 12)))
    return tuple(np.round(a + s * np.arange(int(n)), 12).tolist())


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) or n < 1e15 else f"{n:.3g}"


def check_budget(sizes: dict[str, int | float], max_configs: int = MAX_CONFIGS) -> int:
    """The grid size (product of the axis sizes); one-line error, with the size and how to raise the limit,
    when it exceeds ``max_configs``."""
    total: int | float = 1
    for n in sizes.values():
        total = total * n
    if total > max_configs:
        parts = " x ".join(f"{_count(n)} {_option(a)[2:]}" for a, n in sizes.items() if n != 1) or "1"
        raise E2simError(f"the grid has {_count(total)} configurations ({parts}), above --max-configs "
                         f"{max_configs:,}; use fewer values, or raise --max-configs if you mean it")
    return int(total)


@dataclass(frozen=True)
class SweepSpec:
    workload: str
    profile: str = "zedboard"
    precision: tuple[str, ...] = ("fp32",)
    psg: bool = False
    psg_msb_bits: tuple[int, ...] = (4,)
    grad_bits: tuple[int | None, ...] = (None,)  # None: the precision's gradient width
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
            vals = tuple(getattr(self, name))
            object.__setattr__(self, name, vals)
            if len(vals) == 0:
                raise E2simError(f"{_option(name)}: empty list")
            _check_axis(name, vals)
            _check_unique(name, vals)
        for name in ("psg_msb_bits", "grad_bits"):
            object.__setattr__(self, name, tuple(v if v is None else int(v) for v in getattr(self, name)))
        check_seed(self.seed)
        if isinstance(self.chunk_size, bool) or not 1 <= self.chunk_size <= MAX_CHUNK:
            raise E2simError(f"--chunk-size: must be in 1..{MAX_CHUNK:,}, got {self.chunk_size!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(getattr(self, a)) for a in AXES)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(AXES, self.shape))

    @property
    def n_configs(self) -> int:
        return math.prod(self.shape)

    def active(self, axis: str) -> bool:
        """Whether an axis is an input of the results (PSG axes need --psg, the skip ratio SLU)."""
        return {"psg_msb_bits": self.psg, "grad_bits": self.psg, "psg_fallback": self.psg,
                "slu_skip": self.slu}.get(axis, True)

    def summary(self) -> dict:
        """The settings in a few words per axis (the manifest's human-readable record; the hash is exact)."""
        out = {k: getattr(self, k) for k in ("workload", "profile", "psg", "slu", "seed", "baseline",
                                                "chunk_size", "batch_size", "iterations")}
        for a in AXES:
            v = getattr(self, a)
            out[a] = list(v) if len(v) <= 8 else {"n": len(v), "first": v[0], "last": v[-1]}
        return out

    def digest(self) -> str:
        """Hash of every setting and every axis value (values hashed as bytes: axes may be long)."""
        h = hashlib.sha256()
        h.update(json.dumps({k: v for k, v in self.summary().items() if k not in AXES}, sort_keys=True).encode())
        for a in AXES:
            v = getattr(self, a)
            h.update(a.encode())
            h.update(",".join(v).encode() if a == "precision" else np.asarray(v, float).tobytes())
        return h.hexdigest()[:16]


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
    grad_bits: np.ndarray | None = None  # [precision, grad] resolved widths (resolved_grad_bits)
    workload_name: str = ""
    n_unique_items: int = 0
    timings_s: dict = field(default_factory=dict)


def _bit_plan(bases: dict, w, spec: SweepSpec, prec: str, msb: int, grad: int) -> Plan:
    plan = bases[prec]  # techniques return new plans: one base plan per precision serves every bit config
    if spec.psg:  # grad None: the precision's gradient width; msb_grad min(16, grad) (PSGBits.resolve)
        bits = PSGBits(msb_act=int(msb), grad=None if grad is None else int(grad))
        plan = PSG(bits, fallback=1.0).apply(plan, w)
    return plan


def resolved_grad_bits(spec: SweepSpec) -> np.ndarray:
    """[precision, grad] the output-gradient width PSG uses (``None`` follows the precision)."""
    return np.array([[PSGBits(grad=g).resolve(p)[0].grad for g in spec.grad_bits] for p in spec.precision],
                    dtype=float)


def bit_plans(spec: SweepSpec):
    """The workload (with gates if SLU) and one plan per bit configuration, at F = 1, no skipping.
    Refuses (before building them all) a grid whose discrete points would stack more than
    :data:`MAX_PRICED_ITEMS` items for pricing."""
    base_w = w = load_workload(spec.workload)
    if spec.slu:
        w = add_gates(w)
    counts = count(w, spec.batch_size)
    keys = list(product(spec.precision, spec.psg_msb_bits, spec.grad_bits))
    bases = {p: base_plan(counts, p, 1) for p in spec.precision}
    first = _bit_plan(bases, w, spec, *keys[0])
    n_points = len(keys) * (len(spec.slu_skip) if spec.slu else 1)
    if n_points * first.n_items > MAX_PRICED_ITEMS:
        raise E2simError(
            f"the grid has {n_points:,} discrete settings (precision x --psg-msb-bits x --grad-bits x "
            f"--slu-skip), each {first.n_items:,} items of {w.name} priced one by one: "
            f"{n_points * first.n_items:,} items, above the {MAX_PRICED_ITEMS:,} limit; use fewer of these "
            f"values (SMD rates and PSG fallback fractions cost almost nothing)")
    plans = {keys[0]: first}
    for key in keys[1:]:
        plans[key] = _bit_plan(bases, w, spec, *key)
    return base_w, w, plans


def _row_keys(plan: Plan) -> np.ndarray:
    """[N, 3] uint64 key of everything that prices an item (scale excluded: priced at 1): layer, pass,
    operand widths and float flag packed in one word, the tensor widths (6 bits each) in another, and the
    samples' float bits."""
    u = np.uint64
    ints = (plan.layer.astype(u) << u(16)) | (plan.pass_.astype(u) << u(13)) | (plan.a_bits.astype(u) << u(7)) \
        | (plan.b_bits.astype(u) << u(1)) | plan.is_float.astype(u)
    tb = np.zeros(plan.n_items, u)
    for t in range(plan.tensor_bits.shape[1]):
        tb |= plan.tensor_bits[:, t].astype(u) << u(6 * t)
    return np.column_stack([ints, tb, np.ascontiguousarray(plan.samples, dtype=float).view(u)])


def _unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First index of each distinct row and the inverse map, by a hash then an exact check."""
    import pandas as pd

    x = keys
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
    """Price every discrete point once (see the module docstring).

    Two exact de-duplications keep the priced rows few: the items of all bit configurations are reduced to
    the distinct items (most do not depend on the bits); then only the distinct items whose samples a skip
    ratio changes (slu.skip_blocks: the gated blocks' main items, every pass but the update) get one row
    per skip ratio, and those rows are de-duplicated again. Each discrete point's sums are then a weighted
    sum over the distinct items: a [bit configurations x items] weight matrix times [items x skip ratios]
    per-item costs."""
    t0 = time.perf_counter()
    base_w, w, plan_map = bit_plans(spec)
    prof = load_profile(spec.profile)
    plans = list(plan_map.values())
    counts = plans[0].counts
    for plan in plans[1:]:
        if not all(np.array_equal(getattr(plan.counts, a), getattr(counts, a))
                   for a in ("ops_fixed", "reads_fixed", "writes_fixed")):
            raise AssertionError("bit configurations changed the counts")
    gated = [b.name for b in w.gated_blocks] if spec.slu else []
    skips = spec.slu_skip if spec.slu else (0.0,)
    keeps = np.stack([keep_per_layer(counts, {b: r for b in gated}) for r in skips])  # [R, L]
    n_plans, n_skip = len(plans), len(skips)
    cat = {k: np.concatenate([getattr(p, k) for p in plans]) for k in ITEM_COLS}
    plan_of = np.repeat(np.arange(n_plans), [p.n_items for p in plans])
    is_fb = cat["tag"] == "psg_fallback"
    unit = np.where(is_fb, 1.0, cat["scale"])  # the fallback at F = 1: F enters linearly later
    first0, inv0 = _unique_rows(_row_keys(replace(plans[0], **cat)))
    n_items = len(first0)
    item = {k: v[first0] for k, v in cat.items()}
    factor = np.where(item["pass_"] == UPD, 1.0, keeps[:, item["layer"]])  # [R, U] as slu.skip_blocks
    r_idx, u_idx = np.nonzero(factor != 1.0)
    rows = {k: v[np.concatenate([np.arange(n_items), u_idx])] for k, v in item.items()}
    rows["samples"] = np.concatenate([item["samples"], item["samples"][u_idx] * factor[r_idx, u_idx]])
    rows["scale"] = np.ones(len(rows["layer"]))
    first1, inv1 = _unique_rows(_row_keys(replace(plans[0], **rows)))
    t1 = time.perf_counter()
    est = estimate_plan(replace(plans[0], **{k: v[first1] for k, v in rows.items()}), w, prof)
    t2 = time.perf_counter()
    n_comp = len(COMPONENTS)
    per_row = np.column_stack([est.energy_per_iteration_j, est.costs.cycles])[inv1]  # [rows, C + 1]
    cost = np.broadcast_to(per_row[:n_items], (n_skip, n_items, n_comp + 1)).copy()  # [R, U, C + 1]
    cost[r_idx, u_idx] = per_row[n_items:]
    cost = cost.transpose(1, 0, 2).reshape(n_items, -1)
    sums = []
    for weight in (np.where(is_fb, 0.0, unit), np.where(is_fb, unit, 0.0)):  # A: all but fallback, B
        wmat = np.bincount(plan_of * n_items + inv0, weight, n_plans * n_items).reshape(n_plans, n_items)
        # einsum's own loop, not BLAS: a few thousand x a few dozen, where BLAS threads only add overhead
        sums.append(np.einsum("pu,uk->pk", wmat, cost).reshape(n_plans, n_skip, n_comp + 1))
    ea, eb = (x[..., :n_comp] for x in sums)
    ca, cb = (x[..., n_comp] for x in sums)
    shape4 = (len(spec.precision), len(spec.psg_msb_bits), len(spec.grad_bits), n_skip)
    iters = spec.iterations if spec.iterations is not None else base_w.schedule.iterations
    # One baseline for the whole grid, so that precisions compare (signsgd / stochastic depth run at the
    # first listed precision).
    base = estimate_plan(baseline_plan(base_w, spec.baseline, iters, spec.batch_size, spec.precision[0]),
                         base_w, prof)
    if spec.seed is None:  # the expectation, vectorised (a Binomial draw per rate needs one Generator each)
        its = executed_iterations(iters, np.asarray(spec.smd, float))
    else:
        its = np.array([float(executed_iterations(iters, p, spec.seed)) for p in spec.smd])
    t3 = time.perf_counter()
    return Tables(
        energy_a=ea.reshape(*shape4, -1), energy_b=eb.reshape(*shape4, -1),
        cycles_a=ca.reshape(shape4), cycles_b=cb.reshape(shape4), iterations=its,
        clock_hz=prof.array.clock_hz.value, baseline_energy_j=base.energy_j, baseline_time_s=base.time_s,
        grad_bits=resolved_grad_bits(spec), workload_name=base_w.name, n_unique_items=len(first1),
        timings_s={"plans_s": t1 - t0, "price_s": t2 - t1, "reduce_s": t3 - t2},
    )


COLUMNS = ("config_id", "precision", "psg_msb_bits", "grad_bits", "slu_skip", "psg_fallback", "smd",
           "iterations_executed", "energy_j", "time_s", *(f"{c}_energy_j" for c in COMPONENTS),
           "baseline_energy_j", "saving")


def evaluate_columns(spec: SweepSpec, tables: Tables, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The result columns (:data:`COLUMNS`; ``precision`` as integer codes into ``spec.precision``) of the
    configurations with flat indices ``ids`` (C order over AXES). Axes a technique does not use are NaN."""
    ids = np.asarray(ids, dtype=np.int64)
    nF, nP = len(spec.psg_fallback), len(spec.smd)
    d, rest = np.divmod(ids, nF * nP)  # flat discrete point, then (F, P)
    iF, iP = np.divmod(rest, nP)
    n_disc = math.prod(spec.shape[:4])
    ip, im, ig, ir = np.unravel_index(np.arange(n_disc), spec.shape[:4])  # per discrete point (small)
    dt = d if spec.slu else d // spec.shape[3]  # without SLU the tables hold one skip point
    F = np.asarray(spec.psg_fallback).take(iF) if spec.psg else np.zeros(len(ids))
    its = tables.iterations.take(iP)
    # Column by column with take(): several times faster than fancy-indexing rows of [points, C] arrays.
    ea = tables.energy_a.reshape(-1, len(COMPONENTS)).T
    eb = tables.energy_b.reshape(-1, len(COMPONENTS)).T
    comps = []
    for k in range(len(COMPONENTS)):
        c = np.ascontiguousarray(ea[k]).take(dt)
        if spec.psg:
            c += F * np.ascontiguousarray(eb[k]).take(dt)
        c *= its
        comps.append(c)
    energy = comps[0] + comps[1]
    for c in comps[2:]:
        energy += c
    cycles = tables.cycles_a.reshape(-1).take(dt)
    if spec.psg:
        cycles += F * tables.cycles_b.reshape(-1).take(dt)
    cycles *= its
    nan = np.full(len(ids), np.nan)
    cols = {
        "config_id": ids,
        "precision": ip.astype(np.int8).take(d),
        "psg_msb_bits": np.asarray(spec.psg_msb_bits, float)[im].take(d) if spec.psg else nan,
        "grad_bits": tables.grad_bits[ip, ig].take(d) if spec.psg else nan,
        "slu_skip": np.asarray(spec.slu_skip, float)[ir].take(d) if spec.slu else nan,
        "psg_fallback": F if spec.psg else nan,
        "smd": np.asarray(spec.smd, float).take(iP),
        "iterations_executed": its,
        "energy_j": energy,
        "time_s": cycles / tables.clock_hz,
    }
    for k, c in enumerate(COMPONENTS):
        cols[f"{c}_energy_j"] = comps[k]
    cols["baseline_energy_j"] = np.full(len(ids), tables.baseline_energy_j)
    cols["saving"] = 1.0 - energy / tables.baseline_energy_j
    return cols


def evaluate(spec: SweepSpec, tables: Tables, ids: np.ndarray):
    """The tidy rows (a DataFrame) of the configurations with flat indices ``ids`` (C order over AXES)."""
    import pandas as pd

    cols = evaluate_columns(spec, tables, ids)
    cols["precision"] = pd.Categorical.from_codes(cols["precision"], categories=list(spec.precision))
    return pd.DataFrame(cols)
