"""A sweep run: the grid evaluated chunk by chunk into a run directory, streamed, verified and resumable.

Layout of ``out``:
- ``sweep.parquet/part-NNNNN.parquet``: a Parquet dataset, one part per chunk NNNNN of ``chunk_size``
  consecutive configurations (ids ``NNNNN x chunk_size`` up to the next chunk's first), written atomically.
  Read it whole with ``pandas.read_parquet(out / "sweep.parquet")`` or filtered with pyarrow.dataset.
- ``manifest.json``: the settings (a summary and their hash), and per finished part its chunk id, row
  count, first config id and SHA-256. Rewritten atomically at most once a second and at the end.
- ``saving.png``: the saving plot (sweep_plot.py), drawn from a bounded slice of the grid, never from the
  dataset.
- ``sweep.csv``: only with ``csv=True``, streamed part by part from the dataset.

Duplicates are impossible by construction: a part's name is its chunk id, its rows are exactly that
chunk's id range (checked on resume from the part's metadata), and a chunk is written to one file only.
Resume verifies every part the manifest lists (checksum, row count, id range) and recomputes those that
fail, saying so in one line on stderr. Nothing is replaced silently: an ``out`` that holds sweep outputs
needs ``resume`` or ``force``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import E2simError
from .output import write_atomic
from .progress import bar
from .sweep import COLUMNS, MAX_CONFIGS, SweepSpec, Tables, check_budget, evaluate_columns, precompute

DATASET = "sweep.parquet"
MANIFEST = "manifest.json"
PLOT = "saving.png"
CSV = "sweep.csv"
OUTPUTS = (MANIFEST, DATASET, PLOT, CSV)
FORMAT = "e2sim-sweep/2"
MAX_PARTS = 10_000  # parts of one sweep (manifest size, file count)
ROW_BYTES = 8 * (len(COLUMNS) - 1) + 1  # uncompressed bytes of one row (precision: a 1-byte code)
MANIFEST_EVERY_S = 1.0
DASK_BATCH = 8  # chunks submitted to Dask at once (the manifest is saved between batches)
_PART = re.compile(r"part-(\d{5})\.parquet")


class PartRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    chunk: int
    rows: int
    first_id: int
    sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    format: str
    spec_hash: str
    spec: dict
    n_configs: int
    chunk_size: int
    n_chunks: int
    parts: list[PartRecord]
    complete: bool


@dataclass
class SweepResult:
    out: Path
    n_configs: int
    n_parts: int
    spec_hash: str
    output_bytes: int
    estimated_output_bytes: int
    estimated_memory_bytes: int
    recomputed: list[int]
    files: list[str]

    def to_dict(self) -> dict:
        return {"out": str(self.out), "configurations": self.n_configs, "parts": self.n_parts,
                "spec_hash": self.spec_hash, "dataset": DATASET, "output_bytes": self.output_bytes,
                "estimated_output_bytes": self.estimated_output_bytes,
                "estimated_memory_bytes": self.estimated_memory_bytes,
                "recomputed_parts": self.recomputed, "files": self.files}


def part_path(out: Path, k: int) -> Path:
    return out / DATASET / f"part-{k:05d}.parquet"


def chunk_ids(spec: SweepSpec, k: int) -> np.ndarray:
    lo = k * spec.chunk_size
    return np.arange(lo, min(lo + spec.chunk_size, spec.n_configs), dtype=np.int64)


def n_chunks(spec: SweepSpec) -> int:
    return -(-spec.n_configs // spec.chunk_size)


def estimates(spec: SweepSpec, executor: str = "local") -> tuple[int, int]:
    """(memory, output) upper bounds in bytes: the rows of the chunks in flight (one locally, a batch with
    Dask) with ~4 copies each (columns, the Arrow table, its Parquet encoding, the file bytes), and every row
    uncompressed (Parquet compresses below this). The pricing's own memory is bounded by MAX_PRICED_ITEMS."""
    in_flight = DASK_BATCH if executor == "dask" else 1
    rows = min(spec.chunk_size * in_flight, spec.n_configs)
    return 4 * ROW_BYTES * rows, ROW_BYTES * spec.n_configs


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def to_arrow(spec: SweepSpec, cols: dict):
    import pyarrow as pa

    arrays = []
    for name in COLUMNS:
        if name == "precision":
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(cols[name], pa.int8()),
                                                         pa.array(list(spec.precision), pa.string())))
        else:
            arrays.append(pa.array(cols[name]))
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))


