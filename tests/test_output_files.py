"""Output files and run folders get the permissions a plain open()/mkdir would give under the umask."""
from __future__ import annotations

import os
import stat

import pytest

from e2sim.output import current_umask, new_run_dir, write_atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_files_follow_the_umask(tmp_path, umask):
    assert current_umask() == umask
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    p = write_atomic(tmp_path / "sub" / "atomic.txt", "x")
    write_atomic(tmp_path / "atomic.bin", b"x")
    assert _mode(p) == _mode(tmp_path / "atomic.bin") == _mode(tmp_path / "plain") == 0o666 & ~umask
    assert _mode(tmp_path / "sub") == 0o777 & ~umask
    assert [q.name for q in (tmp_path / "sub").iterdir()] == ["atomic.txt"]  # no temporary left behind


def test_run_folders_follow_the_umask(tmp_path, umask):
    (tmp_path / "plain").mkdir()
    a = new_run_dir(tmp_path / "runs", "psg-accuracy-")
    b = new_run_dir(tmp_path / "runs", "psg-accuracy-")
    assert a != b and a.name.startswith("psg-accuracy-")
    assert _mode(a) == _mode(tmp_path / "plain") == 0o777 & ~umask
