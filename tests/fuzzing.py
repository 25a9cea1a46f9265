"""Shared fuzzing harness: run the CLI in-process on generated input and check the contract.

The contract (README, DESIGN.md): bad input gets exit code 2 and exactly one stderr line
``e2sim: error: ...``; good input gets exit code 0 and a result whose numbers are finite (and, for the
quantities that cannot be negative, non-negative). Anything else is a fuzz failure: a traceback, an
internal error (exit 1), a numpy/pandas warning, a second stderr line, a hang, or exit 0 with NaN / inf /
negative energy.

How a surface test is written (see tests/test_fuzz_inputs.py)::

    @fuzz_surface(st.data())   # makes test_workload_yaml_fuzz (marker fuzz) and test_workload_yaml_quick
    def workload_yaml(tmp_path_factory, data):
        path = write_text(fresh_dir(tmp_path_factory), "w.yaml", data.draw(yaml_documents(BASE)))
        check(invoke(["counts", "--workload", str(path), "--format", "json"]), json_ok())

Strategies: :func:`nasty_values` (the values that broke things before: huge ints, inf, nan, bools,
numeric strings, control characters, deep nesting), :func:`mutated` (a valid document with one or a few
leaves replaced, deleted or added), :func:`yaml_documents` (a mutated document dumped as YAML, sometimes
with raw text damage). Cases are derandomized (same examples every run) and sizes are bounded.
"""
from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2sim.cli import run

# Cases per surface in the `fuzz`-marked tests and in their quick twins (the default run has both;
# `pytest -m "not fuzz"` runs only the quick set). E2SIM_FUZZ_EXAMPLES scales the full set.
FUZZ_EXAMPLES = int(os.environ.get("E2SIM_FUZZ_EXAMPLES", "1000"))
QUICK_EXAMPLES = 25
CASE_TIMEOUT_S = 30.0  # one CLI call taking longer than this is a hang


def _settings(n: int) -> settings:
    return settings(max_examples=n, derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture,
                                           HealthCheck.large_base_example])


def fuzz_surface(*strategies: st.SearchStrategy, **kw_strategies: st.SearchStrategy):
    """Decorator turning ``x(..., drawn)`` (a name without ``test_``, so pytest leaves it alone) into
    ``test_x_fuzz`` (markers ``fuzz`` and ``slow``, FUZZ_EXAMPLES cases) and ``test_x_quick``
    (QUICK_EXAMPLES cases) in the calling module."""
    import sys

    def deco(fn: Callable) -> Callable:
        module = sys.modules[fn.__module__]
        base = fn.__name__
        assert not base.startswith("test"), "name the surface function without test_ (it is not a test itself)"
        for suffix, n, marks in (("fuzz", FUZZ_EXAMPLES, [pytest.mark.fuzz, pytest.mark.slow]),
                                 ("quick", QUICK_EXAMPLES, [])):
            test = _settings(n)(given(*strategies, **kw_strategies)(fn))
            test.__name__ = test.__qualname__ = f"test_{base}_{suffix}"
            for m in marks:
                test = m(test)
            setattr(module, test.__name__, test)
        return fn

    return deco


# ------------------------------------------------------------------------------------------ running
@dataclass
class Outcome:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"e2sim {' '.join(map(repr, self.args))}\n  exit {self.code}\n  stderr: {self.stderr!r}\n"
                f"  warnings: {self.warnings}\n  stdout[:400]: {self.stdout[:400]!r}")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"a CLI call ran past {CASE_TIMEOUT_S} s")


def invoke(args: Iterable[str], env: dict[str, str] | None = None) -> Outcome:
    """Run ``e2sim ARGS`` in-process (stdout/stderr captured, warnings recorded, a watchdog for hangs)."""
    args = [str(a) for a in args]
    runner = CliRunner()
    # no parse cache: thousands of generated files would each leave an entry in the user's cache folder
    env = {"E2SIM_NO_CACHE": "1", **(env or {})}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
    try:
        with warnings.catch_warnings(record=True) as caught, runner.isolation(env=env) as (out, err, _):
            warnings.simplefilter("always")
            try:
                code = run(args)
            except SystemExit as exc:  # a command that exits by itself
                code = exc.code if isinstance(exc.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            stdout = out.getvalue().decode("utf-8", "replace")
            stderr = err.getvalue().decode("utf-8", "replace")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return Outcome(args, code, stdout, stderr,
                   [f"{w.category.__name__}: {w.message}" for w in caught
                    if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))])