def encode_part(spec: SweepSpec, tables: Tables, k: int) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    # Statistics only on config_id (resume checks the id range from them) and dictionary encoding only for
    # precision: on the float columns both cost 4x the time of the write and save little space.
    pq.write_table(to_arrow(spec, evaluate_columns(spec, tables, chunk_ids(spec, k))), buf,
                   compression="snappy", write_statistics=["config_id"], use_dictionary=["precision"])
    return buf.getvalue()


def _write_part(spec: SweepSpec, tables: Tables, out: Path, k: int) -> PartRecord:
    data = encode_part(spec, tables, k)
    write_atomic(part_path(out, k), data)
    ids = chunk_ids(spec, k)
    return PartRecord(chunk=k, rows=len(ids), first_id=int(ids[0]), sha256=hashlib.sha256(data).hexdigest())


def verify_part(spec: SweepSpec, out: Path, rec: PartRecord) -> str | None:
    """Why the part on disk is not the one the manifest records (None when it is)."""
    import pyarrow.parquet as pq

    path = part_path(out, rec.chunk)
    try:
        data = path.read_bytes()
    except OSError:
        return "missing"
    if hashlib.sha256(data).hexdigest() != rec.sha256:
        return "checksum mismatch"
    ids = chunk_ids(spec, rec.chunk)
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        stats = meta.row_group(0).column(COLUMNS.index("config_id")).statistics
        lo, hi = int(stats.min), int(stats.max)
    except Exception as exc:  # noqa: BLE001 - any unreadable part is recomputed
        return f"unreadable ({type(exc).__name__})"
    if meta.num_rows != len(ids) or rec.rows != len(ids) or (lo, hi) != (ids[0], ids[-1]) \
            or meta.num_row_groups != 1:
        return "wrong rows"
    return None


def _fresh_manifest(spec: SweepSpec) -> Manifest:
    return Manifest(format=FORMAT, spec_hash=spec.digest(), spec=spec.summary(), n_configs=spec.n_configs,
                    chunk_size=spec.chunk_size, n_chunks=n_chunks(spec), parts=[], complete=False)


def _load_manifest(out: Path, spec: SweepSpec) -> Manifest:
    path = out / MANIFEST
    hint = "rerun with --force to start this sweep again"
    try:
        m = Manifest.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        reason = "not JSON" if isinstance(exc, json.JSONDecodeError) else \
            "not a sweep manifest of this e2sim version" if isinstance(exc, ValidationError) else str(exc)
        raise E2simError(f"{path}: corrupt manifest ({reason}); {hint}") from None
    if m.format != FORMAT:
        raise E2simError(f"{path}: manifest format {m.format!r}, expected {FORMAT!r}; {hint}")
    if m.spec_hash != spec.digest():
        raise E2simError(f"{path}: the sweep in {out} was run with other settings; use a new --out directory "
                         f"or --force to replace it")
    nc = n_chunks(spec)
    chunks = [p.chunk for p in m.parts]
    if (m.n_configs, m.chunk_size, m.n_chunks) != (spec.n_configs, spec.chunk_size, nc) \
            or len(set(chunks)) != len(chunks) or any(not 0 <= c < nc for c in chunks):
        raise E2simError(f"{path}: corrupt manifest (chunk records do not fit the sweep); {hint}")
    return m


def _save_manifest(out: Path, m: Manifest) -> None:
    m.parts.sort(key=lambda p: p.chunk)
    write_atomic(out / MANIFEST, json.dumps(m.model_dump(), indent=1))


