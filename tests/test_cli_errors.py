"""How the command line leaves: E2simError -> one line, exit 2; anything unexpected -> one line naming the
internal error and asking for a bug report, exit 1; the raw traceback only with E2SIM_DEBUG=1."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from e2sim.errors import E2simError

from fuzzing import invoke

ROOT = Path(__file__).resolve().parent.parent


def _boom(*args, **kwargs):
    raise RuntimeError("boom\nsecond line")


def test_unexpected_error_is_one_line_exit_1(monkeypatch):
    monkeypatch.setattr("e2sim.profile.bundled_profiles", _boom)
    o = invoke(["profiles"])
    assert o.code == 1
    assert o.stderr.count("\n") == 1
    line = o.stderr.strip()
    assert line.startswith("e2sim: internal error: RuntimeError: boom second line")
    assert "bug" in line and "E2SIM_DEBUG=1" in line


def test_e2sim_error_with_newlines_is_one_line_exit_2(monkeypatch):
    def bad(*a, **k):
        raise E2simError("first\nsecond\x07third")

    monkeypatch.setattr("e2sim.profile.bundled_profiles", bad)
    o = invoke(["profiles"])
    assert (o.code, o.stderr) == (2, "e2sim: error: first second third\n")


def test_eof_error_is_internal_not_aborted(monkeypatch):
    # click turns an EOFError into Abort; that is a bug to report, not a user interrupt (exit 130).
    def eof(*a, **k):
        raise EOFError("Ran out of input")

    monkeypatch.setattr("e2sim.profile.bundled_profiles", eof)
    o = invoke(["profiles"])
    assert o.code == 1 and o.stderr.startswith("e2sim: internal error: EOFError: Ran out of input")


_SCRIPT = ("import e2sim.profile, e2sim.cli\n"
           "def boom(*a, **k): raise RuntimeError('boom')\n"
           "e2sim.profile.bundled_profiles = boom\n"
           "e2sim.cli.main(['profiles'])\n")


@pytest.mark.parametrize("debug", [False, True])
def test_traceback_only_with_e2sim_debug(debug):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **({"E2SIM_DEBUG": "1"} if debug else {})}
    r = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1
    if debug:
        assert "Traceback (most recent call last)" in r.stderr and r.stderr.rstrip().endswith("RuntimeError: boom")
    else:
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert r.stderr.startswith("e2sim: internal error: RuntimeError: boom")