def check(o: Outcome, validate_ok: Callable[[Outcome], None] | None = None, *, allow_ok: bool = True) -> None:
    """Assert the contract: exit 2 with exactly one ``e2sim: error:`` line on stderr, or exit 0 with a
    result that ``validate_ok`` accepts (finite, non-negative numbers) and no error line."""
    assert not o.warnings, f"warnings reached the user:\n{o.describe()}"
    if o.code == 2:
        lines = o.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("e2sim: error: "), f"not one error line:\n{o.describe()}"
        return
    assert o.code == 0, f"exit code {o.code} (1 = internal error):\n{o.describe()}"
    assert allow_ok, f"exit 0 on input that must be refused:\n{o.describe()}"
    assert "Traceback" not in o.stderr and "error" not in o.stderr.lower(), f"error text on success:\n{o.describe()}"
    if validate_ok is not None:
        validate_ok(o)


# Columns / keys that hold a quantity that can never be negative (energy, time, counts, power).
_NON_NEGATIVE_SUFFIXES = ("_j", "_s", "_w", "_hz", "macs", "cycles", "_bits", "_bytes", "_count", "_elems",
                          "_reads", "_writes", "energy", "power")


def non_negative_name(name: str) -> bool:
    n = str(name).lower()
    if n.endswith(("_low", "_high")):
        n = n.rsplit("_", 1)[0]
    return n.endswith(_NON_NEGATIVE_SUFFIXES) and "residual" not in n and "dynamic" not in n


def assert_finite_numbers(obj: Any, where: str = "", *, nullable: Iterable[str] = ()) -> None:
    """Every number in a JSON-like structure is finite; those under non-negative names (energy, time,
    counts) are >= 0 and not null (JSON's rendering of NaN) unless listed in ``nullable``."""
    nullable = set(nullable)
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{where}.{k}" if where else str(k)
            if v is None:
                assert k in nullable or not non_negative_name(k), f"{path} is null"
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert math.isfinite(v), f"{path} = {v}"
                if non_negative_name(k):
                    assert v >= 0, f"{path} = {v} < 0"
            else:
                assert_finite_numbers(v, path, nullable=nullable)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, float):
                assert math.isfinite(v), f"{where}[{i}] = {v}"
            else:
                assert_finite_numbers(v, f"{where}[{i}]", nullable=nullable)


def json_ok(nullable: Iterable[str] = ()) -> Callable[[Outcome], None]:
    """Success validator for commands printing JSON: parses and checks every number."""

    def validate_ok(o: Outcome) -> None:
        try:
            data = json.loads(o.stdout)
        except ValueError:
            raise AssertionError(f"stdout is not JSON:\n{o.describe()}") from None
        try:
            assert_finite_numbers(data, nullable=nullable)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{o.describe()}") from None

    return validate_ok


NAME_COLUMNS = ("layer", "name", "id", "window", "constant", "design", "block", "workload", "profile")


def csv_ok(nullable_columns: Iterable[str] = ()) -> Callable[[Outcome], None]:
    """Success validator for commands printing CSV: numeric columns finite, non-negative where named so
    (name columns are skipped: a layer named "nan" reads as a number)."""
    import numpy as np
    import pandas as pd

    nullable = set(nullable_columns)

    def validate_ok(o: Outcome) -> None:
        df = pd.read_csv(io.StringIO(o.stdout))
        assert len(df), f"empty result:\n{o.describe()}"
        for c in df.columns:
            if c in NAME_COLUMNS or not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
                continue
            v = df[c].to_numpy(dtype=float)
            if c not in nullable:
                assert np.isfinite(v).all(), f"column {c} not finite:\n{o.describe()}"
            if non_negative_name(c):
                assert (v[np.isfinite(v)] >= 0).all(), f"column {c} negative:\n{o.describe()}"

    return validate_ok


# ------------------------------------------------------------------------------------------ strategies
HUGE_INTS = (2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, 10**300)

# Control characters YAML refuses, a NUL, an escape sequence, a BOM, a line separator.
CONTROL_TEXT = ("\x00", "\x07", "\x1b[31m", "\ufeff", "\u2028", "\x85", "\r", "\t\x0b")