def _prepare_out(out: Path, resume: bool, force: bool) -> None:
    present = [n for n in OUTPUTS if (out / n).exists()]
    if not present or resume:
        return
    if not force:
        raise E2simError(f"--out: {out} already holds sweep outputs ({', '.join(present)}); use --resume to "
                         f"finish that sweep or --force to replace it")
    ds = out / DATASET
    if ds.is_dir():
        for f in ds.iterdir():  # only what a sweep writes: its parts and atomic-write temporaries
            if f.is_file() and (_PART.fullmatch(f.name) or f.name.startswith(".part-")):
                f.unlink()
        try:
            ds.rmdir()
        except OSError:
            raise E2simError(f"--force: {ds} holds files a sweep did not write; move them away") from None
    elif ds.exists():
        ds.unlink()
    for n in (MANIFEST, PLOT, CSV):
        (out / n).unlink(missing_ok=True)


def _check_dataset_dir(out: Path, spec: SweepSpec) -> None:
    """Only this sweep's parts in the dataset (a reader would take any other Parquet file for rows); the
    temporaries of killed atomic writes removed."""
    for name in (MANIFEST, PLOT, CSV):  # temporaries left by a killed atomic write
        for f in out.glob(f".{name}.*"):
            f.unlink(missing_ok=True)
    ds = out / DATASET
    if ds.exists() and not ds.is_dir():
        raise E2simError(f"{ds}: expected the sweep's dataset folder, found a file; use --force to replace it")
    if not ds.is_dir():
        return
    nc = n_chunks(spec)
    for f in ds.iterdir():
        if f.name.startswith(".part-"):
            f.unlink(missing_ok=True)  # a temporary left by a killed atomic write
            continue
        m = _PART.fullmatch(f.name)
        if not (m and int(m.group(1)) < nc and f.is_file()):
            raise E2simError(f"{f}: not a part of this sweep; move it away (readers of the dataset would "
                             f"take it for rows)")


def _executor_map(executor: str, fn, ks: list[int], batch: int = DASK_BATCH):
    """(k, fn(k)) in completion batches: locally in order, or on Dask's current scheduler (threads by
    default, a distributed Client when one is active), a few chunks at a time so the manifest keeps up."""
    if executor == "local":
        for k in ks:
            yield k, fn(k)
        return
    if executor == "dask":
        import dask

        for i in range(0, len(ks), batch):
            group = ks[i:i + batch]
            yield from zip(group, dask.compute(*[dask.delayed(fn)(k) for k in group]))
        return
    raise E2simError(f"--executor: unknown executor {executor!r} (known: local, dask)")


def _check_executor(executor: str) -> None:
    if executor == "dask":
        try:
            import dask  # noqa: F401
        except ImportError:
            raise E2simError("--executor dask: dask is not installed (pip install 'e2sim[dask]')") from None
    elif executor != "local":
        raise E2simError(f"--executor: unknown executor {executor!r} (known: local, dask)")


