import os

# Deterministic, quiet runs on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory):
    """The parse cache (e2sim/parse_cache.py) of the test session lives in a temporary folder, not in the
    user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("E2SIM_CACHE_DIR", str(tmp_path_factory.mktemp("parse_cache")))
    yield
    mp.undo()


class CliResult:
    """Exit code and captured output of one in-process CLI call."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def e2sim(capsys):
    """Runs the CLI in-process (``e2sim.cli.main``: the same error handling as the console script)."""
    from e2sim.cli import main

    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return CliResult(exc.value.code, out, err)

    return run