@functools.cache
def nasty_values() -> st.SearchStrategy:
    """Scalars and small structures that have broken parsers and validators before. One strategy object for
    the session: hypothesis validates a new composite strategy on first use, which for this one cost more
    than the CLI call of a case when it was rebuilt for every draw."""
    scalars = st.one_of(
        st.sampled_from([None, True, False, 0, -1, 1, 0.0, -0.0, -1e-300, 1e-320, 1e308, -1e308,
                         math.inf, -math.inf, math.nan, "", " ", "10", "1e3", "0x10", "nan", "inf", "-inf",
                         "true", "null", "~", ".inf", "NaN", "1_000", "١٢", *HUGE_INTS,
                         *(-x for x in HUGE_INTS), *CONTROL_TEXT]),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
    )
    return st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=6), scalars, max_size=3))


def leaf_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Key paths of every node of a YAML-like document (mappings and lists), the root excluded."""
    out: list[tuple] = []
    if isinstance(doc, dict):
        items: Iterable = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return out
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(leaf_paths(v, prefix + (k,)))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    node = doc
    for k in path[:-1]:
        node = node[k]
    return node


@st.composite
def mutated(draw, base: dict, max_mutations: int = 3, values: st.SearchStrategy | None = None) -> Any:
    """``base`` (a valid document) with 0..max_mutations of: a node replaced by a nasty value, a numeric
    leaf scaled or negated, a key deleted, an unknown key added. Sometimes the whole document is replaced."""
    values = values or nasty_values()
    if draw(st.integers(0, 49)) == 0:
        return draw(values)
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = leaf_paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        key = path[-1]
        op = draw(st.sampled_from(("replace", "replace", "scale", "delete", "add")))
        if op == "replace":
            parent[key] = draw(values)
        elif op == "scale" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            factor = draw(st.sampled_from([-1, 0, 2, 10, 1000, 10**6, 10**12, 1e-9, 0.5, 10**30]))
            try:
                v = parent[key] * factor
                parent[key] = int(v) if isinstance(parent[key], int) and math.isfinite(v) else v
            except OverflowError:  # an int beyond float range times a float
                parent[key] = parent[key] * int(factor) if factor >= 1 else 0
        elif op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            elif isinstance(parent, list):
                parent.pop(key)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "value", "source", "name", str(key) + "_x"]))] = draw(values)
    return doc


# libyaml's emitter when PyYAML has it: 5x faster than the pure-Python one on a profile-sized document
# (that dump was the largest cost of generating a case); same YAML apart from quoting details.
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(doc: Any) -> str:
    """YAML text of a document, including values safe_dump cannot represent (then via repr)."""
    try:
        return yaml.dump(doc, Dumper=_SAFE_DUMPER, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return repr(doc)


@st.composite
def damaged_text(draw, text: str) -> str:
    """Raw text damage: truncation, an inserted control character, a YAML tag / alias / anchor, a BOM."""
    op = draw(st.sampled_from(("none", "none", "none", "truncate", "insert", "tag", "alias", "dup")))
    if op == "truncate" and text:
        return text[: draw(st.integers(0, len(text) - 1))]
    if op == "insert":
        i = draw(st.integers(0, len(text)))
        return text[:i] + draw(st.sampled_from(CONTROL_TEXT + ("\t", ": ", "- ", "{", "[", "'", '"', "&a", "*a")))
        + text[i:]
    if op == "tag":
        return draw(st.sampled_from(("!!python/object/apply:os.system ['true']\n", "!!binary AAAA\n",
                                     "--- !custom\n", "%YAML 9.9\n---\n"))) + text
    if op == "alias":
        return "a: &a [1, 2]\nb: [*a, *a, *a, *a]\n" + text
    if op == "dup":
        lines = text.splitlines(keepends=True)
        if lines:
            return text + lines[draw(st.integers(0, len(lines) - 1))]
    return text


@st.composite
def yaml_documents(draw, base: dict, max_mutations: int = 3, values: st.SearchStrategy | None = None) -> str:
    """A mutated ``base`` as YAML text, sometimes with raw text damage."""
    return draw(damaged_text(dump_yaml(draw(mutated(base, max_mutations, values)))))


def write_text(folder: Path, name: str, text: str | bytes) -> Path:
    """Write a generated file (bytes as is; text as UTF-8, surrogates escaped)."""
    p = Path(folder) / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8", errors="backslashreplace")
    return p


def fresh_dir(tmp_path_factory, name: str = "case") -> Path:
    """A new empty folder for one case (hypothesis reuses function-scoped fixtures across cases)."""
    return tmp_path_factory.mktemp(name)