def write_csv(out: Path, spec: SweepSpec) -> None:
    """``sweep.csv`` streamed from the parts in id order (one part in memory at a time), atomically."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = out / CSV
    tmp = out / f".{CSV}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            for k in range(n_chunks(spec)):
                t = pq.read_table(part_path(out, k))
                t = t.set_column(1, "precision", t.column("precision").cast("string"))
                pacsv.write_csv(t, f, pacsv.WriteOptions(include_header=k == 0))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _plot(spec: SweepSpec, tables: Tables, path: Path) -> None:
    from .sweep_plot import plot_saving

    plot_saving(spec, tables, path)


def run_sweep(spec: SweepSpec, out: str | Path, *, resume: bool = False, force: bool = False,
              executor: str = "local", quiet: bool = False, max_configs: int = MAX_CONFIGS, csv: bool = False,
              plot: bool = True, _stop_after_chunks: int | None = None) -> SweepResult | None:
    """Run (or finish, with ``resume``) a sweep into ``out``; a :class:`SweepResult` once complete, None if
    stopped by ``_stop_after_chunks`` (tests: a kill after that many chunks)."""
    check_budget(spec.sizes, max_configs)
    nc = n_chunks(spec)
    if nc > MAX_PARTS:
        raise E2simError(f"--chunk-size: {spec.n_configs:,} configurations in chunks of {spec.chunk_size:,} "
                         f"make {nc:,} parts (at most {MAX_PARTS:,}); use --chunk-size "
                         f"{-(-spec.n_configs // MAX_PARTS):,} or more")
    _check_executor(executor)
    out = Path(out)
    if resume and force:
        raise E2simError("--resume and --force: give one (--resume finishes a sweep, --force replaces it)")
    if out.exists() and not out.is_dir():
        raise E2simError(f"--out: {out} exists and is not a directory")
    tables = precompute(spec)  # before touching the folder: a grid it refuses leaves no trace
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except OSError as exc:
        raise E2simError(f"--out: cannot write to {out} ({exc.strerror or exc})") from None
    try:
        return _run_locked(spec, tables, out, resume=resume, force=force, executor=executor, quiet=quiet,
                           csv=csv, plot=plot, _stop_after_chunks=_stop_after_chunks)
    finally:
        lock.close()


def _lock(out: Path):
    """An exclusive lock on ``out`` for this process (released when it ends, even when killed): two sweeps
    never write into one folder at once."""
    f = open(out / ".sweep.lock", "a")
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): no lock
        return f
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise E2simError(f"--out: another sweep is writing into {out}; wait for it or use another folder") from None
    return f


def _run_locked(spec: SweepSpec, tables: Tables, out: Path, *, resume: bool, force: bool, executor: str,
                quiet: bool, csv: bool, plot: bool, _stop_after_chunks: int | None) -> SweepResult | None:
    nc = n_chunks(spec)
    _prepare_out(out, resume, force)
    manifest = _load_manifest(out, spec) if resume and (out / MANIFEST).exists() else _fresh_manifest(spec)
    try:
        _check_dataset_dir(out, spec)
    except OSError as exc:
        raise E2simError(f"--out: cannot write to {out} ({exc.strerror or exc})") from None
    failed = {}
    for rec in manifest.parts:
        why = verify_part(spec, out, rec)
        if why:
            failed[rec.chunk] = why
    if failed:
        manifest.parts = [p for p in manifest.parts if p.chunk not in failed]
        manifest.complete = False
        listed = ", ".join(f"part-{k:05d} ({why})" for k, why in sorted(failed.items())[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        sys.stderr.write(f"e2sim: note: recomputing {len(failed)} part(s) that failed verification: "
                         f"{listed}{more}\n")
    done = {p.chunk for p in manifest.parts}
    todo = [k for k in range(nc) if k not in done]
    mem_b, out_b = estimates(spec, executor)
    done_rows = sum(p.rows for p in manifest.parts)
    progress = bar(total=spec.n_configs, unit="config", quiet=quiet, initial=done_rows,
                   desc=f"sweep (memory <= {human_bytes(mem_b)}, output <= {human_bytes(out_b)})")
    last_save = time.monotonic()
    # The plot needs only the tables: drawn on a thread while the parts are written (matplotlib is mostly
    # Python, the part encoding mostly releases the GIL), and always waited for before returning.
    plotting = ThreadPoolExecutor(1, thread_name_prefix="sweep-plot") if plot else None
    plot_job = plotting.submit(_plot, spec, tables, out / PLOT) if plotting else None
    try:
        with progress:
            for i, (k, rec) in enumerate(_executor_map(executor, lambda k: _write_part(spec, tables, out, k),
                                                       todo)):
                manifest.parts.append(rec)
                progress.update(rec.rows)
                stop = _stop_after_chunks is not None and i + 1 >= _stop_after_chunks and i + 1 < len(todo)
                if stop or time.monotonic() - last_save >= MANIFEST_EVERY_S:
                    _save_manifest(out, manifest)
                    last_save = time.monotonic()
                if stop:
                    return None
        _save_manifest(out, manifest)
        files = [MANIFEST, DATASET]
        if csv:
            write_csv(out, spec)
            files.append(CSV)
        if plot_job is not None:
            plot_job.result()
            files.append(PLOT)
        manifest.complete = True
        _save_manifest(out, manifest)
    except OSError as exc:
        raise E2simError(f"--out: cannot write to {out} ({exc.strerror or exc})") from None
    finally:
        if plotting is not None:
            plotting.shutdown(wait=True)
    size = sum(part_path(out, k).stat().st_size for k in range(nc))
    return SweepResult(out=out, n_configs=spec.n_configs, n_parts=nc, spec_hash=spec.digest(), output_bytes=size,
                       estimated_output_bytes=out_b, estimated_memory_bytes=mem_b, recomputed=sorted(failed),
                       files=files)
