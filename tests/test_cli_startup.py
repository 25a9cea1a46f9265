"""Start-up: the CLI lists its commands without importing them, the package loads its names lazily, and the
parse cache (e2sim/parse_cache.py) returns what parsing returns, rebuilding bad entries. Timings are in
benchmarks/bench_startup.py, not here."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import click
import pytest

import e2sim
from e2sim.cli import COMMANDS, _docstring, cli
from e2sim.parse_cache import cache_key, cached_parse
from e2sim.profile import load_profile
from e2sim.workload_files import load_workload

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    """Top-level modules imported by a fresh interpreter running ``code``."""
    probe = code + "\nimport sys\nsys.stderr.write('MODS ' + ' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT)
    line = [x for x in r.stderr.splitlines() if x.startswith("MODS ")]
    assert line, r.stderr
    return set(line[-1].split()[1:])


def test_help_reads_each_commands_own_help():
    ctx = click.Context(cli)
    for name, target in COMMANDS.items():
        cmd = cli.get_command(ctx, name)
        text = _docstring(target)
        assert text is not None, name
        for limit in (45, 70, 200):
            assert click.Command(name, help=text).get_short_help_str(limit) == cmd.get_short_help_str(limit), name


def test_help_lists_every_command_without_numpy_or_pydantic():
    mods = _modules_after("from e2sim.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not mods & {"numpy", "pydantic", "pandas", "yaml", "torch", "numba"}
    out = subprocess.run([sys.executable, "-m", "e2sim", "--help"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT).stdout
    for name in COMMANDS:
        assert f"  {name} " in out


def test_json_estimate_imports_no_pandas_torch_or_numba(tmp_path):
    code = ("import os, sys\nfrom e2sim.cli import main\nsys.stdout = open(os.devnull, 'w')\n"
            "try:\n    main(['estimate', '--workload', 'resnet20_cifar10', '--format', 'json'])\n"
            "except SystemExit:\n    pass")
    prelude = f"import os\nos.environ['E2SIM_CACHE_DIR'] = {str(tmp_path)!r}\n"
    first = _modules_after(prelude + code)  # parses (pydantic validates) and fills the cache
    assert not first & {"pandas", "torch", "numba", "matplotlib"}
    assert "pydantic" in first
    # From the cache the workload and profile records are used as they are: no pydantic, no yaml.
    assert not _modules_after(prelude + code) & {"pandas", "torch", "numba", "matplotlib", "pydantic", "yaml"}


def test_package_names_are_lazy_and_estimate_stays_the_function():
    import e2sim.estimate as submodule_import  # noqa: F401 - rebinding attempt on the package

    assert callable(e2sim.estimate) and e2sim.estimate.__module__ == "e2sim.estimate"
    assert e2sim.Workload.__name__ == "Workload" and e2sim.count.__module__ == "e2sim.counts"
    with pytest.raises(AttributeError):
        e2sim.no_such_name  # noqa: B018


# --- parse cache ---------------------------------------------------------------------------------------

def _copy(tmp_path, name="resnet20_cifar10") -> Path:
    p = tmp_path / "w.yaml"
    p.write_text((ROOT / "workloads" / f"{name}.yaml").read_text())
    return p


def test_cached_workload_equals_a_fresh_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("E2SIM_CACHE_DIR", str(tmp_path / "cache"))
    p = _copy(tmp_path)
    first = load_workload(p)  # parses and stores
    assert len(list((tmp_path / "cache").iterdir())) == 1
    again = load_workload(p)  # from the cache
    assert again == first and again is not first
    monkeypatch.setenv("E2SIM_NO_CACHE", "1")
    assert load_workload(p) == first
    assert load_profile(str(ROOT / "hardware_profiles" / "zedboard.yaml")) == load_profile("zedboard")


def test_changed_file_is_parsed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("E2SIM_CACHE_DIR", str(tmp_path / "cache"))
    p = _copy(tmp_path)
    assert load_workload(p).batch_size == 128
    p.write_text(p.read_text().replace("batch_size: 128", "batch_size: 64"))
    assert load_workload(p).batch_size == 64


def test_corrupt_or_foreign_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("E2SIM_CACHE_DIR", str(tmp_path / "cache"))
    p = _copy(tmp_path)
    good = load_workload(p)
    entry = tmp_path / "cache" / f"{cache_key(p)}.pickle"
    entry.write_bytes(b"\x80\x05 not a pickle")
    assert load_workload(p) == good
    entry.write_bytes(pickle.dumps(("e2sim.workload.Workload", {"not": "a workload"})))
    assert load_workload(p) == good
    assert pickle.loads(entry.read_bytes())[1] == good  # rewritten


def test_unwritable_cache_folder_still_parses(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("E2SIM_CACHE_DIR", str(blocker / "sub"))  # cannot be created
    assert cached_parse(_copy(tmp_path), lambda: 42) == 42


def test_parse_errors_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("E2SIM_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: nosuchmodel\n")
    for _ in range(2):
        with pytest.raises(e2sim.E2simError, match="unknown model"):
            load_workload(bad)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("seed", range(30))
def test_quantiles_equal_numpys_bit_for_bit(seed):
    """e2sim.estimate.quantiles replaces np.quantile (whose np.unique imports numpy.ma at start-up)."""
    import numpy as np

    from e2sim.estimate import quantiles

    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=int(rng.integers(1, 400))) * 10.0 ** rng.integers(-12, 12)
    qs = [0.05, 0.95, 0.0, 1.0, 0.5, *rng.uniform(0, 1, 5)]
    np.testing.assert_array_equal(quantiles(x, qs), np.quantile(x, qs))
    np.testing.assert_array_equal(quantiles(np.round(x, 1), qs), np.quantile(np.round(x, 1), qs))  # ties


def test_json_estimate_does_not_import_numpy_ma(tmp_path):
    code = (f"import os, sys\nos.environ['E2SIM_CACHE_DIR'] = {str(tmp_path)!r}\nfrom e2sim.cli import main\n"
            "sys.stdout = open(os.devnull, 'w')\n"
            "try:\n    main(['estimate', '--workload', 'resnet20_cifar10', '--format', 'json'])\n"
            "except SystemExit:\n    pass\nimport sys\nassert 'numpy.ma' not in sys.modules, 'numpy.ma imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr


def test_cache_keeps_the_newest_entries(tmp_path, monkeypatch):
    import e2sim.parse_cache as pc

    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("E2SIM_CACHE_DIR", str(folder))
    monkeypatch.setattr(pc, "MAX_ENTRIES", 5)
    for i in range(8):
        old = folder / f"old{i}.pickle"
        old.write_bytes(b"x")
        os.utime(old, (1000 + i, 1000 + i))
    p = _copy(tmp_path)
    w = load_workload(p)
    kept = sorted(x.name for x in folder.iterdir())
    assert len(kept) == 5 and f"{cache_key(p)}.pickle" in kept and "old7.pickle" in kept and "old3.pickle" not in kept
    assert load_workload(p) == w
